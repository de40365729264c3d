/* test_sched — filters, gangs, shares, NVLink, frag versus best fit, backfill
 * reservation, and a randomized property test that no pass ever
 * over-allocates or places on a GPU it must not use. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "sched.h"
#include "util.h"

static char *only_h100[] = { "H100-80GB" };

/* A host of n GPUs of one model; NVLink groups of group_size (0: none). */
static struct host *add_host(struct pool *p, const char *id, int n, const char *model, int64_t vram, int group_size)
{
	struct gpu g[TASK_MAX_GPUS];
	memset(g, 0, sizeof g);
	for (int i = 0; i < n; i++) {
		snprintf(g[i].uuid, sizeof g[i].uuid, "GPU-%s-%d", id, i);
		g[i].index = i;
		str_copy(g[i].model, sizeof g[i].model, model);
		g[i].vram_mb = vram;
		g[i].nvlink_group = group_size ? i / group_size : -1;
	}
	return pool_upsert_host(p, id, g, n, 0, 0);
}

static struct host *add_h100(struct pool *p, const char *id, int n) { return add_host(p, id, n, "H100-80GB", 81920, 0); }

static struct task *mk(int gpus, int milli)
{
	static uint64_t seq;
	struct task *t = xcalloc(1, sizeof *t);
	t->res.gpus = gpus;
	t->res.milli = milli;
	t->seq = ++seq;
	t->state = TASK_QUEUED;
	return t;
}

static struct sched_config config(enum sched_policy policy)
{
	struct sched_config c;
	sched_config_default(&c);
	c.policy = policy;
	return c;
}

/* Places r on p with the frag policy against the given target workload;
 * fails the test when nothing fits. */
static struct placement frag_place(struct pool *p, struct task_resources r, struct sched_shape *shapes, int n_shapes)
{
	struct sched_config c = config(SCHED_POLICY_FRAG);
	c.shapes = shapes;
	c.n_shapes = n_shapes;
	struct placement pl;
	cr_assert(sched_place(p, &r, &c, &pl));
	return pl;
}

/* Takes GPU i of h whole, as if some earlier task held it. */
static void occupy(struct pool *p, struct host *h, int i, int milli)
{
	struct task_resources r = { .gpus = 1, .milli = milli };
	struct placement pl = { .host = h, .n = 1, .gpu_idx = { i }, .milli = milli };
	cr_assert_eq(pool_alloc(p, &pl, &r), 0);
}

static int free_whole_gpus(const struct host *h)
{
	int n = 0;
	for (int i = 0; i < h->n_gpus; i++)
		n += h->gpus[i].milli_alloc == 0;
	return n;
}

Test(sched, policy_names_round_trip)
{
	enum sched_policy p;
	cr_assert_eq(sched_policy_parse("frag", &p), 0);
	cr_assert_eq(p, SCHED_POLICY_FRAG);
	cr_assert_eq(sched_policy_parse("bestfit", &p), 0);
	cr_assert_str_eq(sched_policy_name(p), "bestfit");
	cr_assert_eq(sched_policy_parse("random", &p), -1);
	struct sched_config c;
	sched_config_default(&c);
	cr_assert_eq(c.policy, SCHED_POLICY_FRAG);
	cr_assert_eq(c.reserve_after_ms, 60000);
}

Test(sched, gang_is_all_or_nothing_on_one_host)
{
	struct pool *p = pool_new();
	struct host *a = add_h100(p, "a", 8), *b = add_h100(p, "b", 8);
	occupy(p, a, 0, 1000);
	for (int i = 0; i < 4; i++)
		occupy(p, b, i, 1000);
	struct sched_config c = config(SCHED_POLICY_FRAG);
	struct task *big = mk(8, 1000), *four = mk(4, 1000);
	struct task *ordered[] = { big, four };
	struct sched_decision d[2];
	/* 11 GPUs are free in total, but no host has 8. */
	size_t n = sched_pass(p, ordered, 2, &c, 0, d);
	cr_assert_eq(n, 1);
	cr_assert_eq(d[0].task, four);
	cr_assert_eq(d[0].pl.n, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(d[0].pl.host->gpus[d[0].pl.gpu_idx[i]].milli_alloc, 1000);
		for (int j = 0; j < i; j++)
			cr_assert_neq(d[0].pl.gpu_idx[i], d[0].pl.gpu_idx[j]);
	}
	cr_assert_eq(free_whole_gpus(a) + free_whole_gpus(b), 7, "the 8-GPU task took nothing");
	pool_free(p);
	free(big), free(four);
}

