/* pool.c — the books of hosts and GPUs.
 *
 * Lookups by host id and GPU uuid go through two strmaps (backward-shift
 * deletion, so no tombstones pile up when agents re-register their GPUs over
 * and over). The maps point at the
 * id strings inside the hosts and GPUs themselves: no key copies, and the
 * pointers stay valid because a host never moves (hosts[] holds pointers) and
 * a GPU array is only replaced by pool_upsert_host, which re-keys it. */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

struct pool_index {
	struct strmap hosts; /* id -> struct host * */
	struct strmap gpus;  /* uuid -> struct gpu * */
};

static struct pool_index *pool_index_of(const struct pool *p) { return p->index; }

struct pool *pool_new(void)
{
	struct pool *p = xcalloc(1, sizeof *p);
	struct pool_index *ix = xcalloc(1, sizeof *ix);
	strmap_init(&ix->hosts);
	strmap_init(&ix->gpus);
	p->index = ix;
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n_hosts; i++) {
		free(p->hosts[i]->gpus);
		free(p->hosts[i]);
	}
	free(p->hosts);
	struct pool_index *ix = pool_index_of(p);
	strmap_free(&ix->hosts);
	strmap_free(&ix->gpus);
	free(ix);
	free(p);
}

struct host *pool_find_host(const struct pool *p, const char *id)
{
	return strmap_get(&pool_index_of(p)->hosts, id);
}

struct gpu *pool_find_gpu(const struct pool *p, const char *uuid)
{
	return strmap_get(&pool_index_of(p)->gpus, uuid);
}

/* A host starts online: it is being registered by an agent that just spoke. */
static struct host *pool_add_host(struct pool *p, const char *id)
{
	struct host *h = xcalloc(1, sizeof *h);
	str_copy(h->id, sizeof h->id, id);
	h->online = true;
	if (p->n_hosts == p->cap_hosts) {
		p->cap_hosts = p->cap_hosts ? p->cap_hosts * 2 : 8;
		p->hosts = xrealloc(p->hosts, (size_t)p->cap_hosts * sizeof *p->hosts);
	}
	h->pos = p->n_hosts;
	p->hosts[p->n_hosts++] = h;
	strmap_put(&pool_index_of(p)->hosts, h->id, h);
	return h;
}

/* Copies the reported GPUs; a GPU whose uuid the host already had keeps its
 * books (allocation and the operator's drain), a new one starts with nothing
 * allocated. Health comes with the report: the agent owns it. */
static struct gpu *pool_copy_gpus(const struct pool *p, struct host *h, const struct gpu *gpus, int n)
{
	struct gpu *out = xcalloc((size_t)(n > 0 ? n : 1), sizeof *out);
	for (int i = 0; i < n; i++) {
		out[i] = gpus[i];
		out[i].host = h;
		out[i].milli_alloc = 0;
		const struct gpu *old = pool_find_gpu(p, gpus[i].uuid);
		if (old && old->host == h) {
			out[i].milli_alloc = old->milli_alloc;
			out[i].draining = old->draining;
		}
	}
	return out;
}

struct host *pool_upsert_host(struct pool *p, const char *id, const struct gpu *gpus, int n,
			      int64_t cpu_milli, int64_t mem_mb)
{
	if (!id || n < 0 || (n > 0 && !gpus))
		return NULL;
	struct pool_index *ix = pool_index_of(p);
	struct host *h = pool_find_host(p, id);
	if (!h)
		h = pool_add_host(p, id);
	struct gpu *fresh = pool_copy_gpus(p, h, gpus, n);
	for (int i = 0; i < h->n_gpus; i++)
		strmap_del(&ix->gpus, h->gpus[i].uuid, &h->gpus[i]);
	free(h->gpus);
	h->gpus = fresh;
	h->n_gpus = n;
	for (int i = 0; i < n; i++)
		strmap_put(&ix->gpus, fresh[i].uuid, &fresh[i]);
	h->cpu_milli = cpu_milli > 0 ? cpu_milli : 0;
	h->mem_mb = mem_mb > 0 ? mem_mb : 0;
	p->version++;
	return h;
}

int pool_task_milli(const struct task_resources *r)
{
	if (r->gpus <= 0)
		return 0;
	if (r->gpus == 1 && r->milli > 0 && r->milli < TASK_MILLI_FULL)
		return r->milli;
	return TASK_MILLI_FULL;
}

bool pool_gpu_usable(const struct gpu *g)
{
	return g->health == GPU_HEALTHY && pool_gpu_schedulable(g);
}

bool pool_task_short(const struct task_resources *r)
{
	return r->timeout_ms > 0 && r->timeout_ms <= GPU_DEGRADED_MAX_RUNTIME_MS;
}

bool pool_gpu_schedulable(const struct gpu *g)
{
	return g->health != GPU_UNHEALTHY && !g->draining && g->host && g->host->online;
}

bool pool_gpu_takes(const struct gpu *g, const struct task_resources *r)
{
	return pool_gpu_usable(g) || (pool_gpu_schedulable(g) && g->health == GPU_DEGRADED && pool_task_short(r));
}

static bool pool_owns_host(const struct pool *p, const struct host *h)
{
	return h && h->pos >= 0 && h->pos < p->n_hosts && p->hosts[h->pos] == h;
}

/* The shape of a placement matches the request: n GPUs, distinct, on the
 * host, each charged what pool_task_milli says. */
