/* test_queue — the ordering rule (priority, boost, aging, fair share,
 * arrival), removal, expiry, and a randomized check against a brute-force
 * reference of the rule. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "queue.h"
#include "util.h"

static uint64_t next_seq;

static struct task *mk(const char *client, int priority, enum task_category cat, int64_t queued_ms)
{
	struct task *t = xcalloc(1, sizeof *t);
	str_copy(t->client, sizeof t->client, client);
	t->priority = priority;
	t->category = cat;
	t->queued_ms = queued_ms;
	t->seq = ++next_seq;
	t->state = TASK_QUEUED;
	t->res.gpus = 1;
	t->res.milli = 1000;
	return t;
}

static struct queue *queue_plain(void)
{
	struct queue_config c;
	queue_config_default(&c);
	return queue_new(&c);
}

/* Position of t in the current order, -1 when absent. */
static long position(struct queue *q, int64_t now, const struct task *t)
{
	size_t n = queue_len(q);
	struct task **out = xmalloc((n ? n : 1) * sizeof *out);
	size_t got = queue_order(q, now, out, n);
	long pos = -1;
	for (size_t i = 0; i < got; i++)
		if (out[i] == t)
			pos = (long)i;
	free(out);
	return pos;
}

Test(queue, higher_priority_and_inference_boost_go_first)
{
	struct queue *q = queue_plain();
	struct task *low = mk("a", 0, TASK_CAT_BATCH, 0);
	struct task *high = mk("a", 10, TASK_CAT_BATCH, 0);
	struct task *infer = mk("a", 0, TASK_CAT_INFERENCE, 0); /* +50 */
	queue_push(q, low);
	queue_push(q, high);
	queue_push(q, infer);
	struct task *out[3];
	cr_assert_eq(queue_order(q, 0, out, 3), 3);
	cr_assert_eq(out[0], infer);
	cr_assert_eq(out[1], high);
	cr_assert_eq(out[2], low);
	cr_assert_eq(queue_len_category(q, TASK_CAT_BATCH), 2);
	cr_assert_eq(queue_len_category(q, TASK_CAT_INFERENCE), 1);
	queue_free(q);
	free(low), free(high), free(infer);
}

