/* exec_poll.c — the waiting half of a backend's wait_exit, shared by the
 * process and OCI backends: poll their children's pidfds plus a wake-up
 * eventfd until one is readable, the next kill deadline, or the end. */
#include <poll.h>
#include <sys/eventfd.h>

#include "exec.h"
#include "util.h"

int exec_poll_round(struct pollfd *fds, int n, int64_t end_ns, int deadline_ms)
{
	int64_t left = (end_ns - mono_ns()) / 1000000;
	if (left <= 0)
		return 0;
	int wait = deadline_ms >= 0 && deadline_ms < left ? deadline_ms : (int)left;
	poll(fds, (nfds_t)n + 1, wait);
	if (fds[n].revents & POLLIN) {
		eventfd_t v;
		eventfd_read(fds[n].fd, &v);
	}
	return 1;
}
