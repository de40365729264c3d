/* node_sched.c — the scheduler thread of the node: expiry, host liveness,
 * and placement passes, then the store wait and the publication of the
 * resulting agent commands.
 *
 * Two kinds of pass. A full pass orders the whole queue (queue_order) and
 * offers it to sched_pass. An arrival pass offers only the tasks queued since
 * the last pass. An arrival pass gives the same placements as a full pass
 * when (a) the pool has not gained capacity since the last pass (its version
 * only moves on our own allocations, which can only shrink what fits) and
 * (b) the last full pass (which sees the whole queue) reserved no host for a
 * blocked task: then every older queued task was already tried against at least this
 * much capacity and failed. It turns the cost of a submission burst on a deep
 * queue from O(queue) per pass into O(new tasks). A full pass still runs on
 * any other change and at least every SCHED_FULL_PASS_MS (aging and
 * reservations depend on time).
 *
 * Full passes are also paced: after one that took C, the next waits until C
 * has passed, so on a deep queue with GPUs freeing up all the time the
 * scheduler spends at most half a core on full passes (each one then places
 * everything freed meanwhile); on a shallow queue C is far below a
 * millisecond and the pacing is invisible. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "util.h"

#define SCHED_FULL_PASS_MS 1000
#define SCHED_TICK_MS 200
/* At most one arrival pass per this interval: waking the scheduler for
 * every submission halved the node's submit rate. A task that arrives after
 * a quiet spell is placed at once; in a burst, the arrivals of the next
 * interval are gathered into one pass. */
#define SCHED_ARRIVAL_BATCH_NS 1000000L

/* Only the first arrival after a pass wakes the scheduler. */
void node_note_arrival_locked(struct node *n, const struct task *t)
{
	if (n->n_arrivals == 0)
		node_kick_locked(n);
	if (n->n_arrivals == n->cap_arrivals) {
		n->cap_arrivals = n->cap_arrivals ? n->cap_arrivals * 2 : 1024;
		n->arrivals = xrealloc(n->arrivals, n->cap_arrivals * sizeof *n->arrivals);
	}
	memcpy(n->arrivals[n->n_arrivals++], t->id, sizeof t->id);
}

static uint64_t expire_locked(struct node *n, int64_t now)
{
	struct task *expired[256];
	uint64_t ticket = 0;
	size_t k;
	while ((k = queue_take_expired(n->queue, now, expired, 256)) > 0) {
		for (size_t i = 0; i < k; i++) {
			struct active_task *a = node_active_find(n, expired[i]->id);
			char msg[128];
			snprintf(msg, sizeof msg, "not placed within max_wait_s=%lld",
				 (long long)(expired[i]->max_wait_ms / 1000));
			/* queue_take_expired already removed it; node_finish_locked's
			 * queue_remove is then a no-op. */
			ticket = node_finish_locked(n, a, TASK_EXPIRED, "expired", msg, msg);
			n->counters.expired++;
		}
		if (k < 256)
			break;
	}
	return ticket;
}

static bool arrival_pass_is_exact(const struct node *n, int64_t now)
{
	return n->last_full_pass_ms > 0 && n->known_reserved == 0 && n->pool->version == n->known_pool_version &&
	       now - n->last_full_pass_ms < SCHED_FULL_PASS_MS;
}

/* Higher priority first, then arrival: the queue's rule without aging and
 * fair share, which cannot matter among tasks queued within one pass. */
static int arrival_cmp(const void *pa, const void *pb)
{
	const struct task *a = *(struct task *const *)pa, *b = *(struct task *const *)pb;
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The arrivals still queued (cancelled or expired ones are gone from the
 * active table). */
static size_t take_arrivals(struct node *n, struct task **order)
{
	size_t k = 0;
	for (size_t i = 0; i < n->n_arrivals; i++) {
		struct active_task *a = node_active_find(n, n->arrivals[i]);
		struct task *t = a ? node_active_task(a) : NULL;
		if (t && t->state == TASK_QUEUED)
			order[k++] = t;
	}
	n->n_arrivals = 0;
	if (k > 1)
		qsort(order, k, sizeof *order, arrival_cmp);
	return k;
}

/* Room for every pending task: a pass sees the whole queue. A window would
 * be cheaper but starves a placeable task queued behind a window's worth of
 * unplaceable ones; pacing bounds the cost instead. */
struct pass_buffers {
	struct task **order;
	struct sched_decision *out;
	size_t cap;
};

static void pass_buffers_reserve(struct pass_buffers *b, size_t n)
{
	if (n <= b->cap && b->order)
		return;
	b->cap = n + n / 2 + 64;
	b->order = xrealloc(b->order, b->cap * sizeof *b->order);
	b->out = xrealloc(b->out, b->cap * sizeof *b->out);
}

/* One scheduling pass (full when full is set). Returns the last store
 * ticket (0: nothing written). */
static uint64_t place_locked(struct node *n, bool full, int64_t now, struct pass_buffers *b)
{
	int64_t started_ns = mono_ns();
	size_t k;
	if (full) {
		pass_buffers_reserve(b, queue_len(n->queue));
		k = queue_order(n->queue, now, b->order, b->cap);
		n->n_arrivals = 0; /* a full pass covers them */
	} else {
		pass_buffers_reserve(b, n->n_arrivals);
		k = take_arrivals(n, b->order);
	}
	struct task **order = b->order;
	struct sched_decision *out = b->out;
	struct sched_pass_info info = {0};
	size_t placed = k ? sched_pass_info(n->pool, order, k, &n->cfg.sched, now, out, &info) : 0;
	uint64_t ticket = 0;
	for (size_t i = 0; i < placed; i++)
		ticket = node_assign_locked(n, &out[i], now);
	if (full) {
		n->known_reserved = info.reserved_hosts;
		n->last_full_pass_ms = now;
		n->counters.sched_full_passes++;
		n->next_full_pass_ns = mono_ns() + (mono_ns() - started_ns);
	}
	/* Our own placements only shrink capacity: what failed before still fails. */
	n->known_pool_version = n->pool->version;
	n->counters.sched_passes++;
	return ticket;
}

static void wait_for_change(struct node *n, int64_t ns)
{
	struct timespec ts;
	deadline_in_ns(&ts, ns);
	pthread_cond_timedwait(&n->sched_cv, &n->mu, &ts);
}

void *node_sched_main(void *arg)
{
	struct node *n = arg;
	struct pass_buffers b = {0};
	pthread_mutex_lock(&n->mu);
	while (!n->stopping) {
		if (!n->sched_dirty && now_ms() - n->last_full_pass_ms < SCHED_FULL_PASS_MS) {
			wait_for_change(n, SCHED_TICK_MS * 1000000L);
			if (n->stopping)
				break;
		}
		int64_t now = now_ms();
		bool full = !arrival_pass_is_exact(n, now);
		int64_t pace = full ? n->next_full_pass_ns - mono_ns() :
				      n->last_pass_ns + SCHED_ARRIVAL_BATCH_NS - mono_ns();
		if (pace > 0 && (full || n->n_arrivals > 0)) {
			wait_for_change(n, pace); /* paced or batching: see above */
			continue;
		}
		n->sched_dirty = false;
		/* No wait for these writes: each agent command becomes visible
		 * once its own write has committed (node_agent_commands). */
		expire_locked(n, now);
		node_check_hosts_locked(n, now);
		place_locked(n, full, now, &b);
		n->last_pass_ns = mono_ns();
	}
	pthread_mutex_unlock(&n->mu);
	free(b.order);
	free(b.out);
	return NULL;
}
