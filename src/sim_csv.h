/* sim_csv.h — the line reader every `gpunode sim` trace reader shares: one
 * CSV line at a time, split in place, fields parsed with errors that name
 * the file, the line and the field. Files ending in ".gz" are read through
 * libarchive (already linked for the image store), so traces can stay
 * compressed on disk. */
#ifndef GPUNODE_SIM_CSV_H
#define GPUNODE_SIM_CSV_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define SIM_MAX_FIELDS 16

struct sim_csv {
	FILE *f;
	const char *name; /* for messages: the path as given */
	char *line;       /* the current line, chomped; split in place by sim_split */
	size_t cap;
	long lineno;
};

/* Opens path for reading; gunzips on the fly when it ends in ".gz". */
FILE *sim_open(const char *path, struct err *e);

/* The next non-empty line, chomped; 0 at EOF, 1 with a line. */
int sim_csv_next(struct sim_csv *c);
/* Splits line in place on ','; returns the number of fields, max + 1 when
 * there are more than max. */
int sim_split(char *line, char **f, int max);

/* One integer field in [min, max]. */
int sim_field_int(struct sim_csv *c, const char *field, const char *s, int64_t min, int64_t max, int64_t *out,
		  struct err *e);
/* A non-negative decimal number of seconds ("66", "66.0", "0.25") in
 * milliseconds, rounded to the nearest; at most max_s seconds. */
int sim_field_seconds_ms(struct sim_csv *c, const char *field, const char *s, double max_s, int64_t *out_ms,
			 struct err *e);
/* A non-empty name that fits cap (with its NUL). */
int sim_field_name(struct sim_csv *c, const char *field, const char *s, char *dst, size_t cap, struct err *e);

#endif
