/* exec_oci_shim.c — gpunode-shim, one per OCI run, started by the agent in
 * a process group of its own, ahead of need:
 *
 *   gpunode-shim RUNTIME ROOT
 *
 * It becomes a child subreaper at once and waits on stdin for its task, five
 * lines: BUNDLE, ID, CGROUP, LOG, WARM (EOF: the agent discarded it or died;
 * it exits). A shim already started and waiting takes its exec off the
 * start's path. Then it runs `RUNTIME run --detach` (or, WARM not empty,
 * `RUNTIME exec --detach --process BUNDLE/process.json WARM`: a run in that
 * warm container), with the task's log file as stdout and stderr, tells the
 * agent on fd 3, and waits for the container's init (or the exec'd
 * process), which the kernel re-parents to it when the runtime exits. Only a
 * parent can read an exit status, and only before `delete` is the cgroup
 * still there to say whether the OOM killer struck, so the shim reads both,
 * deletes the container, unmounts its rootfs (not for a warm run: the agent
 * owns that container) and writes BUNDLE/exit. The agent may be killed and
 * restarted meanwhile: the exit waits for it in the bundle. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci_impl.h"

extern char **environ;

struct shim {
	const char *runtime, *root, *bundle, *id, *cgroup, *log;
	const char *warm; /* "": run a container; else exec the run in this warm container */
	const char *exe; /* what is exec'd: the agent's sealed copy of runtime, or runtime */
	pid_t agent; /* its parent when the task came: gone if getppid() differs */
};

/* Runs `RUNTIME --root ROOT args...` (args NULL-terminated, at most 8) and
 * waits; returns its exit status, 128 + signal, or -1. */
