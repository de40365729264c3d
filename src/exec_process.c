/* exec_process.c — the process backend. Children are spawned with
 * posix_spawn (fork from a large node process costs ~35x more here) and
 * watched through pidfds, so one poll() sees any exit at once without a
 * SIGCHLD handler that would fight with the rest of the process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"
#include "util.h"

#define PROC_MAX_ENV 4200

struct proc_task {
	char id[TASK_ID_LEN + 1];
	pid_t pid;
	int pidfd;
	int64_t kill_at_ns; /* 0: no stop requested */
	int64_t timeout_at_ns; /* 0: no timeout */
	int grace_ms;          /* used when the timeout strikes */
	bool killed, timed_out;
};

struct proc_backend {
	struct exec_backend base;
	pthread_mutex_t mu;
	struct proc_task *tasks;
	int n, cap;
	int wake_fd; /* eventfd: a start or stop changed the set to watch */
};

static struct proc_backend *as_proc(struct exec_backend *b)
{
	return (struct proc_backend *)b;
}

/* The child's environment: the shared one (exec_env_build) with the
 * agent's PATH and the scratch dir as HOME. The agent's own environment (its
 * token among it) is never passed on. */
static char **build_env(const struct exec_spec *s)
{
	const char *path = getenv("PATH");
	return exec_env_build(s, path ? path : "/usr/local/bin:/usr/bin:/bin", s->workdir, NULL);
}

static int spawn_child(const struct exec_spec *s, pid_t *pid, struct err *e)
{
	int logfd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0)
		return err_set(e, ERR_INTERNAL, "cannot open log %s: %s", s->log_path, strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, logfd, 1);
	posix_spawn_file_actions_adddup2(&fa, logfd, 2);
	posix_spawn_file_actions_addchdir_np(&fa, s->workdir);
	posix_spawnattr_init(&attr);
	/* Own process group: stop signals reach the whole tree; default signal
	 * dispositions and an empty mask, whatever the agent blocks. */
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char **env = build_env(s);
	int rc = posix_spawnp(pid, s->argv[0], &fa, &attr, s->argv, env);
	exec_env_free(env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(logfd);
	if (rc != 0)
		return err_set(e, ERR_INVALID, "cannot run \"%s\": %s", s->argv[0], strerror(rc));
	return 0;
}

/* Nothing to fetch: the command runs from the host's own filesystem. */
static int proc_prepare(struct exec_backend *b, const struct exec_spec *s, char *reason, struct err *e)
{
	return 0;
}

static int proc_start(struct exec_backend *b, const struct exec_spec *s, char *reason, struct err *e)
{
	struct proc_backend *p = as_proc(b);
	pid_t pid;
	if (spawn_child(s, &pid, e) < 0) {
		str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_START_FAILED);
		return -1;
	}
	int pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return err_set(e, ERR_INTERNAL, "pidfd_open: %s", strerror(errno));
	}
	pthread_mutex_lock(&p->mu);
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->tasks = xrealloc(p->tasks, (size_t)p->cap * sizeof *p->tasks);
	}
	struct proc_task *t = &p->tasks[p->n++];
	memset(t, 0, sizeof *t);
	str_copy(t->id, sizeof t->id, s->task_id);
	t->pid = pid;
	t->pidfd = pidfd;
	t->grace_ms = s->stop_grace_ms;
	if (s->timeout_ms > 0)
		t->timeout_at_ns = mono_ns() + s->timeout_ms * 1000000;
	pthread_mutex_unlock(&p->mu);
	eventfd_write(p->wake_fd, 1);
	return 0;
}

static int proc_stop(struct exec_backend *b, const char *task_id, int grace_ms)
{
	struct proc_backend *p = as_proc(b);
	int rc = -1;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->n; i++) {
		if (strcmp(p->tasks[i].id, task_id) != 0)
			continue;
		kill(-p->tasks[i].pid, SIGTERM);
		p->tasks[i].kill_at_ns = mono_ns() + (int64_t)grace_ms * 1000000;
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	eventfd_write(p->wake_fd, 1);
	return rc;
}