Test(sched, shares_fill_one_gpu_up_to_1000)
{
	struct pool *p = pool_new();
	struct host *h = add_h100(p, "a", 1);
	struct task *t[] = { mk(1, 400), mk(1, 400), mk(1, 300), mk(1, 200), mk(1, 1) };
	struct sched_config c = config(SCHED_POLICY_FRAG);
	struct sched_decision d[5];
	size_t n = sched_pass(p, t, 5, &c, 0, d);
	cr_assert_eq(n, 2 + 1 + 0, "400+400, then 300 does not fit, 200 fits, 1 does not");
	cr_assert_eq(d[0].task, t[0]);
	cr_assert_eq(d[1].task, t[1]);
	cr_assert_eq(d[2].task, t[3]);
	cr_assert_eq(d[2].pl.milli, 200);
	cr_assert_eq(h->gpus[0].milli_alloc, 1000);
	pool_free(p);
	for (int i = 0; i < 5; i++)
		free(t[i]);
}

Test(sched, shares_pack_a_used_gpu_before_breaking_a_whole_one)
{
	for (int policy = 0; policy < SCHED_POLICY_COUNT; policy++) {
		struct pool *p = pool_new();
		struct host *h = add_h100(p, "a", 2);
		occupy(p, h, 1, 500);
		struct task *t = mk(1, 300);
		struct sched_config c = config((enum sched_policy)policy);
		/* Frag needs a workload that values whole GPUs: with shares of 300
		 * alone, 500 -> 200 would be a fragment and 1000 -> 700 not. */
		struct sched_shape shapes[] = { { .res = { .gpus = 1, .milli = 1000 }, .weight = 0.5 },
						{ .res = { .gpus = 1, .milli = 300 }, .weight = 0.5 } };
		c.shapes = shapes;
		c.n_shapes = 2;
		struct placement pl;
		cr_assert(sched_place(p, &t->res, &c, &pl));
		cr_assert_eq(pl.gpu_idx[0], 1, "policy %s", sched_policy_name((enum sched_policy)policy));
		pool_free(p);
		free(t);
	}
}

Test(sched, model_and_vram_filters)
{
	struct pool *p = pool_new();
	add_host(p, "rtx", 8, "RTX4090-24GB", 24576, 0);
	add_host(p, "a40", 8, "A100-40GB", 40960, 4);
	struct host *h100 = add_host(p, "h100", 8, "H100-80GB", 81920, 8);
	struct sched_config c = config(SCHED_POLICY_FRAG);
	struct placement pl;

	struct task *pinned = mk(1, 1000);
	pinned->res.models = only_h100;
	pinned->res.n_models = 1;
	cr_assert(sched_place(p, &pinned->res, &c, &pl));
	cr_assert_eq(pl.host, h100);

	struct task *big_mem = mk(2, 1000);
	big_mem->res.min_vram_mb = 40000;
	for (int i = 0; i < 20; i++) {
		if (!sched_place(p, &big_mem->res, &c, &pl))
			break;
		cr_assert_str_neq(pl.host->id, "rtx");
		cr_assert_eq(pool_alloc(p, &pl, &big_mem->res), 0);
	}
	cr_assert_eq(free_whole_gpus(pool_find_host(p, "rtx")), 8, "24 GB cards never taken");
	cr_assert_eq(free_whole_gpus(pool_find_host(p, "a40")) + free_whole_gpus(h100), 0);

	struct task *ghost = mk(1, 1000);
	char *none[] = { "B200-192GB" };
	ghost->res.models = none;
	ghost->res.n_models = 1;
	cr_assert_not(sched_place(p, &ghost->res, &c, &pl));
	pool_free(p);
	free(pinned), free(big_mem), free(ghost);
}

Test(sched, unhealthy_draining_and_offline_gpus_are_never_chosen)
{
	for (int policy = 0; policy < SCHED_POLICY_COUNT; policy++) {
		struct pool *p = pool_new();
		struct host *a = add_h100(p, "a", 4), *off = add_h100(p, "off", 4);
		pool_set_online(p, off, false);
		pool_set_gpu_health(p, &a->gpus[0], GPU_UNHEALTHY);
		pool_set_gpu_health(p, &a->gpus[1], GPU_DEGRADED);
		pool_set_gpu_draining(p, &a->gpus[2], true);
		struct sched_config c = config((enum sched_policy)policy);
		struct task *t[] = { mk(1, 100), mk(1, 1000), mk(1, 100), mk(2, 1000) };
		struct sched_decision d[4];
		size_t n = sched_pass(p, t, 4, &c, 0, d);
		cr_assert_eq(n, 2, "only GPU 3 of host a may be used: the two shares");
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(d[i].pl.host, a);
			cr_assert_eq(d[i].pl.gpu_idx[0], 3);
			cr_assert_eq(d[i].pl.milli, 100);
		}
		for (int i = 0; i < 3; i++)
			cr_assert_eq(a->gpus[i].milli_alloc, 0);
		cr_assert_eq(free_whole_gpus(off), 4);
		pool_free(p);
		for (int i = 0; i < 4; i++)
			free(t[i]);
	}
}

