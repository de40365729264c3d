/* sim_clock.c — the virtual clock of `gpunode sim philly|trace`
 * (sim_jobs.h): events in time order, and at each instant one scheduling
 * pass with the real queue and placement code. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool.h"
#include "sim_jobs.h"
#include "util.h"

/* A running job: when it ends and what to give back. */
struct sim_running {
	int64_t end_ms;
	size_t job;
	struct placement pl;
};

struct sim_state {
	const struct sim_jobs *jobs;
	const struct sim_jobs_opts *o;
	struct sim_outcome *out;
	struct pool *pool;
	struct queue *queue;           /* default mode */
	struct task **pending;         /* fifo (arrival order) and sjf (duration order) */
	size_t n_pending, head;        /* fifo: live range [head, n_pending) */
	struct task **order;           /* default mode: queue_order's output */
	struct sched_decision *decisions;
	struct sim_running *running;   /* min-heap by end_ms */
	size_t n_running;
	int64_t free_milli;            /* GPU milli not allocated */
	uint64_t passes;
	size_t progress_tenths;        /* tenths of the jobs reported as arrived */
};

/* ---- running jobs: a binary heap by end time ---- */

static bool sim_running_before(const struct sim_running *a, const struct sim_running *b)
{
	return a->end_ms != b->end_ms ? a->end_ms < b->end_ms : a->job < b->job;
}

static void sim_running_push(struct sim_state *s, const struct sim_running *r)
{
	size_t i = s->n_running++;
	while (i > 0 && sim_running_before(r, &s->running[(i - 1) / 2])) {
		s->running[i] = s->running[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->running[i] = *r;
}

static struct sim_running sim_running_pop(struct sim_state *s)
{
	struct sim_running top = s->running[0], last = s->running[--s->n_running];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n_running)
			break;
		if (c + 1 < s->n_running && sim_running_before(&s->running[c + 1], &s->running[c]))
			c++;
		if (!sim_running_before(&s->running[c], &last))
			break;
		s->running[i] = s->running[c];
		i = c;
	}
	if (s->n_running > 0)
		s->running[i] = last;
	return top;
}

/* ---- the cluster ---- */

static struct pool *sim_cluster_pool(const struct sim_cluster *c)
{
	struct pool *p = pool_new();
	struct gpu g[TASK_MAX_GPUS];
	for (int h = 0; h < c->hosts; h++) {
		memset(g, 0, sizeof g);
		for (int i = 0; i < c->gpus_per_host; i++) {
			snprintf(g[i].uuid, sizeof g[i].uuid, "GPU-sim-%d-%d", h, i);
			g[i].index = i;
			str_copy(g[i].model, sizeof g[i].model, "sim");
			g[i].nvlink_group = 0; /* one NVLink domain per host, as on HGX boards */
			g[i].simulated = true;
		}
		char id[TASK_HOST_MAX];
		snprintf(id, sizeof id, "host%04d", h);
		pool_upsert_host(p, id, g, c->gpus_per_host, 0, 0);
	}
	return p;
}

static struct task *sim_task_of(const struct sim_job *j, size_t idx)
{
	struct task *t = task_new();
	str_copy(t->client, sizeof t->client, j->client);
	t->priority = j->priority;
	t->category = j->category;
	t->res.gpus = j->gpus;
	t->res.milli = j->milli;
	t->queued_ms = j->submit_ms;
	t->seq = idx; /* jobs are in arrival order: the queue's tie-break */
	return t;
}

static int64_t sim_task_milli(const struct task *t)
{
	return (int64_t)pool_task_milli(&t->res) * t->res.gpus;
}

/* ---- starting and ending jobs ---- */

static void sim_start(struct sim_state *s, struct task *t, const struct placement *pl, int64_t now)
{
	size_t idx = (size_t)t->seq;
	const struct sim_job *j = &s->jobs->v[idx];
	struct sim_outcome *o = &s->out[idx];
	o->start_ms = now;
	o->end_ms = now + j->duration_ms;
	o->host = pl->host->pos;
	o->gpu_mask = 0;
	for (int i = 0; i < pl->n; i++)
		o->gpu_mask |= 1u << pl->gpu_idx[i];
	s->free_milli -= sim_task_milli(t);
	if (s->queue)
		queue_charge(s->queue, t->client, sim_task_milli(t)); /* as node_assign_locked does */
	sim_running_push(s, &(struct sim_running){ .end_ms = o->end_ms, .job = idx, .pl = *pl });
	task_free(t);
}

static void sim_end(struct sim_state *s, const struct sim_running *r)
{
	const struct sim_job *j = &s->jobs->v[r->job];
	struct task_resources res = { .gpus = j->gpus, .milli = j->milli };
	pool_release(s->pool, &r->pl, &res);
	int64_t milli = (int64_t)pool_task_milli(&res) * j->gpus;
	s->free_milli += milli;
	if (s->queue)
		queue_charge(s->queue, j->client, -milli);
}