/* Starts the stop of a task whose time is up. Lock held. */
static void stop_timed_out(struct proc_task *t, int64_t now)
{
	kill(-t->pid, SIGTERM);
	t->timed_out = true;
	t->timeout_at_ns = 0;
	if (!t->kill_at_ns)
		t->kill_at_ns = now + (int64_t)t->grace_ms * 1000000;
}

static void earliest(int64_t *next, int64_t at, int64_t now)
{
	if (at && (*next < 0 || at - now < *next))
		*next = at - now;
}

/* Stops the tasks past their timeout and SIGKILLs the groups whose grace ran
 * out; returns ms until the next deadline (or -1 for none). Lock held. */
static int enforce_deadlines(struct proc_backend *p)
{
	int64_t now = mono_ns(), next = -1;
	for (int i = 0; i < p->n; i++) {
		struct proc_task *t = &p->tasks[i];
		if (t->timeout_at_ns && now >= t->timeout_at_ns)
			stop_timed_out(t, now);
		earliest(&next, t->timeout_at_ns, now);
		if (!t->kill_at_ns || t->killed)
			continue;
		if (now >= t->kill_at_ns) {
			kill(-t->pid, SIGKILL);
			t->killed = true;
		} else {
			earliest(&next, t->kill_at_ns, now);
		}
	}
	return next < 0 ? -1 : (int)(next / 1000000) + 1;
}

static void fill_exit(const struct proc_task *t, int status, const struct rusage *ru, struct exec_exit *out)
{
	memset(out, 0, sizeof *out);
	str_copy(out->task_id, sizeof out->task_id, t->id);
	if (WIFSIGNALED(status)) {
		out->signal = WTERMSIG(status);
		out->exit_code = 128 + out->signal;
	} else {
		out->exit_code = WEXITSTATUS(status);
	}
	out->usage.cpu_seconds = (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
				 (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
	out->usage.peak_mem_bytes = (int64_t)ru->ru_maxrss * 1024;
	if (t->timed_out)
		exec_exit_set_failure(out, EXEC_REASON_TIMEOUT, "stopped after its timeout");
}

/* Reaps one exited child if any; lock held. The group is killed while the
 * leader is a zombie (WNOWAIT), so its pid, and with it the group id,
 * cannot be reused by an unrelated process before the kill lands. */
static bool reap_one(struct proc_backend *p, struct exec_exit *out)
{
	for (int i = 0; i < p->n; i++) {
		siginfo_t si = {0};
		if (waitid(P_PID, (id_t)p->tasks[i].pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			continue;
		kill(-p->tasks[i].pid, SIGKILL); /* no stray child keeps holding the GPU */
		int status;
		struct rusage ru;
		if (wait4(p->tasks[i].pid, &status, 0, &ru) != p->tasks[i].pid)
			continue;
		fill_exit(&p->tasks[i], status, &ru, out);
		close(p->tasks[i].pidfd);
		p->tasks[i] = p->tasks[--p->n];
		return true;
	}
	return false;
}

static int proc_wait_exit(struct exec_backend *b, int timeout_ms, struct exec_exit *out)
{
	struct proc_backend *p = as_proc(b);
	int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (reap_one(p, out)) {
			pthread_mutex_unlock(&p->mu);
			return 1;
		}
		int deadline_ms = enforce_deadlines(p);
		int n = p->n;
		struct pollfd *fds = xcalloc((size_t)n + 1, sizeof *fds);
		for (int i = 0; i < n; i++)
			fds[i] = (struct pollfd){.fd = p->tasks[i].pidfd, .events = POLLIN};
		fds[n] = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
		pthread_mutex_unlock(&p->mu);
		int more = exec_poll_round(fds, n, end, deadline_ms);
		free(fds);
		if (!more)
			return 0;
	}
}

static int proc_running(struct exec_backend *b)
{
	struct proc_backend *p = as_proc(b);
	pthread_mutex_lock(&p->mu);
	int n = p->n;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* The group leader's CPU time and peak RSS from /proc (children it already
 * reaped are counted in its exit usage, not here). */
static int proc_usage(struct exec_backend *b, const char *task_id, struct exec_usage *out)
{
	struct proc_backend *p = as_proc(b);
	pid_t pid = 0;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->tasks[i].id, task_id) == 0)
			pid = p->tasks[i].pid;
	pthread_mutex_unlock(&p->mu);
	if (!pid)
		return -1;
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name, which may hold spaces: from the last ')'. */
	const char *q = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	long long rss_pages = 0;
	if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld",
			  &ut, &st, &rss_pages) != 3)
		return -1;
	long tick = sysconf(_SC_CLK_TCK);
	out->cpu_seconds = (double)(ut + st) / (double)(tick > 0 ? tick : 100);
	out->peak_mem_bytes = rss_pages * sysconf(_SC_PAGESIZE);
	return 0;
}

