/* sched.h — placement: filter, then score. A pure function of (ordered
 * pending tasks, pool, config): no I/O, no clock reads, no threads. That is
 * what makes it fast, testable, and honest inside `gpunode sim`, which runs
 * this same code on a virtual clock.
 *
 * Filter: host online; GPU healthy and not draining; model allowed; VRAM >=
 * min; enough free milli (fractional) or free whole GPUs (gangs, all on one
 * host); CPU and memory when the host tracks them.
 * Score (policy):
 *   - "frag" (default): fragmentation-aware. Prefers the placement that
 *     leaves the pool best able to take the shapes of work that is arriving
 *     (whole GPUs, gangs, fractional shares, model-constrained work), in
 *     the spirit of FGD (USENIX ATC'23), and, for gangs, one NVLink group.
 *   - "bestfit": the baseline: the host/GPU with the least free capacity left
 *     after placing.
 * Backfill: when a task at the head cannot be placed, later smaller tasks
 * still run; but once a blocked task has waited reserve_after_ms, the pass
 * reserves the host that would free up for it soonest (most capacity already
 * free), and no other task is placed there until it fits. */
#ifndef GPUNODE_SCHED_H
#define GPUNODE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "task.h"

enum sched_policy { SCHED_POLICY_FRAG, SCHED_POLICY_BESTFIT, SCHED_POLICY_COUNT };

const char *sched_policy_name(enum sched_policy p);
int sched_policy_parse(const char *name, enum sched_policy *out);

/* A shape of work and how often it arrives: the "target workload" the frag
 * policy protects free capacity for. */
struct sched_shape {
	struct task_resources res;
	double weight;
};

struct sched_config {
	enum sched_policy policy;
	int64_t reserve_after_ms;         /* default 60,000 */
	const struct sched_shape *shapes; /* NULL: learned from the tasks passed in */
	size_t n_shapes;
	int max_reservations;             /* hosts one pass may hold for blocked tasks; default 4 */
};

void sched_config_default(struct sched_config *c);

/* The filter for one GPU (health, draining, model, VRAM). */
bool sched_gpu_eligible(const struct gpu *g, const struct task_resources *r);

/* Where the task would go under the policy; does not change the pool.
 * Returns false when nothing fits now. */
bool sched_place(struct pool *p, const struct task_resources *r, const struct sched_config *c,
		 struct placement *out);

struct sched_decision {
	struct task *task;
	struct placement pl;
};

/* One pass: walks `ordered` (best first, from queue_order), places what fits
 * and charges each placement into the pool as it goes, honouring the backfill
 * reservation rule above. Writes decisions into out (room for n) and returns
 * how many. */
size_t sched_pass(struct pool *p, struct task *const *ordered, size_t n, const struct sched_config *c,
		  int64_t now_ms, struct sched_decision *out);

/* What a pass did besides placing. */
struct sched_pass_info {
	int reserved_hosts; /* hosts held back for blocked tasks (backfill rule) */
};
/* sched_pass, also filling info (may be NULL). */
size_t sched_pass_info(struct pool *p, struct task *const *ordered, size_t n, const struct sched_config *c,
		       int64_t now_ms, struct sched_decision *out, struct sched_pass_info *info);

#endif