Test(sched, a_degraded_gpu_takes_only_short_work)
{
	for (int policy = 0; policy < SCHED_POLICY_COUNT; policy++) {
		struct pool *p = pool_new();
		struct host *a = add_h100(p, "a", 2);
		occupy(p, a, 0, 1000);
		pool_set_gpu_health(p, &a->gpus[1], GPU_DEGRADED);
		struct sched_config c = config((enum sched_policy)policy);
		struct task *open_ended = mk(1, 1000), *too_long = mk(1, 1000), *brief = mk(1, 1000);
		too_long->res.timeout_ms = GPU_DEGRADED_MAX_RUNTIME_MS + 1;
		brief->res.timeout_ms = 60 * 1000;
		struct task *t[] = { open_ended, too_long, brief };
		struct sched_decision d[3];
		size_t n = sched_pass(p, t, 3, &c, 0, d);
		cr_assert_eq(n, 1, "only the task with a short time limit goes on the degraded GPU");
		cr_assert_eq(d[0].task, brief);
		cr_assert_eq(d[0].pl.gpu_idx[0], 1);
		struct placement pl = { .host = a, .n = 1, .gpu_idx = { 1 }, .milli = 1000 };
		pool_release(p, &d[0].pl, &brief->res);
		cr_assert(!pool_fits(p, &pl, &open_ended->res), "the pool refuses it too");
		cr_assert(pool_fits(p, &pl, &brief->res));
		pool_free(p);
		for (int i = 0; i < 3; i++)
			free(t[i]);
	}
}

Test(sched, gangs_stay_inside_one_nvlink_group)
{
	struct pool *p = pool_new();
	struct host *h = add_host(p, "a", 8, "A100-80GB", 81920, 4); /* groups {0-3}, {4-7} */
	occupy(p, h, 1, 1000);
	struct sched_config c = config(SCHED_POLICY_FRAG);
	struct placement pl;
	struct task *four = mk(4, 1000), *two = mk(2, 1000);
	cr_assert(sched_place(p, &four->res, &c, &pl));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(h->gpus[pl.gpu_idx[i]].nvlink_group, 1, "group 0 has only 3 free");
	/* A pair goes into the group with 3 free, keeping group 1's 4 whole. */
	cr_assert(sched_place(p, &two->res, &c, &pl));
	cr_assert_eq(h->gpus[pl.gpu_idx[0]].nvlink_group, 0);
	cr_assert_eq(h->gpus[pl.gpu_idx[1]].nvlink_group, 0);
	pool_free(p);
	free(four), free(two);
}

Test(sched, gangs_prefer_a_host_where_they_fit_one_nvlink_group)
{
	struct pool *p = pool_new();
	struct host *split = add_host(p, "split", 8, "A100-80GB", 81920, 4);
	struct host *whole = add_host(p, "whole", 8, "A100-80GB", 81920, 4);
	occupy(p, split, 0, 1000);
	occupy(p, split, 4, 1000); /* 3 + 3 free: a 4-gang would span both groups */
	for (int i = 0; i < 4; i++)
		occupy(p, whole, i, 1000); /* 0 + 4 free */
	struct sched_config c = config(SCHED_POLICY_FRAG);
	struct placement pl;
	struct task *four = mk(4, 1000);
	cr_assert(sched_place(p, &four->res, &c, &pl));
	cr_assert_eq(pl.host, whole);
	pool_free(p);
	free(four);
}