/* ---- arrivals ---- */

/* Shortest known duration first; arrival order among equals. */
static bool sim_sjf_before(const struct sim_state *s, const struct task *a, const struct task *b)
{
	int64_t da = s->jobs->v[a->seq].duration_ms, db = s->jobs->v[b->seq].duration_ms;
	return da != db ? da < db : a->seq < b->seq;
}

static void sim_sjf_insert(struct sim_state *s, struct task *t)
{
	size_t lo = 0, hi = s->n_pending;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sim_sjf_before(s, t, s->pending[mid]))
			hi = mid;
		else
			lo = mid + 1;
	}
	memmove(&s->pending[lo + 1], &s->pending[lo], (s->n_pending - lo) * sizeof *s->pending);
	s->pending[lo] = t;
	s->n_pending++;
}

static void sim_arrive(struct sim_state *s, size_t idx)
{
	const struct sim_job *j = &s->jobs->v[idx];
	if (j->gpus > s->o->cluster.gpus_per_host)
		return; /* wider than any host: stays unplaced (outcome preset) */
	struct task *t = sim_task_of(j, idx);
	switch (s->o->mode) {
	case SIM_QUEUE_DEFAULT:
		queue_push(s->queue, t);
		break;
	case SIM_QUEUE_FIFO:
		s->pending[s->n_pending++] = t;
		break;
	case SIM_QUEUE_SJF:
		sim_sjf_insert(s, t);
		break;
	case SIM_QUEUE_COUNT:
		break;
	}
}

/* ---- passes ---- */

/* The node's pass: queue_order, then sched_pass, with the virtual now. */
static void sim_pass_default(struct sim_state *s, int64_t now)
{
	size_t k = queue_order(s->queue, now, s->order, queue_len(s->queue));
	size_t placed = sched_pass(s->pool, s->order, k, &s->o->sched, now, s->decisions);
	for (size_t i = 0; i < placed; i++) {
		queue_remove(s->queue, s->decisions[i].task);
		sim_start(s, s->decisions[i].task, &s->decisions[i].pl, now);
	}
}

/* Places t if the policy finds room; false when it does not fit now. */
static bool sim_try_place(struct sim_state *s, struct task *t, int64_t now, struct err *e, int *rc)
{
	struct placement pl;
	if (sim_task_milli(t) > s->free_milli || !sched_place(s->pool, &t->res, &s->o->sched, &pl))
		return false;
	if (pool_alloc(s->pool, &pl, &t->res) < 0) {
		*rc = err_set(e, ERR_INTERNAL, "job %zu: sched_place chose host %s but pool_alloc refused it",
			      (size_t)t->seq, pl.host->id);
		return false;
	}
	sim_start(s, t, &pl, now);
	return true;
}

/* Textbook FIFO: the head blocks everything behind it. */
static int sim_pass_fifo(struct sim_state *s, int64_t now, struct err *e)
{
	int rc = 0;
	while (s->head < s->n_pending && sim_try_place(s, s->pending[s->head], now, e, &rc))
		s->head++;
	if (s->head == s->n_pending)
		s->head = s->n_pending = 0;
	return rc;
}

/* SJF with skipping: every job that fits, shortest first. On this
 * homogeneous cluster of whole GPUs a job of g GPUs that did not fit means
 * no job of >= g GPUs fits in this pass, which keeps a deep queue cheap. */
static int sim_pass_sjf(struct sim_state *s, int64_t now, struct err *e)
{
	int rc = 0, blocked_gpus = TASK_MAX_GPUS + 1;
	size_t w = 0;
	for (size_t i = 0; i < s->n_pending; i++) {
		struct task *t = s->pending[i];
		bool whole = t->res.milli == TASK_MILLI_FULL;
		if (s->free_milli > 0 && !(whole && t->res.gpus >= blocked_gpus) && sim_try_place(s, t, now, e, &rc))
			continue;
		if (rc < 0)
			return rc;
		if (whole && t->res.gpus < blocked_gpus)
			blocked_gpus = t->res.gpus;
		s->pending[w++] = t;
	}
	s->n_pending = w;
	return 0;
}

static size_t sim_waiting(const struct sim_state *s);

/* A pass with nothing waiting, or with every GPU milli allocated, can place
 * nothing and leaves nothing behind (reservations live for one pass only):
 * skipping it changes no schedule, and most instants are such. */