/* Nothing outlives a process run but its files, which the agent owns. */
static void proc_cleanup(struct exec_backend *b, const char *task_id)
{
}

/* True when /proc/PID/environ names this task on this host: that is how an
 * orphan of a crashed agent is told apart from an unrelated process that
 * reused its pid, or from the task's next attempt under another agent on the
 * same machine. */
static bool process_runs_task(const char *pid, const char *id, const char *host)
{
	char path[64], want_id[64], want_host[96], buf[16384];
	snprintf(path, sizeof path, "/proc/%s/environ", pid);
	snprintf(want_id, sizeof want_id, "GPUNODE_TASK_ID=%s", id);
	snprintf(want_host, sizeof want_host, "GPUNODE_HOST=%s", host);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	bool id_ok = false, host_ok = false;
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1) {
		id_ok |= strcmp(buf + off, want_id) == 0;
		host_ok |= strcmp(buf + off, want_host) == 0;
	}
	return id_ok && host_ok;
}

static void kill_orphans(const char *id, const char *host)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9' && process_runs_task(de->d_name, id, host)) {
			pid_t pid = (pid_t)atoi(de->d_name);
			pid_t pgid = getpgid(pid);
			if (pgid > 1)
				kill(-pgid, SIGKILL);
			kill(pid, SIGKILL);
		}
	closedir(d);
}

/* A child of a dead agent cannot be waited for (its exit status went to
 * init), so it cannot be taken back: its orphans are killed and the node
 * requeues the task. */
static int proc_adopt(struct exec_backend *b, const char *host, struct exec_adopt *runs, int n, struct err *e)
{
	for (int i = 0; i < n; i++) {
		kill_orphans(runs[i].task_id, host);
		runs[i].state = EXEC_ADOPT_GONE;
	}
	return 0;
}

static void proc_destroy(struct exec_backend *b)
{
	struct proc_backend *p = as_proc(b);
	for (int i = 0; i < p->n; i++) {
		kill(-p->tasks[i].pid, SIGKILL);
		waitpid(p->tasks[i].pid, NULL, 0);
		close(p->tasks[i].pidfd);
	}
	free(p->tasks);
	close(p->wake_fd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

struct exec_backend *exec_process_new(struct err *e)
{
	struct proc_backend *p = xcalloc(1, sizeof *p);
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->wake_fd < 0) {
		err_set(e, ERR_INTERNAL, "eventfd: %s", strerror(errno));
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->base = (struct exec_backend){
		.name = "process",
		.prepare = proc_prepare,
		.start = proc_start,
		.stop = proc_stop,
		.wait_exit = proc_wait_exit,
		.usage = proc_usage,
		.cleanup = proc_cleanup,
		.adopt = proc_adopt,
		.running = proc_running,
		.destroy = proc_destroy,
	};
	return &p->base;
}