Test(sched, cpu_and_memory_filter_hosts_that_track_them)
{
	struct pool *p = pool_new();
	struct gpu g[2];
	memset(g, 0, sizeof g);
	for (int i = 0; i < 2; i++) {
		snprintf(g[i].uuid, sizeof g[i].uuid, "GPU-s-%d", i);
		str_copy(g[i].model, sizeof g[i].model, "H100-80GB");
		g[i].vram_mb = 81920;
	}
	struct host *small = pool_upsert_host(p, "small", g, 2, 4000, 16000);
	for (int i = 0; i < 2; i++)
		snprintf(g[i].uuid, sizeof g[i].uuid, "GPU-b-%d", i);
	struct host *big = pool_upsert_host(p, "big", g, 2, 64000, 256000);
	struct sched_config c = config(SCHED_POLICY_BESTFIT);
	struct placement pl;
	struct task *t = mk(1, 1000);
	t->res.cpu_milli = 8000;
	cr_assert(sched_place(p, &t->res, &c, &pl));
	cr_assert_eq(pl.host, big);
	t->res.cpu_milli = 1000;
	t->res.mem_mb = 32000;
	cr_assert(sched_place(p, &t->res, &c, &pl));
	cr_assert_eq(pl.host, big);
	t->res.mem_mb = 1000;
	cr_assert(sched_place(p, &t->res, &c, &pl));
	cr_assert_eq(pl.host, small, "best fit: the small host is left fuller");
	pool_free(p);
	free(t);
}

/* Host A: one 8-GPU box with a single whole GPU free. Host B: one GPU with 400
 * free. A 300-milli share arrives, then a whole-GPU task. Best fit scores the
 * host left emptiest-by-share and puts the share on A's whole GPU (A is left
 * 700/8000 free, B would be 100/1000), so the whole-GPU task finds nothing.
 * Frag sees that breaking A's GPU costs the whole-GPU shape 700 milli while
 * using B's 400 frees its fragment, puts the share on B, and both run. */
static size_t fragmentation_case(enum sched_policy policy)
{
	struct pool *p = pool_new();
	struct host *a = add_h100(p, "a", 8);
	struct host *b = add_h100(p, "b", 1);
	for (int i = 1; i < 8; i++)
		occupy(p, a, i, 1000);
	occupy(p, b, 0, 600);
	struct task *share = mk(1, 300), *whole = mk(1, 1000);
	struct task *ordered[] = { share, whole };
	struct sched_config c = config(policy);
	struct sched_decision d[2];
	size_t n = sched_pass(p, ordered, 2, &c, 0, d);
	cr_assert_geq(n, 1);
	cr_assert_eq(d[0].task, share);
	cr_assert_eq(d[0].pl.host, policy == SCHED_POLICY_FRAG ? b : a, "policy %s", sched_policy_name(policy));
	pool_free(p);
	free(share), free(whole);
	return n;
}

Test(sched, frag_leaves_room_for_a_whole_gpu_where_bestfit_does_not)
{
	cr_assert_eq(fragmentation_case(SCHED_POLICY_FRAG), 2);
	cr_assert_eq(fragmentation_case(SCHED_POLICY_BESTFIT), 1);
}

static char *only_t4[] = { "T4" };
static char *only_g2[] = { "G2" };

/* Where a 1-GPU task that may run anywhere goes, in a pool of one-GPU hosts:
 * n_first hosts of model `first`, then n_second of model `second`. Half the
 * target workload runs anywhere, 30 % only on G2, 20 % only on T4. */
static const char *free_to_go_lands_on(const char *first, int n_first, const char *second, int n_second)
{
	struct pool *p = pool_new();
	char id[16];
	for (int i = 0; i < n_first + n_second; i++) {
		snprintf(id, sizeof id, "h%d", i);
		add_host(p, id, 1, i < n_first ? first : second, 0, 0);
	}
	struct sched_shape shapes[] = {
		{ .res = { .gpus = 1, .milli = 1000 }, .weight = 0.5 },
		{ .res = { .gpus = 1, .milli = 1000, .models = only_g2, .n_models = 1 }, .weight = 0.3 },
		{ .res = { .gpus = 1, .milli = 1000, .models = only_t4, .n_models = 1 }, .weight = 0.2 },
	};
	struct placement pl = frag_place(p, (struct task_resources){ .gpus = 1, .milli = 1000 }, shapes, 3);
	const char *model = pl.host->gpus[pl.gpu_idx[0]].model;
	model = strcmp(model, "T4") == 0 ? "T4" : "G2";
	pool_free(p);
	return model;
}

Test(sched, frag_leaves_scarce_models_to_the_work_pinned_to_them)
{
	/* 1 T4 and 4 G2 free. By frequency alone (FGD) the T4 looks better to
	 * take: it is useless to the 30 % pinned to G2, the G2s only to the 20 %
	 * pinned to T4 (delta -300 against -200, scores -57 against -54). But
	 * the T4 is all that the T4 work can use and a fifth of the pool:
	 * weighted by scarcity, T4 work weighs 0.2 * 5/1 = 1.0 and G2 work
	 * 0.3 * 5/4 = 0.375, so taking a G2 lowers fragmentation by 1000 and
	 * taking the T4 by 375. The T4 host comes first: a tie would take it. */
	cr_assert_str_eq(free_to_go_lands_on("T4", 1, "G2", 4), "G2");
	/* Scarcity reversed (4 T4, 1 G2, the G2 first): the T4s are the ones to
	 * spend (G2 work weighs 0.3 * 5 = 1.5, T4 work 0.2 * 5/4 = 0.25). */
	cr_assert_str_eq(free_to_go_lands_on("G2", 1, "T4", 4), "T4");
}