static bool pool_placement_consistent(const struct placement *pl, const struct task_resources *r)
{
	const struct host *h = pl->host;
	if (pl->n != (r->gpus > 0 ? r->gpus : 0) || pl->n > TASK_MAX_GPUS || pl->n > h->n_gpus)
		return false;
	if (pl->n > 0 && pl->milli != pool_task_milli(r))
		return false;
	for (int i = 0; i < pl->n; i++) {
		if (pl->gpu_idx[i] < 0 || pl->gpu_idx[i] >= h->n_gpus)
			return false;
		for (int j = 0; j < i; j++)
			if (pl->gpu_idx[j] == pl->gpu_idx[i])
				return false;
	}
	return true;
}

/* 0 capacity means the host does not track that resource. */
static bool pool_side_resource_fits(int64_t cap, int64_t used, int64_t want)
{
	return cap <= 0 || want <= 0 || used + want <= cap;
}

bool pool_fits(const struct pool *p, const struct placement *pl, const struct task_resources *r)
{
	if (!pl || !r || !pool_owns_host(p, pl->host) || !pl->host->online)
		return false;
	if (!pool_placement_consistent(pl, r))
		return false;
	const struct host *h = pl->host;
	for (int i = 0; i < pl->n; i++) {
		const struct gpu *g = &h->gpus[pl->gpu_idx[i]];
		if (!pool_gpu_takes(g, r) || g->milli_alloc + pl->milli > TASK_MILLI_FULL)
			return false;
	}
	return pool_side_resource_fits(h->cpu_milli, h->cpu_milli_alloc, r->cpu_milli) &&
	       pool_side_resource_fits(h->mem_mb, h->mem_mb_alloc, r->mem_mb);
}

int pool_alloc(struct pool *p, const struct placement *pl, const struct task_resources *r)
{
	if (!pool_fits(p, pl, r))
		return -1;
	struct host *h = pl->host;
	for (int i = 0; i < pl->n; i++)
		h->gpus[pl->gpu_idx[i]].milli_alloc += pl->milli;
	if (h->cpu_milli > 0 && r->cpu_milli > 0)
		h->cpu_milli_alloc += r->cpu_milli;
	if (h->mem_mb > 0 && r->mem_mb > 0)
		h->mem_mb_alloc += r->mem_mb;
	p->version++;
	return 0;
}

/* Refunds never go below zero: a double release is a caller bug, but books
 * that claim negative use would let the scheduler over-allocate. */
static void pool_refund(int64_t *used, int64_t amount)
{
	*used = *used > amount ? *used - amount : 0;
}

void pool_release(struct pool *p, const struct placement *pl, const struct task_resources *r)
{
	if (!pl || !r || !pool_owns_host(p, pl->host) || !pool_placement_consistent(pl, r))
		return;
	struct host *h = pl->host;
	for (int i = 0; i < pl->n; i++) {
		struct gpu *g = &h->gpus[pl->gpu_idx[i]];
		g->milli_alloc = g->milli_alloc > pl->milli ? g->milli_alloc - pl->milli : 0;
	}
	if (h->cpu_milli > 0 && r->cpu_milli > 0)
		pool_refund(&h->cpu_milli_alloc, r->cpu_milli);
	if (h->mem_mb > 0 && r->mem_mb > 0)
		pool_refund(&h->mem_mb_alloc, r->mem_mb);
	p->version++;
}

int pool_placement_of(const struct pool *p, const struct task *t, struct placement *out)
{
	struct host *h = pool_find_host(p, t->host);
	if (!h || t->n_gpus_assigned < 0 || t->n_gpus_assigned > TASK_MAX_GPUS)
		return -1;
	memset(out, 0, sizeof *out);
	out->host = h;
	out->n = t->n_gpus_assigned;
	out->milli = pool_task_milli(&t->res);
	for (int i = 0; i < out->n; i++) {
		const struct gpu *g = pool_find_gpu(p, t->gpu_uuids[i]);
		if (!g || g->host != h)
			return -1;
		out->gpu_idx[i] = (int)(g - h->gpus);
	}
	return 0;
}

void pool_set_online(struct pool *p, struct host *h, bool online)
{
	h->online = online;
	p->version++;
}

void pool_set_gpu_health(struct pool *p, struct gpu *g, enum gpu_health health)
{
	g->health = health;
	p->version++;
}

void pool_set_gpu_draining(struct pool *p, struct gpu *g, bool draining)
{
	g->draining = draining;
	p->version++;
}

void pool_totals(const struct pool *p, struct pool_totals *out)
{
	memset(out, 0, sizeof *out);
	out->hosts = p->n_hosts;
	for (int i = 0; i < p->n_hosts; i++) {
		const struct host *h = p->hosts[i];
		out->hosts_online += h->online;
		out->gpus += h->n_gpus;
		for (int j = 0; j < h->n_gpus; j++) {
			const struct gpu *g = &h->gpus[j];
			if (g->health != GPU_HEALTHY)
				continue;
			out->gpus_healthy++;
			if (!h->online)
				continue;
			out->milli_capacity += TASK_MILLI_FULL;
			out->milli_allocated += g->milli_alloc;
		}
	}
}

const char *gpu_health_name(enum gpu_health h)
{
	switch (h) {
	case GPU_HEALTHY:
		return "healthy";
	case GPU_DEGRADED:
		return "degraded";
	case GPU_UNHEALTHY:
		return "unhealthy";
	}
	return "unknown";
}
