/* exec_oci_spawn.c — the shims: each is started before it is needed and
 * waits for its task on a pipe (exec_oci_shim.c), so a start only writes five
 * lines to one; the next spare is started once the container runs, off the
 * start's path. One spare at a time: starts side by side that find none
 * start their own the same way.
 *
 * The shims exec the runtime from a sealed memfd copy made once. runc and
 * crun copy themselves into such a memfd on every start (CVE-2019-5736: a
 * container must not be able to overwrite the host's binary through
 * /proc/PID/exe) unless /proc/self/exe already is one with these four seals;
 * crun's copy and the second exec it costs are about 2 ms of a 10 ms start.
 * The seals give the same guarantee. The copy is made again when the file
 * changes (an upgrade), before the next spare starts. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci_backend.h"
#include "util.h"

unsigned long long oci_proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Field 22; the fields after comm (which may hold spaces) start at
	 * its last ')'. */
	char *p = strrchr(buf, ')');
	unsigned long long t = 0;
	for (int field = 2; p && *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (p)
		sscanf(p, "%llu", &t);
	return t;
}

/* A sealed memfd holding the file at path (st: its stat); -1 on failure. */
static int copy_sealed(const char *path, struct stat *st)
{
	int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return -1;
	int fd = fstat(src, st) == 0 ? memfd_create("gpunode-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING) : -1;
	off_t left = fd >= 0 ? st->st_size : 0;
	while (left > 0) {
		ssize_t n = sendfile(fd, src, NULL, (size_t)left);
		if (n <= 0)
			break;
		left -= n;
	}
	close(src);
	if (fd >= 0 && (left > 0 || fcntl(fd, F_ADD_SEALS, OCI_RUNTIME_SEALS) < 0)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Copies the runtime unless the copy is of its current file. Lock held. */
static void refresh_runtime_copy(struct oci_backend *o)
{
	struct stat now;
	if (o->runtime_fd >= 0 && stat(o->runtime, &now) == 0 && same_file(&now, &o->runtime_st))
		return;
	if (o->runtime_fd >= 0)
		close(o->runtime_fd);
	o->runtime_fd = copy_sealed(o->runtime, &o->runtime_st);
	if (o->runtime_fd < 0)
		log_msg("warn", "exec", "cannot copy %s into a sealed memfd: the shims run the file", o->runtime);
}

/* Starts a shim in a process group of its own (a Ctrl-C at the agent's
 * terminal does not reach it) but not a session: a session is a scheduler
 * autogroup of its own, new for each shim, and that cost each start
 * several ms on a loaded host. Default signals and an empty mask, whatever
 * the agent blocks. Its stdin is the task pipe, fd 3 the ready pipe, fd 4
 * the runtime's copy. */
static int spawn(struct oci_backend *o, struct oci_shim *sh, struct err *e)
{
	int cmd[2], ready[2];
	if (pipe2(cmd, O_CLOEXEC) < 0)
		return err_set(e, ERR_INTERNAL, "pipe: %s", strerror(errno));
	if (pipe2(ready, O_CLOEXEC) < 0) {
		close(cmd[0]);
		close(cmd[1]);
		return err_set(e, ERR_INTERNAL, "pipe: %s", strerror(errno));
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, cmd[0], 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawn_file_actions_adddup2(&fa, ready[1], OCI_SHIM_READY_FD);
	pthread_mutex_lock(&o->mu);
	int runtime = o->runtime_fd >= 0 ? fcntl(o->runtime_fd, F_DUPFD_CLOEXEC, 0) : -1;
	pthread_mutex_unlock(&o->mu);
	if (runtime >= 0)
		posix_spawn_file_actions_adddup2(&fa, runtime, OCI_SHIM_RUNTIME_FD);
	else
		posix_spawn_file_actions_addclose(&fa, OCI_SHIM_RUNTIME_FD); /* whatever the agent has there */
	posix_spawnattr_init(&attr);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char *argv[] = {(char *)o->shim, (char *)o->runtime, (char *)o->root, NULL};
	int rc = posix_spawn(&sh->pid, o->shim, &fa, &attr, argv, oci_child_env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(cmd[0]);
	close(ready[1]);
	if (runtime >= 0)
		close(runtime);
	if (rc != 0) {
		close(cmd[1]);
		close(ready[0]);
		return err_set(e, ERR_INTERNAL, "cannot run %s: %s", o->shim, strerror(rc));
	}
	sh->task_w = cmd[1];
	sh->ready_r = ready[0];
	sh->start_time = oci_proc_start_time(sh->pid);
	return 0;
}

int oci_shim_take(struct oci_backend *o, struct oci_shim *out, struct err *e)
{
	pthread_mutex_lock(&o->mu);
	bool have = o->spare.pid > 0;
	if (have) {
		*out = o->spare;
		o->spare.pid = 0;
	}
	pthread_mutex_unlock(&o->mu);
	return have ? 0 : spawn(o, out, e);
}

void oci_shim_discard(struct oci_shim *sh)
{
	if (sh->pid <= 0)
		return;
	close(sh->task_w); /* EOF: it exits */
	close(sh->ready_r);
	waitpid(sh->pid, NULL, 0);
	sh->pid = 0;
}

void oci_shim_replenish(struct oci_backend *o)
{
	/* Starts side by side each come here: one of them starts the spare. */
	pthread_mutex_lock(&o->mu);
	bool skip = o->spare.pid > 0 || o->spare_starting || o->stopping;
	if (!skip) {
		o->spare_starting = true;
		refresh_runtime_copy(o);
	}
	pthread_mutex_unlock(&o->mu);
	struct oci_shim sh;
	struct err e;
	if (skip)
		return;
	bool made = spawn(o, &sh, &e) == 0;
	pthread_mutex_lock(&o->mu);
	o->spare_starting = false;
	bool keep = made && !o->stopping;
	if (keep)
		o->spare = sh;
	pthread_mutex_unlock(&o->mu);
	if (made && !keep)
		oci_shim_discard(&sh); /* destroy began meanwhile */
}

int oci_shim_send(struct oci_shim *sh, const char *bundle, const char *id, const char *cgroup, const char *log,
		  const char *warm, struct err *e)
{
	char task[PIPE_BUF];
	int n = snprintf(task, sizeof task, "%s\n%s\n%s\n%s\n%s\n", bundle, id, cgroup, log, warm);
	if (n >= (int)sizeof task || strchr(log, '\n') || strchr(bundle, '\n'))
		return err_set(e, ERR_INVALID, "a path of task %s is too long or holds a newline", id);
	/* One write below PIPE_BUF reaches the shim whole. */
	ssize_t w = write(sh->task_w, task, (size_t)n);
	close(sh->task_w);
	sh->task_w = -1;
	if (w != n)
		return err_set(e, ERR_INTERNAL, "cannot hand task %s to its shim: %s", id, strerror(errno));
	return 0;
}
