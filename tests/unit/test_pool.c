/* test_pool — the books: lookups, re-registration, alloc/release guards, and
 * a randomized property test that the books always equal a recomputation. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "util.h"

static void fill_gpus(struct gpu *g, int n, const char *host_id, int uuid_base)
{
	memset(g, 0, (size_t)n * sizeof *g);
	for (int i = 0; i < n; i++) {
		snprintf(g[i].uuid, sizeof g[i].uuid, "GPU-%s-%d", host_id, uuid_base + i);
		g[i].index = i;
		str_copy(g[i].model, sizeof g[i].model, "H100-80GB");
		g[i].vram_mb = 81920;
		g[i].nvlink_group = 0;
	}
}

static struct host *add_host(struct pool *p, const char *id, int n, int64_t cpu, int64_t mem)
{
	struct gpu g[TASK_MAX_GPUS];
	fill_gpus(g, n, id, 0);
	return pool_upsert_host(p, id, g, n, cpu, mem);
}

static struct task_resources res_of(int gpus, int milli)
{
	return (struct task_resources){ .gpus = gpus, .milli = milli };
}

static struct placement place_on(struct host *h, int n, const int *idx, int milli)
{
	struct placement pl = { .host = h, .n = n, .milli = milli };
	for (int i = 0; i < n; i++)
		pl.gpu_idx[i] = idx[i];
	return pl;
}

Test(pool, finds_hosts_and_gpus_among_thousands)
{
	struct pool *p = pool_new();
	char id[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(id, sizeof id, "host-%d", i);
		add_host(p, id, 4, 0, 0);
	}
	cr_assert_eq(p->n_hosts, 3000);
	for (int i = 0; i < 3000; i += 7) {
		snprintf(id, sizeof id, "host-%d", i);
		struct host *h = pool_find_host(p, id);
		cr_assert_not_null(h, "%s", id);
		cr_assert_str_eq(h->id, id);
		cr_assert_eq(p->hosts[h->pos], h);
		char uuid[64];
		snprintf(uuid, sizeof uuid, "GPU-%s-3", id);
		struct gpu *g = pool_find_gpu(p, uuid);
		cr_assert_not_null(g);
		cr_assert_eq(g->host, h);
		cr_assert_eq(g, &h->gpus[3]);
	}
	cr_assert_null(pool_find_host(p, "host-3000"));
	cr_assert_null(pool_find_gpu(p, "GPU-host-1-4"));
	pool_free(p);
}

Test(pool, reregistration_keeps_books_of_gpus_that_stay)
{
	struct pool *p = pool_new();
	struct host *h = add_host(p, "a", 4, 64000, 100000);
	int idx[] = { 1 };
	struct task_resources r = res_of(1, 300);
	r.cpu_milli = 1000;
	struct placement pl = place_on(h, 1, idx, 300);
	cr_assert_eq(pool_alloc(p, &pl, &r), 0);
	pool_set_gpu_health(p, &h->gpus[2], GPU_UNHEALTHY);
	pool_set_gpu_draining(p, &h->gpus[3], true);
	uint64_t v = p->version;

	/* The agent comes back: GPU 0 is gone, 1..3 stay (in another order), one is new.
	 * Health is the agent's to say (it now reports GPU 2 degraded, not unhealthy:
	 * the report wins); the allocation and the operator's drain are the node's books. */
	struct gpu g[4];
	fill_gpus(g, 4, "a", 0);
	struct gpu again[4] = { g[3], g[2], g[1], g[0] };
	again[1].health = GPU_DEGRADED;
	snprintf(again[3].uuid, sizeof again[3].uuid, "GPU-a-new");
	struct host *h2 = pool_upsert_host(p, "a", again, 4, 64000, 100000);
	cr_assert_eq(h2, h);
	cr_assert_gt(p->version, v);
	cr_assert_eq(p->n_hosts, 1);
	struct gpu *g1 = pool_find_gpu(p, "GPU-a-1");
	cr_assert_eq(g1->milli_alloc, 300);
	cr_assert_eq(pool_find_gpu(p, "GPU-a-2")->health, GPU_DEGRADED);
	cr_assert(pool_find_gpu(p, "GPU-a-3")->draining);
	cr_assert_null(pool_find_gpu(p, "GPU-a-0"));
	struct gpu *fresh = pool_find_gpu(p, "GPU-a-new");
	cr_assert_not_null(fresh);
	cr_assert_eq(fresh->milli_alloc, 0);
	cr_assert_eq(fresh->host, h);
	cr_assert_eq(h->cpu_milli_alloc, 1000, "host books survive too");
	pool_free(p);
}

