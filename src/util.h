/* util.h — small helpers shared by every module: time, memory, strings. */
#ifndef GPUNODE_UTIL_H
#define GPUNODE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Wall clock in milliseconds since the epoch (CLOCK_REALTIME). */
int64_t now_ms(void);
/* Monotonic clock in nanoseconds, for measuring durations. */
int64_t mono_ns(void);

/* The CLOCK_REALTIME instant ns nanoseconds from now, as
 * pthread_cond_timedwait wants its deadline. */
struct timespec;
void deadline_in_ns(struct timespec *ts, int64_t ns);

/* Allocation that aborts on out-of-memory: the node cannot do anything
 * sensible without memory, and checking every small allocation hides bugs. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Deep copy / free of a NULL-terminated or counted string vector. */
char **strv_dup(char *const *v, int n);
void strv_free(char **v, int n);

/* snprintf into a fixed buffer; returns false if truncated. */
bool str_copy(char *dst, size_t cap, const char *src);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-23T19:40:01.123Z") into buf (>= 32 bytes). */
void format_rfc3339_ms(int64_t ms, char *buf, size_t cap);

/* One log line to stderr: "ts level module: key=value ..." (why: greppable,
 * one event per line). level is "info", "warn" or "error". */
void log_msg(const char *level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Replaces path with text: a temp file beside it, fsynced, renamed over
 * it, so a crash leaves the old content or the new, never a mix. */
int write_file_atomic(const char *path, const char *text, mode_t mode, struct err *e);
/* Silences info lines (tests, benchmarks). */
void log_set_quiet(bool quiet);

#endif
