#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool log_quiet;

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void deadline_in_ns(struct timespec *ts, int64_t ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ns / 1000000000L;
	ts->tv_nsec += ns % 1000000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *check_alloc(void *p)
{
	if (!p) {
		fputs("gpunode: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xmalloc(size_t n) { return check_alloc(malloc(n ? n : 1)); }
void *xcalloc(size_t n, size_t size) { return check_alloc(calloc(n ? n : 1, size ? size : 1)); }
void *xrealloc(void *p, size_t n) { return check_alloc(realloc(p, n ? n : 1)); }
char *xstrdup(const char *s) { return s ? check_alloc(strdup(s)) : NULL; }

char **strv_dup(char *const *v, int n)
{
	if (!v || n <= 0)
		return NULL;
	char **out = xcalloc((size_t)n + 1, sizeof *out);
	for (int i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

void strv_free(char **v, int n)
{
	if (!v)
		return;
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

bool str_copy(char *dst, size_t cap, const char *src)
{
	int r = snprintf(dst, cap, "%s", src ? src : "");
	return r >= 0 && (size_t)r < cap;
}

void format_rfc3339_ms(int64_t ms, char *buf, size_t cap)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char base[24];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%03dZ", base, (int)(ms % 1000));
}

void log_set_quiet(bool quiet) { log_quiet = quiet; }

void log_msg(const char *level, const char *module, const char *fmt, ...)
{
	if (log_quiet && strcmp(level, "info") == 0)
		return;
	char ts[32];
	format_rfc3339_ms(now_ms(), ts, sizeof ts);
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s %s %s: %s\n", ts, level, module, line);
}

int write_file_atomic(const char *path, const char *text, mode_t mode, struct err *e)
{
	char tmp[1100];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return err_set(e, ERR_INVALID, "path too long: %s", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		int saved = errno;
		unlink(tmp);
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", path, strerror(saved));
	}
	return 0;
}