/* A host of n H100s that tracks CPU (memory untracked). */
static struct host *add_cpu_host(struct pool *p, const char *id, int n, int64_t cpu_milli)
{
	struct gpu g[TASK_MAX_GPUS];
	memset(g, 0, sizeof g);
	for (int i = 0; i < n; i++) {
		snprintf(g[i].uuid, sizeof g[i].uuid, "GPU-%s-%d", id, i);
		g[i].index = i;
		str_copy(g[i].model, sizeof g[i].model, "H100-80GB");
		g[i].vram_mb = 81920;
		g[i].nvlink_group = -1;
	}
	return pool_upsert_host(p, id, g, n, cpu_milli, 0);
}

Test(sched, frag_does_not_strand_a_gpu_by_taking_its_hosts_last_cpu)
{
	/* Small: 1 GPU, 8 cores. Big: 2 GPUs, 32 cores. A 500-milli share with
	 * 8 cores arrives; the workload is 40 % whole GPUs with 1 core, 40 %
	 * whole GPUs with 16 cores (they never fit small) and 20 % 500-milli
	 * shares with 1 core. On small the share takes every core, so the other
	 * 500 milli are dead: no shape can ever use them. By the expectation
	 * over shapes alone small looks cheaper (+100: the 16-core shape
	 * counted small's GPU as lost already; big costs +400, a 500 hole for
	 * the whole-GPU shapes),
	 * rounded -47 against -40. Charging the 500 dead milli makes small
	 * +600 (-35), and the share goes to big, where a later 500 share fits
	 * the hole. Small comes first: a tie would take it. */
	struct pool *p = pool_new();
	add_cpu_host(p, "small", 1, 8000);
	struct host *big = add_cpu_host(p, "big", 2, 32000);
	struct sched_shape shapes[] = {
		{ .res = { .gpus = 1, .milli = 1000, .cpu_milli = 1000 }, .weight = 0.4 },
		{ .res = { .gpus = 1, .milli = 1000, .cpu_milli = 16000 }, .weight = 0.4 },
		{ .res = { .gpus = 1, .milli = 500, .cpu_milli = 1000 }, .weight = 0.2 },
	};
	struct placement pl = frag_place(p, (struct task_resources){ .gpus = 1, .milli = 500, .cpu_milli = 8000 }, shapes, 3);
	cr_assert_eq(pl.host, big);
	pool_free(p);
}

Test(sched, frag_counts_gpus_that_the_hosts_cpu_cannot_feed)
{
	/* Two hosts of 4 free GPUs: narrow has 16 cores, wide 64. All the work
	 * is whole GPUs with 8 cores each. A CPU-only task of 8 cores arrives.
	 * To FGD both hosts still fit the shape after it, so nothing changes
	 * (delta 0 both) and best fit takes narrow. Counted in pods, narrow can
	 * feed 2 pods, then 1: one more of its GPUs will never be used (+1000),
	 * while wide still feeds all 4. The task goes to wide. */
	struct pool *p = pool_new();
	add_cpu_host(p, "narrow", 4, 16000);
	struct host *wide = add_cpu_host(p, "wide", 4, 64000);
	struct sched_shape shapes[] = { { .res = { .gpus = 1, .milli = 1000, .cpu_milli = 8000 }, .weight = 1.0 } };
	struct placement pl = frag_place(p, (struct task_resources){ .cpu_milli = 8000 }, shapes, 1);
	cr_assert_eq(pl.host, wide);
	pool_free(p);
}

Test(sched, frag_follows_given_target_shapes)
{
	/* Two empty 2-GPU hosts and one with a 500-milli hole. A 500 share would
	 * best fit the hole; if the target workload is all 2-GPU gangs, that hole
	 * is already lost to it and the share should go there too (frag delta 0),
	 * rather than break a whole host. */
	struct pool *p = pool_new();
	add_h100(p, "e1", 2);
	struct host *holed = add_h100(p, "holed", 2);
	add_h100(p, "e2", 2);
	occupy(p, holed, 0, 500);
	struct sched_shape shapes[] = { { .res = { .gpus = 2, .milli = 1000 }, .weight = 1.0 } };
	struct placement pl = frag_place(p, (struct task_resources){ .gpus = 1, .milli = 500 }, shapes, 1);
	cr_assert_eq(pl.host, holed);
	cr_assert_eq(pl.gpu_idx[0], 0);
	pool_free(p);
}

