/* exec_oci_shim.c — gpunode-shim, one per OCI container, started by the
 * agent in a session of its own:
 *
 *   gpunode-shim RUNTIME ROOT BUNDLE ID CGROUP
 *
 * It becomes a child subreaper, runs `RUNTIME run --detach` (the container's
 * stdout and stderr are the shim's: the task's log file), tells the agent on
 * fd 3, then waits for the container's init, which the
 * kernel re-parents to it when the runtime exits. Only a parent can read an
 * exit status, and only before `delete` is the cgroup still there to say
 * whether the OOM killer struck, so the shim reads both, deletes the
 * container, unmounts its rootfs and writes BUNDLE/exit. The agent may be
 * killed and restarted meanwhile: the exit waits for it in the bundle. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci_impl.h"

extern char **environ;

struct shim {
	const char *runtime, *root, *bundle, *id, *cgroup;
};

/* Runs `RUNTIME --root ROOT args...` (args NULL-terminated, at most 8) and
 * waits; returns its exit status, 128 + signal, or -1. */
static int run_runtime(const struct shim *s, const char *const *args)
{
	char *argv[12] = {(char *)s->runtime, "--root", (char *)s->root};
	for (int i = 0; args[i] && i < 8; i++)
		argv[3 + i] = (char *)args[i];
	pid_t pid;
	if (posix_spawn(&pid, s->runtime, NULL, NULL, argv, environ) != 0)
		return -1;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void tell_agent(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (write(OCI_SHIM_READY_FD, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1)) < 0) {
		/* the agent is gone: the exit file still reaches the next one */
	}
	close(OCI_SHIM_READY_FD);
}

/* Reaps children until init is among them (the runtime's helpers may be
 * re-parented here too); returns init's wait status. */
static int wait_init(pid_t init)
{
	for (;;) {
		int status;
		pid_t p = waitpid(-1, &status, 0);
		if (p == init)
			return status;
		if (p < 0 && errno != EINTR)
			return -1;
	}
}

/* Deletes the container, unmounts its rootfs, writes the exit file
 * (through a rename, so a reader sees all of it or none). */
static void finish(const struct shim *s, int code, int sig, const struct oci_cgroup_stats *st)
{
	run_runtime(s, (const char *[]){"delete", "--force", s->id, NULL});
	oci_cgroup_remove_parent(s->cgroup);
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/rootfs", s->bundle);
	umount2(path, MNT_DETACH);
	snprintf(path, sizeof path, "%s/%s", s->bundle, OCI_FILE_EXIT);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "%d %d %lld %lld %lld\n", code, sig, (long long)st->oom_kills, (long long)st->cpu_ns,
		(long long)st->peak_bytes);
	if (fclose(f) == 0)
		rename(tmp, path);
}

/* `run --detach`: create and start in one runtime process (a separate
 * create and start cost one more runtime start, a third of the total for
 * crun); 0 once the container runs, else -1 after telling the agent why (the
 * runtime's own message is in the task's log). */
static int start_container(const struct shim *s)
{
	char pidfile[4096];
	snprintf(pidfile, sizeof pidfile, "%s/%s", s->bundle, OCI_FILE_INIT_PID);
	int rc = run_runtime(s, (const char *[]){"run", "--detach", "--bundle", s->bundle, "--pid-file", pidfile, s->id,
						  NULL});
	if (rc != 0) {
		tell_agent("error: %s run failed (exit %d)", s->runtime, rc);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: gpunode-shim RUNTIME ROOT BUNDLE ID CGROUP (started by the gpunode agent)\n");
		return 2;
	}
	struct shim s = {argv[1], argv[2], argv[3], argv[4], argv[5]};
	struct oci_cgroup_stats none = {-1, -1, -1};
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		tell_agent("error: cannot become a subreaper: %s", strerror(errno));
		finish(&s, 127, 0, &none);
		return 1;
	}
	if (start_container(&s) < 0) {
		finish(&s, 127, 0, &none);
		return 1;
	}
	pid_t init = oci_pid_read(s.bundle, OCI_FILE_INIT_PID);
	tell_agent("ok");
	int status = init > 0 ? wait_init(init) : -1;
	struct oci_cgroup_stats st;
	oci_cgroup_read(s.cgroup, &st);
	if (status < 0)
		finish(&s, 255, 0, &st);
	else if (WIFSIGNALED(status))
		finish(&s, 128 + WTERMSIG(status), WTERMSIG(status), &st);
	else
		finish(&s, WEXITSTATUS(status), 0, &st);
	return 0;
}
