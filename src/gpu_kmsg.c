/* gpu_kmsg.c — the kernel-log watcher. Two kinds of source:
 * - /dev/kmsg (a character device): each read() returns one record
 *   "PRI,SEQ,TS,FLAGS;MESSAGE". Opening it starts at the oldest record the
 *   kernel still holds, so Xids logged before the agent started are seen
 *   too; records handled before a restart are skipped by sequence number
 *   (gpu_monitor.c). EPIPE means records were overwritten before we read
 *   them: we go on with the next one.
 * - a plain file that someone appends dmesg-style lines to (tests, drills,
 *   a host whose kernel log is shipped into a file): read from where we
 *   were, woken by inotify the moment it grows; a file that shrank was
 *   rotated or truncated, so we start it over.
 * Either way a line reaches the parser within milliseconds of being written,
 * which is most of the fault-to-replacement budget. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu_monitor_impl.h"
#include "util.h"

#define KMSG_RECORD_MAX 8192
#define KMSG_STOP_CHECK_MS 250 /* how soon the watcher notices stop */

static bool is_char_device(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode);
}

int gpu_kmsg_open(struct gpu_monitor *m, struct err *e)
{
	m->inotify_fd = -1;
	const char *path = m->cfg.kmsg_path;
	if (!path || !*path)
		return 0;
	m->kmsg_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (m->kmsg_fd < 0)
		return err_set(e, ERR_INVALID, "cannot read the kernel log %s: %s", path, strerror(errno));
	if (is_char_device(m->kmsg_fd))
		return 0;
	m->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (m->inotify_fd < 0 || inotify_add_watch(m->inotify_fd, path, IN_MODIFY) < 0)
		return err_set(e, ERR_INTERNAL, "cannot watch %s: %s", path, strerror(errno));
	return 0;
}

void gpu_kmsg_close(struct gpu_monitor *m)
{
	if (m->kmsg_fd >= 0)
		close(m->kmsg_fd);
	if (m->inotify_fd >= 0)
		close(m->inotify_fd);
	m->kmsg_fd = m->inotify_fd = -1;
}

static bool stopping(struct gpu_monitor *m)
{
	pthread_mutex_lock(&m->mu);
	bool s = m->stopping;
	pthread_mutex_unlock(&m->mu);
	return s;
}

/* /dev/kmsg: one record per read. */
static void read_records(struct gpu_monitor *m, char *buf)
{
	for (;;) {
		ssize_t n = read(m->kmsg_fd, buf, KMSG_RECORD_MAX - 1);
		if (n < 0 && errno == EPIPE)
			continue; /* overwritten before we got to them */
		if (n <= 0)
			return;
		buf[n] = '\0';
		gpu_monitor_feed_line(m, buf);
	}
}

/* A plain file: every complete line after kmsg_offset. */
static void read_lines(struct gpu_monitor *m, char *buf)
{
	struct stat st;
	if (fstat(m->kmsg_fd, &st) == 0 && st.st_size < m->kmsg_offset)
		m->kmsg_offset = 0; /* truncated or rotated in place */
	for (;;) {
		ssize_t n = pread(m->kmsg_fd, buf, KMSG_RECORD_MAX - 1, m->kmsg_offset);
		if (n <= 0)
			return;
		buf[n] = '\0';
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			gpu_monitor_feed_line(m, line);
			line = nl + 1;
		}
		size_t used = (size_t)(line - buf);
		if (used == 0) {
			if (n < KMSG_RECORD_MAX - 1)
				return; /* a partial last line: wait for its end */
			used = (size_t)n; /* one overlong line: skip it */
		}
		pthread_mutex_lock(&m->mu);
		m->kmsg_offset += (int64_t)used;
		m->dirty_state = true;
		pthread_mutex_unlock(&m->mu);
	}
}

static void drain_inotify(int fd)
{
	char ev[4096];
	while (read(fd, ev, sizeof ev) > 0)
		;
}

void *gpu_kmsg_main(void *arg)
{
	struct gpu_monitor *m = arg;
	char *buf = xmalloc(KMSG_RECORD_MAX);
	bool device = m->inotify_fd < 0;
	while (!stopping(m)) {
		if (device)
			read_records(m, buf);
		else
			read_lines(m, buf);
		struct pollfd p = {.fd = device ? m->kmsg_fd : m->inotify_fd, .events = POLLIN};
		if (poll(&p, 1, KMSG_STOP_CHECK_MS) > 0 && !device)
			drain_inotify(m->inotify_fd);
	}
	free(buf);
	return NULL;
}
