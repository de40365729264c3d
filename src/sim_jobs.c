/* sim_jobs.c — the job list of the time-driven simulations and what is
 * reported about a run: the summary figures and the per-task CSV. */
#include "sim_jobs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const sim_queue_mode_names[SIM_QUEUE_COUNT] = { "default", "fifo", "sjf" };

const char *sim_queue_mode_name(enum sim_queue_mode m)
{
	return (unsigned)m < SIM_QUEUE_COUNT ? sim_queue_mode_names[m] : "unknown";
}

int sim_queue_mode_parse(const char *name, enum sim_queue_mode *out)
{
	for (int i = 0; i < SIM_QUEUE_COUNT; i++)
		if (name && strcmp(name, sim_queue_mode_names[i]) == 0) {
			*out = (enum sim_queue_mode)i;
			return 0;
		}
	return -1;
}

void sim_jobs_free(struct sim_jobs *j)
{
	free(j->v);
	memset(j, 0, sizeof *j);
}

struct sim_job *sim_jobs_push(struct sim_jobs *j)
{
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 4096;
		j->v = xrealloc(j->v, j->cap * sizeof *j->v);
	}
	struct sim_job *job = &j->v[j->n++];
	memset(job, 0, sizeof *job);
	job->milli = TASK_MILLI_FULL;
	job->category = TASK_CAT_BATCH;
	return job;
}

/* Submission time, then file line: qsort is not stable, the line makes it so. */
static int sim_job_submit_cmp(const void *pa, const void *pb)
{
	const struct sim_job *a = pa, *b = pb;
	if (a->submit_ms != b->submit_ms)
		return a->submit_ms < b->submit_ms ? -1 : 1;
	return (a->line > b->line) - (a->line < b->line);
}

void sim_jobs_sort_rebase(struct sim_jobs *j)
{
	if (j->n == 0)
		return;
	qsort(j->v, j->n, sizeof *j->v, sim_job_submit_cmp);
	int64_t first = j->v[0].submit_ms;
	for (size_t i = 0; i < j->n; i++)
		j->v[i].submit_ms -= first;
}

/* ---- the summary ---- */

static int sim_i64_cmp(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
	return (a > b) - (a < b);
}

/* The nearest-rank percentile of sorted v (n > 0). */
static double sim_percentile_s(const int64_t *v, size_t n, double pct)
{
	size_t rank = (size_t)ceil(pct / 100.0 * (double)n);
	return (double)v[rank > 0 ? rank - 1 : 0] / 1000.0;
}

void sim_jobs_summarize(const struct sim_jobs *jobs, const struct sim_outcome *out, int total_gpus,
			struct sim_summary *sum)
{
	memset(sum, 0, sizeof *sum);
	sum->jobs = jobs->n;
	sum->total_gpus = total_gpus;
	int64_t *waits = xmalloc((jobs->n ? jobs->n : 1) * sizeof *waits);
	double jct = 0, wait = 0, gpu_ms = 0;
	int64_t last_end = 0;
	for (size_t i = 0; i < jobs->n; i++) {
		const struct sim_job *j = &jobs->v[i];
		if (out[i].host < 0) {
			sum->unplaced++;
			continue;
		}
		int64_t w = out[i].start_ms - j->submit_ms;
		waits[sum->placed++] = w;
		wait += (double)w;
		jct += (double)(out[i].end_ms - j->submit_ms);
		gpu_ms += (double)j->duration_ms * j->gpus * j->milli / TASK_MILLI_FULL;
		if (out[i].end_ms > last_end)
			last_end = out[i].end_ms;
	}
	if (sum->placed > 0) {
		qsort(waits, sum->placed, sizeof *waits, sim_i64_cmp);
		sum->avg_jct_s = jct / (double)sum->placed / 1000.0;
		sum->avg_wait_s = wait / (double)sum->placed / 1000.0;
		sum->p50_wait_s = sim_percentile_s(waits, sum->placed, 50);
		sum->p99_wait_s = sim_percentile_s(waits, sum->placed, 99);
		sum->max_wait_s = (double)waits[sum->placed - 1] / 1000.0;
	}
	/* submit_ms is rebased: the first submission is at 0 */
	sum->makespan_s = (double)last_end / 1000.0;
	if (last_end > 0 && total_gpus > 0)
		sum->gpu_util = gpu_ms / ((double)total_gpus * (double)last_end);
	free(waits);
}

/* ---- the per-task CSV ---- */

static void sim_write_seconds(FILE *f, int64_t ms)
{
	fprintf(f, ",%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
}

int sim_jobs_write_csv(FILE *f, const struct sim_jobs *jobs, const struct sim_outcome *out)
{
	fputs("job,client,submit_s,start_s,end_s,wait_s,host,gpus\n", f);
	for (size_t i = 0; i < jobs->n; i++) {
		const struct sim_job *j = &jobs->v[i];
		const struct sim_outcome *o = &out[i];
		fprintf(f, "%ld,%s", j->line, j->client);
		sim_write_seconds(f, j->submit_ms);
		if (o->host < 0) {
			fputs(",,,,unplaced,unplaced\n", f);
			continue;
		}
		sim_write_seconds(f, o->start_ms);
		sim_write_seconds(f, o->end_ms);
		sim_write_seconds(f, o->start_ms - j->submit_ms);
		fprintf(f, ",%d,", o->host);
		const char *sep = "";
		for (int g = 0; g < TASK_MAX_GPUS; g++)
			if (o->gpu_mask & (1u << g)) {
				fprintf(f, "%s%d", sep, g);
				sep = "-";
			}
		fputc('\n', f);
	}
	return ferror(f) ? -1 : 0;
}