Test(pool, uuids_survive_many_reregistrations)
{
	/* Exercises deletion in the uuid table: every round moves each host to a
	 * new set of uuids; old ones must vanish, new ones be found. */
	struct pool *p = pool_new();
	char id[32];
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 50; i++) {
			snprintf(id, sizeof id, "h%d", i);
			struct gpu g[8];
			fill_gpus(g, 8, id, round * 8);
			pool_upsert_host(p, id, g, 8, 0, 0);
		}
	}
	for (int i = 0; i < 50; i++) {
		char uuid[64];
		snprintf(id, sizeof id, "h%d", i);
		snprintf(uuid, sizeof uuid, "GPU-%s-%d", id, 19 * 8 + 5);
		cr_assert_not_null(pool_find_gpu(p, uuid));
		snprintf(uuid, sizeof uuid, "GPU-%s-%d", id, 18 * 8 + 5);
		cr_assert_null(pool_find_gpu(p, uuid));
	}
	pool_free(p);
}

Test(pool, shares_fill_a_gpu_up_to_1000_and_no_further)
{
	struct pool *p = pool_new();
	struct host *h = add_host(p, "a", 1, 0, 0);
	int idx[] = { 0 };
	struct task_resources r = res_of(1, 400);
	struct placement pl = place_on(h, 1, idx, 400);
	cr_assert_eq(pool_alloc(p, &pl, &r), 0);
	cr_assert_eq(pool_alloc(p, &pl, &r), 0);
	cr_assert_eq(pool_alloc(p, &pl, &r), -1, "1200 > 1000");
	struct task_resources r2 = res_of(1, 200);
	struct placement pl2 = place_on(h, 1, idx, 200);
	cr_assert_eq(pool_alloc(p, &pl2, &r2), 0);
	cr_assert_eq(h->gpus[0].milli_alloc, 1000);
	pool_release(p, &pl, &r);
	cr_assert_eq(h->gpus[0].milli_alloc, 600);
	pool_free(p);
}

Test(pool, alloc_refuses_bad_placements_and_changes_nothing)
{
	struct pool *p = pool_new();
	struct host *h = add_host(p, "a", 4, 8000, 1000);
	int two[] = { 0, 1 }, dup[] = { 2, 2 }, out[] = { 0, 4 };
	struct task_resources r2 = res_of(2, 1000);
	struct placement pl;

	pl = place_on(h, 2, dup, 1000);
	cr_assert_eq(pool_alloc(p, &pl, &r2), -1, "same GPU twice");
	pl = place_on(h, 2, out, 1000);
	cr_assert_eq(pool_alloc(p, &pl, &r2), -1, "index out of range");
	pl = place_on(h, 1, two, 1000);
	cr_assert_eq(pool_alloc(p, &pl, &r2), -1, "fewer GPUs than asked");
	pl = place_on(h, 2, two, 500);
	cr_assert_eq(pool_alloc(p, &pl, &r2), -1, "gangs take whole GPUs");

	struct task_resources cpu_hungry = res_of(2, 1000);
	cpu_hungry.cpu_milli = 9000;
	pl = place_on(h, 2, two, 1000);
	cr_assert_eq(pool_alloc(p, &pl, &cpu_hungry), -1, "CPU over capacity");
	struct task_resources mem_hungry = res_of(2, 1000);
	mem_hungry.mem_mb = 1001;
	cr_assert_eq(pool_alloc(p, &pl, &mem_hungry), -1, "memory over capacity");

	pool_set_gpu_health(p, &h->gpus[1], GPU_UNHEALTHY);
	cr_assert_eq(pool_alloc(p, &pl, &r2), -1, "unhealthy GPU");
	pool_set_gpu_health(p, &h->gpus[1], GPU_HEALTHY);
	pool_set_gpu_draining(p, &h->gpus[0], true);
	cr_assert_eq(pool_alloc(p, &pl, &r2), -1, "draining GPU");
	pool_set_gpu_draining(p, &h->gpus[0], false);
	pool_set_online(p, h, false);
	cr_assert_eq(pool_alloc(p, &pl, &r2), -1, "offline host");
	pool_set_online(p, h, true);

	for (int i = 0; i < 4; i++)
		cr_assert_eq(h->gpus[i].milli_alloc, 0);
	cr_assert_eq(h->cpu_milli_alloc, 0);
	cr_assert_eq(h->mem_mb_alloc, 0);
	cr_assert_eq(pool_alloc(p, &pl, &r2), 0);
	cr_assert_eq(pool_alloc(p, &pl, &r2), -1, "already taken");
	pool_free(p);
}