static int sim_pass(struct sim_state *s, int64_t now, struct err *e)
{
	if (sim_waiting(s) == 0 || s->free_milli <= 0)
		return 0;
	s->passes++;
	switch (s->o->mode) {
	case SIM_QUEUE_DEFAULT:
		sim_pass_default(s, now);
		return 0;
	case SIM_QUEUE_FIFO:
		return sim_pass_fifo(s, now, e);
	case SIM_QUEUE_SJF:
		return sim_pass_sjf(s, now, e);
	case SIM_QUEUE_COUNT:
		break;
	}
	return err_set(e, ERR_INVALID, "unknown queue mode %d", (int)s->o->mode);
}

static size_t sim_waiting(const struct sim_state *s)
{
	return s->queue ? queue_len(s->queue) : s->n_pending - s->head;
}

/* One line each time another tenth of the jobs has arrived. */
static void sim_progress(struct sim_state *s, size_t arrived, int64_t now)
{
	size_t n = s->jobs->n, tenth = arrived * 10 / n;
	if (!s->o->progress || tenth <= s->progress_tenths)
		return;
	s->progress_tenths = tenth;
	fprintf(s->o->progress, "sim %s: %3zu%% of jobs arrived (%zu/%zu), virtual day %.1f, %zu waiting, %zu running\n",
		sim_queue_mode_name(s->o->mode), tenth * 10, arrived, n, (double)now / 86400000.0, sim_waiting(s),
		s->n_running);
}

/* ---- the loop ---- */

static int sim_loop(struct sim_state *s, struct err *e)
{
	const struct sim_jobs *jobs = s->jobs;
	size_t next = 0;
	while (next < jobs->n || s->n_running > 0) {
		int64_t now = INT64_MAX;
		if (next < jobs->n)
			now = jobs->v[next].submit_ms;
		if (s->n_running > 0 && s->running[0].end_ms < now)
			now = s->running[0].end_ms;
		while (s->n_running > 0 && s->running[0].end_ms <= now) {
			struct sim_running r = sim_running_pop(s);
			sim_end(s, &r);
		}
		while (next < jobs->n && jobs->v[next].submit_ms <= now) {
			sim_arrive(s, next++);
			sim_progress(s, next, now);
		}
		if (sim_pass(s, now, e) < 0)
			return -1;
	}
	if (sim_waiting(s) > 0)
		return err_set(e, ERR_INTERNAL, "%zu jobs still wait on an idle cluster", sim_waiting(s));
	return 0;
}

static void sim_state_free(struct sim_state *s)
{
	for (size_t i = s->head; i < s->n_pending; i++) /* fifo: those before head have started */
		task_free(s->pending[i]);
	if (s->queue) {
		size_t k = queue_order(s->queue, 0, s->order, queue_len(s->queue));
		queue_free(s->queue);
		for (size_t i = 0; i < k; i++)
			task_free(s->order[i]);
	}
	pool_free(s->pool);
	free(s->pending);
	free(s->order);
	free(s->decisions);
	free(s->running);
}

int sim_jobs_run(const struct sim_jobs *jobs, const struct sim_jobs_opts *o, struct sim_outcome **out,
		 struct sim_summary *sum, struct err *e)
{
	const struct sim_cluster *c = &o->cluster;
	if (c->hosts < 1 || c->gpus_per_host < 1 || c->gpus_per_host > TASK_MAX_GPUS)
		return err_set(e, ERR_INVALID, "cluster: need >= 1 host of 1..%d GPUs, got %d x %d", TASK_MAX_GPUS,
			       c->hosts, c->gpus_per_host);
	struct timespec t0, t1, c0, c1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	size_t n = jobs->n > 0 ? jobs->n : 1;
	struct sim_state s = {
		.jobs = jobs,
		.o = o,
		.out = xmalloc(n * sizeof *s.out),
		.pool = sim_cluster_pool(c),
		.queue = o->mode == SIM_QUEUE_DEFAULT ? queue_new(&o->queue) : NULL,
		.pending = xmalloc(n * sizeof *s.pending),
		.order = xmalloc(n * sizeof *s.order),
		.decisions = xmalloc(n * sizeof *s.decisions),
		.running = xmalloc(n * sizeof *s.running),
		.free_milli = (int64_t)c->hosts * c->gpus_per_host * TASK_MILLI_FULL,
	};
	for (size_t i = 0; i < jobs->n; i++)
		s.out[i] = (struct sim_outcome){ .start_ms = -1, .end_ms = -1, .host = -1 };
	int rc = sim_loop(&s, e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	if (rc == 0) {
		sim_jobs_summarize(jobs, s.out, c->hosts * c->gpus_per_host, sum);
		sum->passes = s.passes;
		sum->sim_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		sum->sim_cpu_seconds = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
		*out = s.out;
	} else {
		free(s.out);
	}
	sim_state_free(&s);
	return rc;
}