Test(queue, arrival_order_breaks_ties)
{
	struct queue *q = queue_plain();
	struct task *t[5];
	for (int i = 0; i < 5; i++)
		t[i] = mk(i % 2 ? "a" : "b", 0, TASK_CAT_TRAINING, 1000);
	for (int i = 4; i >= 0; i--) /* pushed in reverse: order still follows seq */
		queue_push(q, t[i]);
	struct task *out[5];
	cr_assert_eq(queue_order(q, 1000, out, 5), 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(out[i], t[i]);
	queue_free(q);
	for (int i = 0; i < 5; i++)
		free(t[i]);
}

/* Job size: at equal priority, an 8-GPU task queued first runs after a
 * 1-GPU task queued 30 s later (8 points against 1 + 3 of aging); with the
 * size factor off, arrival decides. */
Test(queue, a_smaller_job_goes_first_at_equal_priority)
{
	struct task *wide = mk("a", 0, TASK_CAT_TRAINING, 0);
	struct task *one = mk("a", 0, TASK_CAT_TRAINING, 30000);
	wide->res.gpus = 8;
	struct queue *q = queue_plain();
	queue_push(q, wide);
	queue_push(q, one);
	cr_assert_eq(position(q, 31000, one), 0, "the 1-GPU task first");
	cr_assert_eq(position(q, 31000, wide), 1);
	queue_free(q);

	struct queue_config c;
	queue_config_default(&c);
	c.small_job_points = 0;
	q = queue_new(&c);
	queue_push(q, wide);
	queue_push(q, one);
	cr_assert_eq(position(q, 31000, wide), 0, "size off: the older task first");
	queue_free(q);
	free(wide), free(one);
}

Test(queue, aging_lets_an_old_low_priority_task_win)
{
	struct queue *q = queue_plain(); /* +1 point per 10 s */
	struct task *old_low = mk("a", 0, TASK_CAT_BATCH, 0);
	struct task *early_high = mk("b", 5, TASK_CAT_BATCH, 30000);
	queue_push(q, old_low);
	queue_push(q, early_high);
	/* At 30 s the old task has +3: the priority-5 newcomer goes first. */
	cr_assert_eq(position(q, 30000, early_high), 0);
	queue_remove(q, early_high);
	/* At 80 s it has +8: a priority-5 task arriving now no longer passes it. */
	struct task *late_high = mk("b", 5, TASK_CAT_BATCH, 80000);
	queue_push(q, late_high);
	cr_assert_eq(position(q, 80000, old_low), 0);
	cr_assert_eq(position(q, 80000, late_high), 1);
	/* Without aging it would wait behind every priority-5 arrival forever. */
	struct queue_config no_aging;
	queue_config_default(&no_aging);
	no_aging.aging_period_ms = 0;
	struct queue *flat = queue_new(&no_aging);
	queue_remove(q, old_low);
	queue_remove(q, late_high);
	queue_push(flat, old_low);
	queue_push(flat, late_high);
	cr_assert_eq(position(flat, 80000, late_high), 0);
	queue_free(flat);
	queue_free(q);
	free(old_low), free(early_high), free(late_high);
}

Test(queue, one_task_of_a_small_client_is_not_starved_by_10000)
{
	struct queue *q = queue_plain();
	struct task **a = xmalloc(10000 * sizeof *a);
	for (int i = 0; i < 10000; i++) {
		a[i] = mk("big", 0, TASK_CAT_TRAINING, 1000);
		queue_push(q, a[i]);
	}
	struct task *b = mk("small", 0, TASK_CAT_TRAINING, 2000); /* arrived after all of them */
	queue_push(q, b);
	long pos = position(q, 2000, b);
	cr_assert_geq(pos, 0);
	cr_assert_leq(pos, 1, "B's task is ordered before nearly all of A's (got %ld)", pos);
	/* With only a handful of A's ahead, a pass that places a few tasks starts it. */
	struct task *out[8];
	cr_assert_eq(queue_order(q, 2000, out, 8), 8);
	cr_assert_eq(out[0], a[0]);
	cr_assert_eq(out[1], b);
	cr_assert_eq(out[2], a[1]);
	queue_free(q);
	for (int i = 0; i < 10000; i++)
		free(a[i]);
	free(a);
	free(b);
}

Test(queue, a_client_holding_more_goes_later_among_equals)
{
	struct queue *q = queue_plain();
	struct task *rich = mk("rich", 0, TASK_CAT_TRAINING, 0); /* arrived first */
	struct task *poor = mk("poor", 0, TASK_CAT_TRAINING, 500);
	queue_push(q, rich);
	queue_push(q, poor);
	cr_assert_eq(position(q, 1000, rich), 0);
	queue_charge(q, "rich", 8000);
	cr_assert_eq(position(q, 1000, poor), 0, "poor holds nothing, rich holds 8 GPUs");
	queue_charge(q, "rich", -8000);
	cr_assert_eq(position(q, 1000, rich), 0, "books returned to zero");
	/* Priority still beats fair share. */
	struct task *urgent = mk("rich", 100, TASK_CAT_TRAINING, 900);
	queue_charge(q, "rich", 8000);
	queue_push(q, urgent);
	cr_assert_eq(position(q, 1000, urgent), 0);
	queue_free(q);
	free(rich), free(poor), free(urgent);
}

Test(queue, remove_and_len)
{
	struct queue *q = queue_plain();
	struct task *t[100];
	for (int i = 0; i < 100; i++) {
		t[i] = mk(i % 3 ? "a" : "b", i % 5, (enum task_category)(i % TASK_CAT_COUNT), i);
		queue_push(q, t[i]);
	}
	queue_push(q, t[0]); /* pushing again must not duplicate */
	cr_assert_eq(queue_len(q), 100);
	for (int i = 0; i < 100; i += 2)
		queue_remove(q, t[i]);
	queue_remove(q, t[0]); /* not queued any more: no-op */
	cr_assert_eq(queue_len(q), 50);
	cr_assert_null(t[0]->queue_slot);
	struct task *out[100];
	size_t n = queue_order(q, 1000, out, 100);
	cr_assert_eq(n, 50);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq((out[i]->seq - t[0]->seq) % 2, 1, "only odd tasks remain");
	size_t per_cat = 0;
	for (int c = 0; c < TASK_CAT_COUNT; c++)
		per_cat += queue_len_category(q, (enum task_category)c);
	cr_assert_eq(per_cat, 50);
	queue_free(q);
	for (int i = 0; i < 100; i++)
		free(t[i]);
}

Test(queue, expired_tasks_are_taken_out_and_only_they)
{
	struct queue *q = queue_plain();
	struct task *forever = mk("a", 0, TASK_CAT_BATCH, 0);
	struct task *short_wait = mk("a", 0, TASK_CAT_BATCH, 0);
	struct task *long_wait = mk("a", 0, TASK_CAT_BATCH, 0);
	struct task *removed = mk("a", 0, TASK_CAT_BATCH, 0);
	short_wait->max_wait_ms = 1000;
	long_wait->max_wait_ms = 5000;
	removed->max_wait_ms = 500;
	queue_push(q, forever);
	queue_push(q, long_wait);
	queue_push(q, short_wait);
	queue_push(q, removed);
	queue_remove(q, removed);
	struct task *out[4];
	cr_assert_eq(queue_take_expired(q, 999, out, 4), 0);
	cr_assert_eq(queue_take_expired(q, 1000, out, 4), 1);
	cr_assert_eq(out[0], short_wait);
	cr_assert_null(short_wait->queue_slot);
	cr_assert_eq(queue_len(q), 2);
	cr_assert_eq(queue_take_expired(q, 1000000000, out, 4), 1);
	cr_assert_eq(out[0], long_wait);
	cr_assert_eq(queue_len(q), 1);
	cr_assert_eq(position(q, 1000000000, forever), 0);
	queue_free(q);
	free(forever), free(short_wait), free(long_wait), free(removed);
}

/* ---- the rule, by brute force ---- */

struct ref_client {
	char name[8];
	int64_t virt;
};

static int64_t ref_eff(const struct queue_config *c, const struct task *t, int64_t now)
{
	int64_t waited = now - t->queued_ms;
	int64_t age = waited > 0 ? waited / c->aging_period_ms : 0;
	int whole = t->res.gpus > 1 ? t->res.gpus : 1;
	return t->priority + c->category_boost[t->category] + c->small_job_points / whole + age;
}

static struct ref_client *ref_client(struct ref_client *cl, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(cl[i].name, name) == 0)
			return &cl[i];
	return NULL;
}