Test(pool, placement_rebuilt_from_task)
{
	struct pool *p = pool_new();
	struct host *h = add_host(p, "a", 4, 0, 0);
	struct task t;
	memset(&t, 0, sizeof t);
	t.res = res_of(2, 1000);
	str_copy(t.host, sizeof t.host, "a");
	t.n_gpus_assigned = 2;
	str_copy(t.gpu_uuids[0], sizeof t.gpu_uuids[0], "GPU-a-3");
	str_copy(t.gpu_uuids[1], sizeof t.gpu_uuids[1], "GPU-a-1");
	struct placement pl;
	cr_assert_eq(pool_placement_of(p, &t, &pl), 0);
	cr_assert_eq(pl.host, h);
	cr_assert_eq(pl.n, 2);
	cr_assert_eq(pl.gpu_idx[0], 3);
	cr_assert_eq(pl.gpu_idx[1], 1);
	cr_assert_eq(pl.milli, 1000);
	str_copy(t.gpu_uuids[1], sizeof t.gpu_uuids[1], "GPU-b-1");
	cr_assert_eq(pool_placement_of(p, &t, &pl), -1, "unknown GPU");
	pool_free(p);
}

Test(pool, totals_count_online_healthy_capacity)
{
	struct pool *p = pool_new();
	struct host *a = add_host(p, "a", 4, 0, 0);
	struct host *b = add_host(p, "b", 2, 0, 0);
	pool_set_gpu_health(p, &a->gpus[0], GPU_UNHEALTHY);
	pool_set_online(p, b, false);
	int idx[] = { 1 };
	struct task_resources r = res_of(1, 250);
	struct placement pl = place_on(a, 1, idx, 250);
	cr_assert_eq(pool_alloc(p, &pl, &r), 0);
	struct pool_totals t;
	pool_totals(p, &t);
	cr_assert_eq(t.hosts, 2);
	cr_assert_eq(t.hosts_online, 1);
	cr_assert_eq(t.gpus, 6);
	cr_assert_eq(t.gpus_healthy, 5);
	cr_assert_eq(t.milli_capacity, 3000);
	cr_assert_eq(t.milli_allocated, 250);
	pool_free(p);
}

/* ---- property: the books equal what the live placements add up to ---- */

struct live {
	struct placement pl;
	struct task_resources r;
};

static void check_books(const struct pool *p, const struct live *lv, int n)
{
	for (int h = 0; h < p->n_hosts; h++) {
		const struct host *host = p->hosts[h];
		int64_t cpu = 0, mem = 0;
		int milli[TASK_MAX_GPUS] = { 0 };
		for (int i = 0; i < n; i++) {
			if (lv[i].pl.host != host)
				continue;
			cpu += lv[i].r.cpu_milli;
			mem += lv[i].r.mem_mb;
			for (int j = 0; j < lv[i].pl.n; j++)
				milli[lv[i].pl.gpu_idx[j]] += lv[i].pl.milli;
		}
		for (int g = 0; g < host->n_gpus; g++) {
			cr_assert_eq(host->gpus[g].milli_alloc, milli[g], "host %d gpu %d", h, g);
			cr_assert_leq(host->gpus[g].milli_alloc, 1000);
		}
		cr_assert_eq(host->cpu_milli_alloc, cpu);
		cr_assert_eq(host->mem_mb_alloc, mem);
		cr_assert_leq(host->cpu_milli_alloc, host->cpu_milli);
		cr_assert_leq(host->mem_mb_alloc, host->mem_mb);
	}
}

static struct live random_request(struct pool *p)
{
	struct live x;
	memset(&x, 0, sizeof x);
	struct host *h = p->hosts[rand() % p->n_hosts];
	int gpus = 1 + rand() % 3;
	x.r = res_of(gpus, gpus == 1 && rand() % 2 ? 100 * (1 + rand() % 9) : 1000);
	x.r.cpu_milli = 1000 * (rand() % 4);
	x.r.mem_mb = 512 * (rand() % 4);
	x.pl.host = h;
	x.pl.n = gpus;
	x.pl.milli = pool_task_milli(&x.r);
	for (int i = 0; i < gpus; i++)
		x.pl.gpu_idx[i] = rand() % h->n_gpus; /* duplicates on purpose: must be refused */
	return x;
}

Test(pool, random_alloc_release_never_overallocates)
{
	srand(7);
	struct pool *p = pool_new();
	char id[16];
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof id, "h%d", i);
		add_host(p, id, 4, 8000, 4096);
	}
	struct live lv[4000];
	int n = 0, accepted = 0, refused = 0;
	for (int step = 0; step < 4000; step++) {
		if (n > 0 && rand() % 3 == 0) {
			int k = rand() % n;
			pool_release(p, &lv[k].pl, &lv[k].r);
			lv[k] = lv[--n];
		} else {
			struct live x = random_request(p);
			bool fits = pool_fits(p, &x.pl, &x.r);
			int rc = pool_alloc(p, &x.pl, &x.r);
			cr_assert_eq(rc == 0, fits, "pool_fits and pool_alloc agree");
			if (rc == 0) {
				lv[n++] = x;
				accepted++;
			} else {
				refused++;
			}
		}
		if (step % 50 == 0)
			check_books(p, lv, n);
	}
	check_books(p, lv, n);
	cr_assert_gt(accepted, 100);
	cr_assert_gt(refused, 100);
	pool_free(p);
}
