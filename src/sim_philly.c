/* sim_philly.c — the Philly trace reader (sim_jobs.h). The file is the
 * Pollux artifact's flattening of Microsoft's 2017 Philly trace; it is not
 * sorted by submission, so the jobs are sorted after reading. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_csv.h"
#include "sim_jobs.h"

static const char sim_hdr_philly[] = "timestamp,duration,num_gpus,gpu_time,cluster";
#define SIM_MAX_DURATION_S (10.0 * 365 * 86400) /* ten years: anything longer is a broken line */

/* "YYYY-MM-DD HH:MM:SS", UTC, to ms since the epoch. */
static int sim_field_timestamp(struct sim_csv *c, const char *s, int64_t *out_ms, struct err *e)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!end || *end || strlen(s) != 19)
		return err_set(e, ERR_INVALID, "%s:%ld: timestamp: expected 'YYYY-MM-DD HH:MM:SS', got '%s'", c->name,
			       c->lineno, s);
	*out_ms = (int64_t)timegm(&tm) * 1000;
	return 0;
}

static int sim_philly_line(struct sim_csv *c, struct sim_jobs *out, struct err *e)
{
	char *f[SIM_MAX_FIELDS];
	int nf = sim_split(c->line, f, SIM_MAX_FIELDS);
	if (nf != 5)
		return err_set(e, ERR_INVALID, "%s:%ld: expected 5 fields (%s), got %d", c->name, c->lineno,
			       sim_hdr_philly, nf);
	struct sim_job *j = sim_jobs_push(out);
	int64_t gpus = 0, gpu_time = 0; /* set by the parse below */
	j->line = c->lineno;
	if (sim_field_timestamp(c, f[0], &j->submit_ms, e) < 0 ||
	    sim_field_seconds_ms(c, "duration", f[1], SIM_MAX_DURATION_S, &j->duration_ms, e) < 0 ||
	    sim_field_int(c, "num_gpus", f[2], 1, SIM_JOB_MAX_GPUS, &gpus, e) < 0 ||
	    sim_field_seconds_ms(c, "gpu_time", f[3], SIM_MAX_DURATION_S * SIM_JOB_MAX_GPUS, &gpu_time, e) < 0 ||
	    sim_field_name(c, "cluster", f[4], j->client, sizeof j->client, e) < 0)
		return -1;
	j->gpus = (int)gpus;
	return 0;
}

int sim_read_philly_file(FILE *f, const char *name, struct sim_jobs *out, struct err *e)
{
	struct sim_csv c = { .f = f, .name = name };
	memset(out, 0, sizeof *out);
	int rc = -1;
	if (!sim_csv_next(&c)) {
		err_set(e, ERR_INVALID, "%s: empty file, expected the Philly trace", name);
		goto out;
	}
	if (strcmp(c.line, sim_hdr_philly) != 0) {
		err_set(e, ERR_INVALID, "%s:%ld: expected the header '%s', got '%s'", name, c.lineno, sim_hdr_philly,
			c.line);
		goto out;
	}
	while (sim_csv_next(&c))
		if (sim_philly_line(&c, out, e) < 0)
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

int sim_read_philly(const char *path, struct sim_jobs *out, struct err *e)
{
	FILE *f = sim_open(path, e);
	if (!f)
		return -1;
	int rc = sim_read_philly_file(f, path, out, e);
	fclose(f);
	return rc;
}
