/* queue.h — the pending tasks. One queue per category, merged by one
 * ordering rule:
 *   1. effective priority = priority + category boost + job size (smaller
 *      jobs first: small_job_points / whole GPUs, so 8, 4, 2 and 1 points for
 *      1, 2, 4 and 8 GPUs) + aging (one point per
 *      aging period waited, up to aging_max_points), so no task waits forever
 *      behind newer work of its own priority, and a task of lower priority
 *      catches up by that much. The cap is what keeps rule 2 alive under a
 *      backlog: unbounded aging ranks every older task first, so a client's
 *      burst of 10,000 tasks would run before another client's one task
 *      submitted a minute later (FIFO across clients). Once both have waited
 *      past the cap they are equal and fair share decides. On the Philly
 *      trace (docs/benchmarks.md) the cap cut the average JCT from 1.8x to
 *      2.1x better than FIFO. Job size is the one hint of a task's length the
 *      node has without asking (on Philly, 1-GPU jobs run 8,300 s on average,
 *      8-GPU jobs 130,000 s): with it the default queue's average JCT there
 *      went from 1.84x to 2.07x FIFO's, at the price of a longer wait for the
 *      widest gangs, which reservations (sched.c) still bound;
 *   2. fair share between clients: among equal effective priority, the client
 *      holding less (GPU milli in use, charged through queue_charge) and with
 *      fewer tasks already ahead in this ordering goes first, so one client's
 *      10,000 tasks do not starve another's one;
 *   3. arrival order (task->seq).
 * The queue never places anything (sched.c does) and holds borrowed pointers:
 * the node core owns the tasks. Not thread-safe: the node's one lock. */
#ifndef GPUNODE_QUEUE_H
#define GPUNODE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "task.h"

struct queue_config {
	int64_t aging_period_ms;                /* default 10,000: +1 priority point per 10 s waited */
	int64_t aging_max_points;               /* aging stops here; default 60 (10 min); 0: no limit */
	int category_boost[TASK_CAT_COUNT];     /* default inference +50, others 0 */
	int small_job_points;                   /* job size: + this / whole GPUs asked; default 8; 0: off */
};

struct queue;

void queue_config_default(struct queue_config *c);
struct queue *queue_new(const struct queue_config *c);
void queue_free(struct queue *q);

/* Adds a task (state queued, queued_ms set by the caller). */
void queue_push(struct queue *q, struct task *t);
/* Removes a task that is in the queue; no-op otherwise. */
void queue_remove(struct queue *q, struct task *t);
size_t queue_len(const struct queue *q);
size_t queue_len_category(const struct queue *q, enum task_category c);

/* Writes up to max pending tasks into out, best first, by the rule above.
 * Does not remove them. Cost must stay near O(n log max) for 100,000 tasks. */
size_t queue_order(struct queue *q, int64_t now_ms, struct task **out, size_t max);

/* Removes and returns (up to max) tasks whose max_wait_ms has passed. */
size_t queue_take_expired(struct queue *q, int64_t now_ms, struct task **out, size_t max);

/* Fair-share books: a client's task started (+milli*gpus) or stopped (-). */
void queue_charge(struct queue *q, const char *client, int64_t milli);

#endif
