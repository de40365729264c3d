/* sim_trace_csv.c — the generic trace reader (sim_jobs.h, documented in
 * docs/benchmarks.md): a header names the columns, so a trace exported from
 * any scheduler needs only a rename, not a reorder. */
#include <stdlib.h>
#include <string.h>

#include "sim_csv.h"
#include "sim_jobs.h"

enum sim_col { COL_SUBMIT, COL_DURATION, COL_GPUS, COL_CLIENT, COL_PRIORITY, COL_CATEGORY, COL_MILLI, COL_COUNT };

static const char *const sim_col_names[COL_COUNT] = { "submit_s", "duration_s", "gpus",	 "client",
						      "priority", "category",   "milli" };
#define SIM_REQUIRED_COLS 3 /* submit_s, duration_s, gpus */
#define SIM_MAX_TRACE_S (100.0 * 365 * 86400)
#define SIM_DEFAULT_CLIENT "default"

/* Maps each column of the header to its sim_col; col_of[i] for field i. */
static int sim_trace_header(struct sim_csv *c, int *col_of, int *n_cols, struct err *e)
{
	char *f[SIM_MAX_FIELDS];
	int nf = sim_split(c->line, f, SIM_MAX_FIELDS), seen[COL_COUNT] = { 0 };
	if (nf > COL_COUNT)
		return err_set(e, ERR_INVALID, "%s:%ld: the header has %d columns, at most %d are known", c->name,
			       c->lineno, nf, COL_COUNT);
	for (int i = 0; i < nf; i++) {
		int k = 0;
		while (k < COL_COUNT && strcmp(f[i], sim_col_names[k]) != 0)
			k++;
		if (k == COL_COUNT)
			return err_set(e, ERR_INVALID,
				       "%s:%ld: unknown column '%s' (known: submit_s, duration_s, gpus, client, "
				       "priority, category, milli)",
				       c->name, c->lineno, f[i]);
		if (seen[k]++)
			return err_set(e, ERR_INVALID, "%s:%ld: column '%s' appears twice", c->name, c->lineno, f[i]);
		col_of[i] = k;
	}
	for (int k = 0; k < SIM_REQUIRED_COLS; k++)
		if (!seen[k])
			return err_set(e, ERR_INVALID, "%s:%ld: the header lacks the required column '%s'", c->name,
				       c->lineno, sim_col_names[k]);
	*n_cols = nf;
	return 0;
}

static int sim_trace_field(struct sim_csv *c, enum sim_col col, const char *s, struct sim_job *j, struct err *e)
{
	int64_t v = 0;
	switch (col) {
	case COL_SUBMIT:
		return sim_field_seconds_ms(c, "submit_s", s, SIM_MAX_TRACE_S, &j->submit_ms, e);
	case COL_DURATION:
		return sim_field_seconds_ms(c, "duration_s", s, SIM_MAX_TRACE_S, &j->duration_ms, e);
	case COL_GPUS:
		if (sim_field_int(c, "gpus", s, 1, SIM_JOB_MAX_GPUS, &v, e) < 0)
			return -1;
		j->gpus = (int)v;
		return 0;
	case COL_CLIENT:
		return sim_field_name(c, "client", s, j->client, sizeof j->client, e);
	case COL_PRIORITY:
		if (sim_field_int(c, "priority", s, -1000, 1000, &v, e) < 0)
			return -1;
		j->priority = (int)v;
		return 0;
	case COL_CATEGORY:
		if (task_category_parse(s, &j->category) < 0)
			return err_set(e, ERR_INVALID,
				       "%s:%ld: category: expected inference, training, finetune or batch, got '%s'",
				       c->name, c->lineno, s);
		return 0;
	case COL_MILLI:
		if (sim_field_int(c, "milli", s, 1, TASK_MILLI_FULL, &v, e) < 0)
			return -1;
		j->milli = (int)v;
		return 0;
	case COL_COUNT:
		break;
	}
	return err_set(e, ERR_INTERNAL, "unknown column %d", (int)col);
}

static int sim_trace_line(struct sim_csv *c, const int *col_of, int n_cols, struct sim_jobs *out, struct err *e)
{
	char *f[SIM_MAX_FIELDS];
	int nf = sim_split(c->line, f, SIM_MAX_FIELDS);
	if (nf != n_cols)
		return err_set(e, ERR_INVALID, "%s:%ld: expected %d fields as in the header, got %d", c->name,
			       c->lineno, n_cols, nf);
	struct sim_job *j = sim_jobs_push(out);
	j->line = c->lineno;
	strcpy(j->client, SIM_DEFAULT_CLIENT);
	for (int i = 0; i < nf; i++)
		if (sim_trace_field(c, (enum sim_col)col_of[i], f[i], j, e) < 0)
			return -1;
	if (j->milli < TASK_MILLI_FULL && j->gpus != 1)
		return err_set(e, ERR_INVALID, "%s:%ld: milli %d: a share of a GPU needs gpus 1, got %d", c->name,
			       c->lineno, j->milli, j->gpus);
	return 0;
}

int sim_read_trace_csv_file(FILE *f, const char *name, struct sim_jobs *out, struct err *e)
{
	struct sim_csv c = { .f = f, .name = name };
	int col_of[SIM_MAX_FIELDS], n_cols = 0, rc = -1;
	memset(out, 0, sizeof *out);
	if (!sim_csv_next(&c)) {
		err_set(e, ERR_INVALID, "%s: empty file, expected a header (submit_s,duration_s,gpus,...)", name);
		goto out;
	}
	if (sim_trace_header(&c, col_of, &n_cols, e) < 0)
		goto out;
	while (sim_csv_next(&c))
		if (sim_trace_line(&c, col_of, n_cols, out, e) < 0)
			goto out;
	if (out->n == 0) {
		err_set(e, ERR_INVALID, "%s: no jobs after the header", name);
		goto out;
	}
	sim_jobs_sort_rebase(out);
	rc = 0;
out:
	free(c.line);
	if (rc < 0)
		sim_jobs_free(out);
	return rc;
}

int sim_read_trace_csv(const char *path, struct sim_jobs *out, struct err *e)
{
	FILE *f = sim_open(path, e);
	if (!f)
		return -1;
	int rc = sim_read_trace_csv_file(f, path, out, e);
	fclose(f);
	return rc;
}