/* ---- backfill with a reservation ---- */

struct running {
	struct task *t;
	struct placement pl;
	int64_t end_ms;
};

struct backfill_result {
	int64_t big_start_ms; /* -1: never */
	struct host *big_host;
	int smalls_started_while_reserved;
	int smalls_on_gang_host_while_reserved;
};

/* Two 8-GPU hosts kept busy by 1-GPU tasks of staggered lengths, an 8-GPU
 * task queued at t=0 at the head of the order, and a steady stream of small
 * tasks behind it. Steps of 5 s for 5 minutes. */
static struct backfill_result run_backfill(int64_t reserve_after_ms)
{
	struct pool *p = pool_new();
	add_h100(p, "a", 8);
	add_h100(p, "b", 8);
	struct sched_config c = config(SCHED_POLICY_FRAG);
	c.reserve_after_ms = reserve_after_ms;
	struct task *big = mk(8, 1000);
	big->queued_ms = 5000;
	enum { SMALLS = 400 };
	struct task *small[SMALLS];
	for (int i = 0; i < SMALLS; i++) {
		small[i] = mk(1, 1000);
		small[i]->queued_ms = 0;
	}
	struct running run[64];
	int n_run = 0, next_small = 0;
	struct backfill_result res = { .big_start_ms = -1 };
	int reserved_starts_on[2] = { 0, 0 }; /* by host position */
	struct task *ordered[1 + SMALLS];
	struct sched_decision d[1 + SMALLS];
	/* Before the gang arrives, small work fills both hosts. */
	size_t started = sched_pass(p, small, 16, &c, 0, d);
	cr_assert_eq(started, 16);
	for (size_t k = 0; k < started; k++)
		run[n_run++] = (struct running){ d[k].task, d[k].pl, 15000 + 5000 * (int64_t)(k % 6) };
	next_small = 16;
	for (int64_t now = 5000; now <= 300000 && res.big_start_ms < 0; now += 5000) {
		for (int i = 0; i < n_run;) {
			if (run[i].end_ms <= now) {
				pool_release(p, &run[i].pl, &run[i].t->res);
				run[i] = run[--n_run];
			} else {
				i++;
			}
		}
		size_t n = 0;
		ordered[n++] = big;
		for (int i = next_small; i < SMALLS; i++)
			ordered[n++] = small[i];
		size_t placed = sched_pass(p, ordered, n, &c, now, d);
		for (size_t k = 0; k < placed; k++) {
			if (d[k].task == big) {
				res.big_start_ms = now;
				res.big_host = d[k].pl.host;
				continue;
			}
			cr_assert_eq(d[k].task, small[next_small], "smalls start in order");
			next_small++;
			/* 15..40 s, so GPUs free up one or two at a time */
			run[n_run++] = (struct running){ d[k].task, d[k].pl, now + 15000 + 5000 * (next_small % 6) };
			if (reserve_after_ms >= 0 && now - big->queued_ms >= reserve_after_ms) {
				res.smalls_started_while_reserved++;
				reserved_starts_on[d[k].pl.host->pos]++;
			}
		}
	}
	if (res.big_host)
		res.smalls_on_gang_host_while_reserved = reserved_starts_on[res.big_host->pos];
	pool_free(p);
	free(big);
	for (int i = 0; i < SMALLS; i++)
		free(small[i]);
	return res;
}

Test(sched, blocked_gang_gets_a_host_after_reserve_after_ms)
{
	struct backfill_result r = run_backfill(60000);
	/* queued at 5 s: reserved from 65 s, and the longest small task is 40 s */
	cr_assert_geq(r.big_start_ms, 65000, "not before the reservation (got %lld)", (long long)r.big_start_ms);
	cr_assert_leq(r.big_start_ms, 65000 + 40000, "within the longest small task (got %lld)", (long long)r.big_start_ms);
	cr_assert_gt(r.smalls_started_while_reserved, 0, "small work kept running elsewhere");
	cr_assert_eq(r.smalls_on_gang_host_while_reserved, 0, "but not on the host held for the gang");
}

Test(sched, without_reservation_the_gang_starves)
{
	struct backfill_result r = run_backfill(-1);
	cr_assert_eq(r.big_start_ms, -1, "the stream of small tasks keeps every host partly busy");
}

