/* exec_oci_wait.c — watching the shims: one poll() over their pidfds (and
 * an eventfd for changes) sees any exit at once; deadlines (stop graces,
 * task timeouts) are enforced between polls. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci_backend.h"
#include "util.h"

/* Through the init's pidfd (no pid reuse race); through the runtime when
 * the init's pid was never read (an adopted run without init.pid). */
static void signal_init(const struct oci_backend *o, struct oci_task *t, int sig)
{
	if (t->init_pidfd >= 0)
		syscall(SYS_pidfd_send_signal, t->init_pidfd, sig, NULL, 0);
	else
		oci_runtime_kill(o, t->id, sig);
}

/* Starts the stop of timed-out runs and SIGKILLs those whose grace ran
 * out; returns ms until the next deadline, -1 for none. Lock held. */
static int enforce_deadlines(struct oci_backend *o)
{
	int64_t now = mono_ns(), next = -1;
	for (int i = 0; i < o->n; i++) {
		struct oci_task *t = &o->tasks[i];
		if (t->timeout_at_ns && !t->timed_out && now >= t->timeout_at_ns) {
			t->timed_out = true;
			signal_init(o, t, SIGTERM);
			int64_t at = now + (int64_t)t->timeout_grace_ms * 1000000;
			if (!t->kill_at_ns || at < t->kill_at_ns)
				t->kill_at_ns = at;
		}
		if (t->kill_at_ns && !t->killed && now >= t->kill_at_ns) {
			signal_init(o, t, SIGKILL);
			t->killed = true;
		}
		int64_t d[2] = {t->timed_out ? 0 : t->timeout_at_ns, t->killed ? 0 : t->kill_at_ns};
		for (int k = 0; k < 2; k++)
			if (d[k] && (next < 0 || d[k] - now < next))
				next = d[k] - now;
	}
	return next < 0 ? -1 : (int)(next / 1000000) + 1;
}

/* The exit of a run whose shim is gone. */
static void fill_exit(const struct oci_task *t, struct exec_exit *out)
{
	if (oci_exit_read(t->bundle, t->id, out) < 0) {
		memset(out, 0, sizeof *out);
		str_copy(out->task_id, sizeof out->task_id, t->id);
		out->exit_code = 255;
		exec_exit_set_failure(out, EXEC_REASON_START_FAILED,
				      "the container's shim ended without recording an exit (killed?)");
	}
	if (t->timed_out)
		exec_exit_set_failure(out, EXEC_REASON_TIMEOUT, "stopped after its time limit");
}

/* Takes one run whose shim exited; lock held. *warm: the warm container
 * it ran in (to release once unlocked), *failed: whether that container may
 * hold what the run left (stopped, timed out, killed, OOM). */
static bool reap_one(struct oci_backend *o, struct exec_exit *out, struct oci_warm **warm, bool *failed)
{
	for (int i = 0; i < o->n; i++) {
		struct oci_task *t = &o->tasks[i];
		struct pollfd p = {.fd = t->shim_pidfd, .events = POLLIN};
		if (poll(&p, 1, 0) <= 0)
			continue;
		if (t->shim_is_child)
			waitpid(t->shim_pid, NULL, 0);
		fill_exit(t, out);
		*warm = t->warm;
		*failed = t->kill_at_ns || t->timed_out || out->failure_reason[0] || out->signal;
		close(t->shim_pidfd);
		if (t->init_pidfd >= 0)
			close(t->init_pidfd);
		o->tasks[i] = o->tasks[--o->n];
		return true;
	}
	return false;
}

int oci_wait_exit(struct exec_backend *b, int timeout_ms, struct exec_exit *out)
{
	struct oci_backend *o = as_oci(b);
	int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		struct oci_warm *warm = NULL;
		bool failed = false;
		pthread_mutex_lock(&o->mu);
		bool reaped = reap_one(o, out, &warm, &failed);
		pthread_mutex_unlock(&o->mu);
		if (warm)
			oci_warm_release(o, warm, failed);
		if (reaped)
			return 1;
		int warm_ms = oci_warm_expire(o, false);
		pthread_mutex_lock(&o->mu);
		int deadline_ms = enforce_deadlines(o);
		if (warm_ms >= 0 && (deadline_ms < 0 || warm_ms < deadline_ms))
			deadline_ms = warm_ms;
		int n = o->n;
		struct pollfd *fds = xcalloc((size_t)n + 1, sizeof *fds);
		for (int i = 0; i < n; i++)
			fds[i] = (struct pollfd){.fd = o->tasks[i].shim_pidfd, .events = POLLIN};
		fds[n] = (struct pollfd){.fd = o->wake_fd, .events = POLLIN};
		pthread_mutex_unlock(&o->mu);
		int more = exec_poll_round(fds, n, end, deadline_ms);
		free(fds);
		if (!more)
			return 0;
	}
}