static int run_runtime(const struct shim *s, const char *const *args)
{
	char *argv[12] = {(char *)s->runtime, "--root", (char *)s->root};
	for (int i = 0; args[i] && i < 8; i++)
		argv[3 + i] = (char *)args[i];
	pid_t pid;
	if (posix_spawn(&pid, s->exe, NULL, NULL, argv, environ) != 0)
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

/* Writes text to the bundle's file name through a rename, so a reader (the
 * agent, or one restarted) sees all of it or none. */
static void write_bundle_file(const struct shim *s, const char *name, const char *text)
{
	char path[4160], tmp[4200];
	snprintf(path, sizeof path, "%s/%s", s->bundle, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	fputs(text, f);
	if (fclose(f) == 0)
		rename(tmp, path);
}

/* The exit file: code, signal and what the cgroup said. */
static void write_exit(const struct shim *s, int code, int sig, const struct oci_cgroup_stats *st)
{
	char text[128];
	snprintf(text, sizeof text, "%d %d %lld %lld %lld\n", code, sig, (long long)st->oom_kills, (long long)st->cpu_ns,
		 (long long)st->peak_bytes);
	write_bundle_file(s, OCI_FILE_EXIT, text);
}

/* Deletes the container, unmounts its rootfs, writes the exit file. A warm
 * run's shim only writes the exit. */
static void finish(const struct shim *s, int code, int sig, const struct oci_cgroup_stats *st)
{
	if (*s->warm) {
		write_exit(s, code, sig, st); /* the warm container stays: the agent owns it */
		return;
	}
	run_runtime(s, (const char *[]){"delete", "--force", s->id, NULL});
	/* The agent keeps its parent cgroup while it lives (a start then makes
	 * one cgroup level, not two) and removes it when it stops; a shim that
	 * outlived its agent removes it (if it is the last one there). */
	if (getppid() != s->agent)
		oci_cgroup_remove_parent(s->cgroup);
	char path[4160];
	snprintf(path, sizeof path, "%s/rootfs", s->bundle);
	umount2(path, MNT_DETACH);
	write_exit(s, code, sig, st);
}

/* How many pid namespaces pid has a number in (the NSpid line of its
 * status, there for zombies too): 2 or more for the container's init, 1
 * for the runtime's own processes. 0 if unknown. */
static int pid_levels(long pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int levels = 0;
	while (levels == 0 && fgets(line, sizeof line, f))
		if (strncmp(line, "NSpid:", 6) == 0)
			for (char *tok = strtok(line + 6, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
				levels++;
	fclose(f);
	return levels;
}

/* The container's init once the runtime has exited: the kernel re-parents
 * it here when the runtime's last helper (crun's detached monitor, say)
 * exits, so a child still in the shim's pid namespace is waited for first.
 * -1 if there is none. */
static pid_t find_init(void)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	for (;;) {
		FILE *f = fopen(path, "re");
		if (!f)
			return -1;
		long pid, helper = -1, init = -1;
		while (init < 0 && fscanf(f, "%ld", &pid) == 1) {
			if (pid_levels(pid) >= 2)
				init = pid;
			else
				helper = pid;
		}
		fclose(f);
		if (init > 0 || helper < 0)
			return (pid_t)init;
		if (waitpid((pid_t)helper, NULL, 0) < 0 && errno != EINTR)
			return -1;
	}
}

/* The init's pid for a restarted agent (adopt). */
static void write_init_pid(const struct shim *s, pid_t init)
{
	char text[32];
	snprintf(text, sizeof text, "%d\n", (int)init);
	write_bundle_file(s, OCI_FILE_INIT_PID, text);
}

/* `run --detach`: create and start in one runtime process (a separate
 * create and start cost one more runtime start, a third of the total for
 * crun). No --pid-file: the init is found as the shim's re-parented child. 0 once the
 * container runs (*init: its pid, -1 if not found), else -1 after telling
 * the agent why (the runtime's own message is in the task's log). */
static int start_container(const struct shim *s, pid_t *init)
{
	char process[4160];
	snprintf(process, sizeof process, "%s/%s", s->bundle, OCI_FILE_PROCESS);
	int rc = *s->warm ? run_runtime(s, (const char *[]){"exec", "--detach", "--process", process, s->warm, NULL})
			  : run_runtime(s, (const char *[]){"run", "--detach", "--bundle", s->bundle, s->id, NULL});
	if (rc != 0) {
		tell_agent("error: %s %s failed (exit %d)", s->runtime, *s->warm ? "exec" : "run", rc);
		return -1;
	}
	*init = find_init();
	if (*init > 0)
		write_init_pid(s, *init);
	return 0;
}

/* Reads the task's five lines from stdin into buf; false on EOF first. */
static bool read_task(struct shim *s, char *buf, size_t cap)
{
	size_t len = 0;
	int lines = 0;
	while (lines < 5 && len < cap - 1) {
		ssize_t n = read(0, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		for (ssize_t i = 0; i < n; i++)
			lines += buf[len + (size_t)i] == '\n';
		len += (size_t)n;
	}
	buf[len] = 0;
	const char **field[] = {&s->bundle, &s->id, &s->cgroup, &s->log, &s->warm};
	char *p = buf;
	for (int i = 0; i < 5; i++) {
		char *nl = strchr(p, '\n');
		if (!nl)
			return false;
		*nl = 0;
		*field[i] = p;
		p = nl + 1;
	}
	return true;
}

/* stdout and stderr to the task's log, stdin from /dev/null. */
static int redirect_output(const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int rc = fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ? -1 : 0;
	if (fd >= 0)
		close(fd);
	if (null >= 0)
		close(null);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: gpunode-shim RUNTIME ROOT, task on stdin (started by the gpunode agent)\n");
		return 2;
	}
	/* Whatever else the agent left open (its sockets...) is not the shim's
	 * to keep for the container's lifetime. */
	close_range(OCI_SHIM_RUNTIME_FD + 1, ~0U, 0);
	struct shim s = {.runtime = argv[1], .root = argv[2], .exe = argv[1]};
	/* The runtime's sealed copy: exec'd through /proc/self/fd (resolved
	 * before close-on-exec closes it), so the runtime does not keep it. */
	if (fcntl(OCI_SHIM_RUNTIME_FD, F_GET_SEALS) == OCI_RUNTIME_SEALS &&
	    fcntl(OCI_SHIM_RUNTIME_FD, F_SETFD, FD_CLOEXEC) == 0)
		s.exe = "/proc/self/fd/" OCI_SHIM_RUNTIME_FD_STR;
	bool subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
	int subreaper_errno = errno;
	char task[4096]; /* the agent writes less than PIPE_BUF */
	if (!read_task(&s, task, sizeof task))
		return 0; /* discarded unused */
	s.agent = getppid();
	struct oci_cgroup_stats none = {-1, -1, -1};
	if (redirect_output(s.log) < 0) {
		tell_agent("error: cannot open the log %s: %s", s.log, strerror(errno));
		finish(&s, 127, 0, &none);
		return 1;
	}
	if (!subreaper) {
		tell_agent("error: cannot become a subreaper: %s", strerror(subreaper_errno));
		finish(&s, 127, 0, &none);
		return 1;
	}
	/* A warm container's cgroup served earlier runs: theirs is subtracted. */
	struct oci_cgroup_stats base = {0, 0, 0};
	if (*s.warm)
		oci_cgroup_read(s.cgroup, &base);
	pid_t init;
	if (start_container(&s, &init) < 0) {
		finish(&s, 127, 0, &none);
		return 1;
	}
	tell_agent("ok");
	int status = init > 0 ? wait_init(init) : -1;
	struct oci_cgroup_stats st;
	oci_cgroup_read(s.cgroup, &st);
	if (st.oom_kills >= 0 && base.oom_kills > 0)
		st.oom_kills -= base.oom_kills;
	if (st.cpu_ns >= 0 && base.cpu_ns > 0)
		st.cpu_ns -= base.cpu_ns;
	if (status < 0)
		finish(&s, 255, 0, &st);
	else if (WIFSIGNALED(status))
		finish(&s, 128 + WTERMSIG(status), WTERMSIG(status), &st);
	else
		finish(&s, WEXITSTATUS(status), 0, &st);
	return 0;
}