Test(sched, reserved_host_takes_no_other_work)
{
	/* Host a has 6 of 8 free, host b 2 of 8. The blocked 8-GPU task, waiting
	 * long enough, reserves a (most already free); the 1-GPU tasks after it
	 * may only use b. */
	struct pool *p = pool_new();
	struct host *a = add_h100(p, "a", 8), *b = add_h100(p, "b", 8);
	occupy(p, a, 0, 1000);
	occupy(p, a, 1, 1000);
	for (int i = 0; i < 6; i++)
		occupy(p, b, i, 1000);
	struct task *big = mk(8, 1000);
	big->queued_ms = 0;
	struct task *t[] = { big, mk(1, 1000), mk(1, 1000), mk(1, 1000), mk(1, 1000) };
	struct sched_config c = config(SCHED_POLICY_BESTFIT);
	struct sched_decision d[5];
	size_t n = sched_pass(p, t, 5, &c, 120000, d);
	cr_assert_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(d[i].pl.host, b);
	cr_assert_eq(free_whole_gpus(a), 6);
	/* Before reserve_after_ms, the same pass backfills host a too. */
	pool_free(p);
	p = pool_new();
	a = add_h100(p, "a", 8);
	b = add_h100(p, "b", 8);
	occupy(p, a, 0, 1000);
	occupy(p, a, 1, 1000);
	for (int i = 0; i < 6; i++)
		occupy(p, b, i, 1000);
	n = sched_pass(p, t, 5, &c, 30000, d);
	cr_assert_eq(n, 4);
	pool_free(p);
	for (int i = 0; i < 5; i++)
		free(t[i]);
}

/* ---- property: passes never over-allocate or misplace ---- */

static char *pin_a100[] = { "A100-80GB", "A100-40GB" };

static struct task *random_task(void)
{
	int r = rand() % 100;
	int gpus = r < 45 ? 1 : r < 70 ? 2 : r < 85 ? 4 : r < 95 ? 8 : 3;
	struct task *t = mk(gpus, gpus == 1 && rand() % 2 ? 50 * (1 + rand() % 19) : 1000);
	t->res.cpu_milli = rand() % 3 ? 0 : 2000 * (1 + rand() % 8);
	t->res.mem_mb = rand() % 3 ? 0 : 8192 * (1 + rand() % 8);
	if (rand() % 5 == 0) {
		t->res.models = pin_a100;
		t->res.n_models = 2;
	} else if (rand() % 5 == 0) {
		t->res.min_vram_mb = 40000;
	}
	t->queued_ms = rand() % 100000;
	return t;
}

static void build_random_pool(struct pool *p)
{
	static const char *models[] = { "H100-80GB", "A100-80GB", "A100-40GB", "RTX4090-24GB" };
	static const int64_t vram[] = { 81920, 81920, 40960, 24576 };
	for (int h = 0; h < 24; h++) {
		struct gpu g[8];
		memset(g, 0, sizeof g);
		int n = 1 + rand() % 8, m = rand() % 4;
		char id[16];
		snprintf(id, sizeof id, "h%d", h);
		for (int i = 0; i < n; i++) {
			snprintf(g[i].uuid, sizeof g[i].uuid, "GPU-%s-%d", id, i);
			g[i].index = i;
			str_copy(g[i].model, sizeof g[i].model, models[m]);
			g[i].vram_mb = vram[m];
			g[i].nvlink_group = m < 2 ? i / 4 : -1;
			g[i].health = rand() % 10 == 0 ? GPU_UNHEALTHY : GPU_HEALTHY;
			g[i].draining = rand() % 12 == 0;
		}
		struct host *host = pool_upsert_host(p, id, g, n, rand() % 2 ? 64000 : 0, rand() % 2 ? 512000 : 0);
		if (rand() % 10 == 0)
			pool_set_online(p, host, false);
	}
}

struct held {
	struct task *t;
	struct placement pl;
};

static void check_pool(const struct pool *p, const struct held *live, int n_live)
{
	for (int h = 0; h < p->n_hosts; h++) {
		const struct host *host = p->hosts[h];
		int milli[TASK_MAX_GPUS] = { 0 };
		int64_t cpu = 0, mem = 0;
		for (int i = 0; i < n_live; i++) {
			if (live[i].pl.host != host)
				continue;
			for (int j = 0; j < live[i].pl.n; j++)
				milli[live[i].pl.gpu_idx[j]] += live[i].pl.milli;
			cpu += live[i].t->res.cpu_milli;
			mem += live[i].t->res.mem_mb;
		}
		for (int g = 0; g < host->n_gpus; g++) {
			cr_assert_eq(host->gpus[g].milli_alloc, milli[g]);
			cr_assert_leq(milli[g], 1000, "over-allocated %s GPU %d", host->id, g);
		}
		if (host->cpu_milli > 0) {
			cr_assert_eq(host->cpu_milli_alloc, cpu);
			cr_assert_leq(cpu, host->cpu_milli);
		}
		if (host->mem_mb > 0) {
			cr_assert_eq(host->mem_mb_alloc, mem);
			cr_assert_leq(mem, host->mem_mb);
		}
	}
}

