/* sim_csv.c — the shared line reader of the trace readers (sim_csv.h). */
#include "sim_csv.h"

#include <archive.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- opening, with gunzip for ".gz" ---- */

static ssize_t sim_gz_read(void *cookie, char *buf, size_t size)
{
	la_ssize_t n = archive_read_data(cookie, buf, size);
	if (n < 0) {
		errno = EIO;
		return -1;
	}
	return n;
}

static int sim_gz_close(void *cookie)
{
	return archive_read_free(cookie) == ARCHIVE_OK ? 0 : EOF;
}

/* A FILE that reads the decompressed bytes: the readers keep using getline. */
static FILE *sim_open_gz(const char *path, struct err *e)
{
	struct archive *a = archive_read_new();
	struct archive_entry *entry;
	archive_read_support_filter_gzip(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
	    archive_read_next_header(a, &entry) != ARCHIVE_OK) {
		err_set(e, ERR_INVALID, "%s: %s", path, archive_error_string(a) ? archive_error_string(a) : "not gzip");
		archive_read_free(a);
		return NULL;
	}
	FILE *f = fopencookie(a, "r", (cookie_io_functions_t){ .read = sim_gz_read, .close = sim_gz_close });
	if (!f) {
		err_set(e, ERR_INTERNAL, "%s: %s", path, strerror(errno));
		archive_read_free(a);
	}
	return f;
}

FILE *sim_open(const char *path, struct err *e)
{
	size_t n = strlen(path);
	if (n > 3 && strcmp(path + n - 3, ".gz") == 0)
		return sim_open_gz(path, e);
	FILE *f = fopen(path, "r");
	if (!f)
		err_set(e, ERR_INVALID, "%s: %s", path, strerror(errno));
	return f;
}

/* ---- lines and fields ---- */

int sim_split(char *line, char **f, int max)
{
	int n = 0;
	f[n++] = line;
	for (char *p = line; *p; p++) {
		if (*p != ',')
			continue;
		*p = '\0';
		if (n == max)
			return max + 1;
		f[n++] = p + 1;
	}
	return n;
}

static void sim_chomp(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

int sim_csv_next(struct sim_csv *c)
{
	for (;;) {
		if (getline(&c->line, &c->cap, c->f) < 0)
			return 0;
		c->lineno++;
		sim_chomp(c->line);
		if (c->line[0])
			return 1;
	}
}

int sim_field_int(struct sim_csv *c, const char *field, const char *s, int64_t min, int64_t max, int64_t *out,
		  struct err *e)
{
	char *end;
	errno = 0;
	long long v = *s ? strtoll(s, &end, 10) : 0;
	if (*s && !errno && !*end && v >= min && v <= max) {
		*out = v;
		return 0;
	}
	return err_set(e, ERR_INVALID, "%s:%ld: %s: expected an integer %" PRId64 "..%" PRId64 ", got '%s'", c->name,
		       c->lineno, field, min, max, s);
}

int sim_field_seconds_ms(struct sim_csv *c, const char *field, const char *s, double max_s, int64_t *out_ms,
			 struct err *e)
{
	char *end;
	errno = 0;
	/* strtod also takes "inf", "nan" and hex; a trace has plain decimals */
	bool plain = *s && strspn(s, "0123456789.") == strlen(s);
	double v = plain ? strtod(s, &end) : NAN;
	if (plain && !errno && !*end && v >= 0 && v <= max_s) {
		*out_ms = (int64_t)llround(v * 1000.0);
		return 0;
	}
	return err_set(e, ERR_INVALID, "%s:%ld: %s: expected seconds 0..%.0f (a plain decimal), got '%s'", c->name,
		       c->lineno, field, max_s, s);
}

int sim_field_name(struct sim_csv *c, const char *field, const char *s, char *dst, size_t cap, struct err *e)
{
	if (!*s)
		return err_set(e, ERR_INVALID, "%s:%ld: %s is empty", c->name, c->lineno, field);
	if (!str_copy(dst, cap, s))
		return err_set(e, ERR_INVALID, "%s:%ld: %s is longer than %zu characters", c->name, c->lineno, field,
			       cap - 1);
	return 0;
}