/* Is x before y under the header's rule, given the clients' virtual use? */
static bool ref_before(const struct queue_config *c, struct ref_client *cl, int ncl, const struct task *x,
		       const struct task *y, int64_t now)
{
	int64_t ex = ref_eff(c, x, now), ey = ref_eff(c, y, now);
	if (ex != ey)
		return ex > ey;
	int64_t vx = ref_client(cl, ncl, x->client)->virt, vy = ref_client(cl, ncl, y->client)->virt;
	if (vx != vy)
		return vx < vy;
	if (x->queued_ms != y->queued_ms)
		return x->queued_ms < y->queued_ms;
	return x->seq < y->seq;
}

Test(queue, order_matches_brute_force_reference)
{
	srand(42);
	struct queue_config cfg;
	queue_config_default(&cfg);
	cfg.category_boost[TASK_CAT_FINETUNE] = 7;
	for (int round = 0; round < 20; round++) {
		struct queue *q = queue_new(&cfg);
		enum { N = 300, NCL = 5 };
		struct ref_client cl[NCL];
		int64_t charged[NCL];
		for (int i = 0; i < NCL; i++) {
			snprintf(cl[i].name, sizeof cl[i].name, "c%d", i);
			charged[i] = 1000 * (rand() % 3);
			queue_charge(q, cl[i].name, charged[i]);
		}
		struct task *t[N];
		for (int i = 0; i < N; i++) {
			t[i] = mk(cl[rand() % NCL].name, (rand() % 3) * 5, (enum task_category)(rand() % TASK_CAT_COUNT),
				  rand() % 100000);
			t[i]->res.gpus = 1 + rand() % 4;
			t[i]->res.milli = t[i]->res.gpus == 1 && rand() % 2 ? 250 : 1000;
			queue_push(q, t[i]);
		}
		for (int i = 0; i < N; i += 9) /* some churn */
			queue_remove(q, t[i]);
		int64_t now = 100000 + rand() % 50000;
		struct task *got[N];
		size_t n = queue_order(q, now, got, N);
		cr_assert_eq(n, queue_len(q));

		bool taken[N] = { false };
		for (int i = 0; i < N; i += 9)
			taken[i] = true;
		for (int i = 0; i < NCL; i++)
			cl[i].virt = charged[i];
		for (size_t k = 0; k < n; k++) {
			int best = -1;
			for (int i = 0; i < N; i++)
				if (!taken[i] && (best < 0 || ref_before(&cfg, cl, NCL, t[i], t[best], now)))
					best = i;
			cr_assert_eq(got[k], t[best], "round %d position %zu", round, k);
			taken[best] = true;
			ref_client(cl, NCL, t[best]->client)->virt += (int64_t)pool_task_milli(&t[best]->res) * t[best]->res.gpus;
		}
		/* A prefix request returns the same prefix. */
		struct task *few[10];
		cr_assert_eq(queue_order(q, now, few, 10), 10);
		for (int k = 0; k < 10; k++)
			cr_assert_eq(few[k], got[k]);
		queue_free(q);
		for (int i = 0; i < N; i++)
			free(t[i]);
	}
}

Test(queue, requeued_task_reenters_by_its_queue_time)
{
	struct queue *q = queue_plain();
	struct task *a = mk("a", 0, TASK_CAT_BATCH, 1000);
	struct task *b = mk("a", 0, TASK_CAT_BATCH, 2000);
	struct task *c = mk("a", 0, TASK_CAT_BATCH, 3000);
	queue_push(q, a);
	queue_push(q, b);
	queue_push(q, c);
	queue_remove(q, a);
	a->queued_ms = 2500; /* ran, failed over, queued again */
	queue_push(q, a);
	struct task *out[3];
	cr_assert_eq(queue_order(q, 3000, out, 3), 3);
	cr_assert_eq(out[0], b);
	cr_assert_eq(out[1], a);
	cr_assert_eq(out[2], c);
	queue_free(q);
	free(a), free(b), free(c);
}