static void check_decision(const struct sched_decision *d)
{
	const struct task_resources *r = &d->task->res;
	const struct host *h = d->pl.host;
	cr_assert(h->online);
	cr_assert_eq(d->pl.n, r->gpus, "all or nothing, on one host");
	cr_assert_eq(d->pl.milli, pool_task_milli(r));
	for (int i = 0; i < d->pl.n; i++) {
		const struct gpu *g = &h->gpus[d->pl.gpu_idx[i]];
		cr_assert(sched_gpu_eligible(g, r), "%s GPU %d not eligible", h->id, d->pl.gpu_idx[i]);
		for (int j = 0; j < i; j++)
			cr_assert_neq(d->pl.gpu_idx[i], d->pl.gpu_idx[j]);
	}
}

static void random_passes(enum sched_policy policy, unsigned seed)
{
	srand(seed);
	struct pool *p = pool_new();
	build_random_pool(p);
	enum { N = 600 };
	struct task *tasks[N];
	for (int i = 0; i < N; i++)
		tasks[i] = random_task();
	struct held *live = xcalloc(N, sizeof *live);
	bool queued[N];
	for (int i = 0; i < N; i++)
		queued[i] = true;
	int n_live = 0, placed_total = 0;
	struct sched_config c = config(policy);
	c.max_reservations = 2;
	struct task *ordered[N];
	struct sched_decision d[N];
	for (int round = 0; round < 30; round++) {
		size_t n = 0;
		for (int i = 0; i < N; i++)
			if (queued[i])
				ordered[n++] = tasks[i];
		size_t placed = sched_pass(p, ordered, n, &c, 200000, d);
		for (size_t k = 0; k < placed; k++) {
			check_decision(&d[k]);
			live[n_live++] = (struct held){ d[k].task, d[k].pl };
			for (int i = 0; i < N; i++)
				if (tasks[i] == d[k].task)
					queued[i] = false;
		}
		placed_total += (int)placed;
		check_pool(p, live, n_live);
		/* Some finish; a GPU goes bad now and then. */
		for (int i = 0; i < n_live;) {
			if (rand() % 3 == 0) {
				pool_release(p, &live[i].pl, &live[i].t->res);
				live[i] = live[--n_live];
			} else {
				i++;
			}
		}
		struct host *h = p->hosts[rand() % p->n_hosts];
		pool_set_gpu_health(p, &h->gpus[rand() % h->n_gpus], rand() % 2 ? GPU_HEALTHY : GPU_UNHEALTHY);
		check_pool(p, live, n_live);
	}
	cr_assert_gt(placed_total, 100, "the test places real work (%d)", placed_total);
	pool_free(p);
	free(live);
	for (int i = 0; i < N; i++)
		free(tasks[i]);
}

Test(sched, random_passes_never_overallocate_frag)
{
	for (unsigned seed = 1; seed <= 5; seed++)
		random_passes(SCHED_POLICY_FRAG, seed);
}

Test(sched, random_passes_never_overallocate_bestfit)
{
	for (unsigned seed = 1; seed <= 5; seed++)
		random_passes(SCHED_POLICY_BESTFIT, seed);
}

Test(sched, sched_place_matches_the_first_decision_of_a_pass)
{
	srand(99);
	for (int trial = 0; trial < 40; trial++) {
		struct pool *p = pool_new();
		build_random_pool(p);
		struct task *t = random_task();
		struct sched_config c = config(trial % 2 ? SCHED_POLICY_BESTFIT : SCHED_POLICY_FRAG);
		struct placement pl;
		bool ok = sched_place(p, &t->res, &c, &pl);
		struct sched_decision d[1];
		struct task *ordered[] = { t };
		size_t n = sched_pass(p, ordered, 1, &c, 0, d);
		cr_assert_eq(ok, n == 1);
		if (ok) {
			cr_assert_eq(pl.host, d[0].pl.host);
			cr_assert_eq(pl.n, d[0].pl.n);
			for (int i = 0; i < pl.n; i++)
				cr_assert_eq(pl.gpu_idx[i], d[0].pl.gpu_idx[i]);
		}
		pool_free(p);
		free(t);
	}
}
