/* exec_oci_spawn.c — the shims: each is started before it is needed and
 * waits for its task on a pipe (exec_oci_shim.c), so a start only writes four
 * lines to one; the next spare is started once the container runs, off the
 * start's path. One spare at a time: starts side by side that find none
 * start their own the same way. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Starts a shim in a session of its own with default signals and an empty
 * mask, whatever the agent blocks: a Ctrl-C or the agent's death does not
 * reach it. Its stdin is the task pipe, fd 3 the ready pipe. */
static int spawn(const struct oci_backend *o, struct oci_shim *sh, struct err *e)
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
	pthread_mutex_lock(&o->mu);
	bool have = o->spare.pid > 0 || o->stopping;
	pthread_mutex_unlock(&o->mu);
	struct oci_shim sh;
	struct err e;
	if (have || spawn(o, &sh, &e) < 0)
		return;
	pthread_mutex_lock(&o->mu);
	bool keep = o->spare.pid <= 0 && !o->stopping;
	if (keep)
		o->spare = sh;
	pthread_mutex_unlock(&o->mu);
	if (!keep)
		oci_shim_discard(&sh); /* another start made one meanwhile */
}

int oci_shim_send(struct oci_shim *sh, const char *bundle, const char *id, const char *cgroup, const char *log,
		  struct err *e)
{
	char task[PIPE_BUF];
	int n = snprintf(task, sizeof task, "%s\n%s\n%s\n%s\n", bundle, id, cgroup, log);
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
