/* sched.c — placement: filter, then score.
 *
 * One pass builds a small index of the pool, walks the ordered tasks, and
 * throws the index away: no state survives between passes, so whatever the
 * node changed in the pool meanwhile (releases, health, draining) can never
 * leave the index stale.
 *
 * The index, and why it is fast:
 *   - Host states. A host is reduced to its state: the usable GPUs (healthy,
 *     not draining) as sorted (model, VRAM, free milli, NVLink group) slots,
 *     plus CPU and memory left. Hosts with equal states are interchangeable
 *     for every task and every score, so they share one group, and a task is
 *     scored once per distinct state, not once per host. A big pool has few
 *     distinct states (empty hosts, full hosts, a handful being filled).
 *     Inside a group the host with the lowest pool position is taken.
 *   - Task classes. Tasks with equal resources form a class. A class that did
 *     not fit once in a pass never fits later in it (a pass only allocates and
 *     reserves), so the 90,000 tasks that cannot run cost one lookup each.
 *   - Scores memoised per (class, state group). A state never changes (a
 *     host that changes moves to another group), so a memoised score is valid
 *     for the whole pass; after a placement only the new state is scored.
 *   - Per class, a heap of the groups it fits, best first, fed by a log of
 *     the groups hosts joined (see sched_choose). A placement costs scoring
 *     one new state per class that asks afterwards plus O(log states), not a
 *     scan of hosts x GPUs.
 *
 * The frag score follows FGD (Weng et al., USENIX ATC'23). For a target
 * workload of shapes s with weights w_s, a host's fragmentation is
 *   F(host) = sum_s w_s * (GPU milli on the host that s cannot use).
 * Three changes to FGD. What s cannot use is all the free milli but what the
 * pods of s that still fit would take, counting how many fit by GPU, CPU and
 * memory (FGD: all of it when s does not fit at all, else the GPUs s may not
 * use or that have less free than its need; see sched_shape_frag). w_s is
 * the shape's share of the work times its scarcity, free milli of the pool /
 * free milli on the GPUs s may use (its models and VRAM; see
 * sched_shapes_weigh_scarcity). And F adds the host's dead milli, the GPU
 * milli that no shape of the core workload can use (see sched_frag_delta).
 * A placement is scored by how much it increases F:
 * for gangs, keeping the gang inside one NVLink group comes first; then the
 * least increase, rounded as FGD rounds it (sched_frag_quantize); then
 * best fit; then the state seen first (host order at the start of the
 * pass). F is kept per state as
 * per-shape counters, so the increase of a candidate is O(shapes) per GPU
 * it touches.
 *
 * Backfill: a task that does not fit does not stop the pass. Once such a task
 * has waited reserve_after_ms, it reserves the host with the most capacity
 * already free for it; no later task of the pass is placed there, so the
 * host drains for it while small work keeps running elsewhere. The pass is
 * stateless, so the reservation is re-derived each pass: the same host keeps
 * winning because it is the one draining. */
#include "sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SCHED_MAX_SLOTS TASK_MAX_GPUS
#define SCHED_MAX_SHAPES 32
#define SCHED_SHAPE_COVER 0.95      /* FGD: the shapes covering 95 % of tasks */
#define SCHED_MEMO_BUDGET (1 << 20) /* memo entries per pass, 32 MB at most */
#define SCHED_UNTRACKED INT64_MAX   /* CPU or memory the host does not track */
#define SCHED_MODEL_NONE (-2)       /* an allowed model no GPU in the pool has */
#define SCHED_DEFAULT_MAX_RESERVATIONS 4

/* ---- policy and config ---- */

static const char *const sched_policy_names[SCHED_POLICY_COUNT] = { "frag", "bestfit" };

const char *sched_policy_name(enum sched_policy p)
{
	return (unsigned)p < SCHED_POLICY_COUNT ? sched_policy_names[p] : "unknown";
}

int sched_policy_parse(const char *name, enum sched_policy *out)
{
	for (int i = 0; i < SCHED_POLICY_COUNT; i++)
		if (name && strcmp(name, sched_policy_names[i]) == 0) {
			*out = (enum sched_policy)i;
			return 0;
		}
	return -1;
}

void sched_config_default(struct sched_config *c)
{
	memset(c, 0, sizeof *c);
	c->policy = SCHED_POLICY_FRAG;
	c->reserve_after_ms = 60000;
	c->max_reservations = SCHED_DEFAULT_MAX_RESERVATIONS;
}

static bool sched_model_allowed(const char *model, const struct task_resources *r)
{
	if (r->n_models <= 0)
		return true;
	for (int i = 0; i < r->n_models; i++)
		if (r->models[i] && strcmp(r->models[i], model) == 0)
			return true;
	return false;
}

bool sched_gpu_eligible(const struct gpu *g, const struct task_resources *r)
{
	return pool_gpu_takes(g, r) && g->vram_mb >= r->min_vram_mb &&
	       sched_model_allowed(g->model, r);
}

/* ---- the pass's index ---- */

/* One usable GPU of a host state. */
struct sched_slot {
	int64_t vram;
	int model; /* id in ctx->models */
	int group; /* NVLink group, -1 unknown */
	int free;  /* milli */
	bool degraded; /* its GPU is Degraded: only short work (pool_gpu_takes) */
};

struct sched_state {
	int n;
	struct sched_slot slot[SCHED_MAX_SLOTS];
	int64_t cpu_left, mem_left; /* SCHED_UNTRACKED when not tracked */
	int64_t cpu_cap, mem_cap;
	int64_t free_total;         /* sum of slot free */
};

/* A score: lower is better, compared key by key. */
struct sched_score {
	double k[3];
};

struct sched_group;

/* A group a class fits, with its score: an entry of the class's heap. */
struct sched_cand {
	struct sched_score score;
	struct sched_group *group;
};

/* What tasks of one class ask for; also the form a target shape takes. */
struct sched_class {
	int id;
	int gpus;          /* 0: CPU-only */
	int milli;         /* per GPU */
	int64_t vram, cpu, mem;
	bool short_work;   /* may go on a Degraded GPU (pool_task_short) */
	const struct task_resources *res; /* first task seen; for model names */
	int n_models;
	int *model_ids;
	uint64_t hash;
	size_t count;      /* tasks of the class in this pass */
	bool infeasible;   /* did not fit once in this pass: never will in it */
	struct sched_memo *memo; /* by group id; only for classes that repeat */
	int memo_cap;
	uint64_t model_mask;     /* bit per allowed model id, for ids < 64 */
	/* The groups that fit, best first (see sched_choose). */
	bool searched;
	struct sched_cand *cands;
	int n_cands, cap_cands;
	int log_pos;
};

/* The frag counters of one state for one shape. */
struct sched_shape_stat {
	int units;         /* pods' worth of GPU: sum of free / need over eligible slots */
	uint32_t eligible; /* bit i: the shape may use slot i (model, VRAM) */
};

struct sched_hnode;

struct sched_group {
	int id;
	uint64_t hash;
	struct sched_state st;
	struct sched_hnode **hosts; /* by pool position, descending: the lowest is last */
	int n_hosts, cap_hosts;
	int live_list, live_pos;    /* where in ctx->live; live_pos -1 when empty */
	struct sched_shape_stat *stats; /* per target shape, lazily */
};

struct sched_hnode {
	struct host *host;
	struct sched_group *group;     /* NULL: offline or reserved */
	int slot_gpu[SCHED_MAX_SLOTS]; /* state slot -> host GPU index */
	const int *gpu_model;          /* model id of each host GPU */
};

/* Which slots of a state a task takes. */
struct sched_pick {
	int n;
	int slot[SCHED_MAX_SLOTS];
};

/* A memoised score of one class on one state group. */
struct sched_memo {
	bool known, fits;
	struct sched_score score;
};

/* Open-addressing table of int ids (into an array the caller owns). */
struct sched_idmap {
	int *slots; /* -1 empty */
	size_t cap, len;
};

enum { SCHED_LIVE_NO_GPU, SCHED_LIVE_GPU, SCHED_LIVE_COUNT };

struct sched_ctx {
	struct pool *pool;
	const struct sched_config *cfg;
	const char **models;
	int n_models, cap_models;
	struct sched_class **classes;
	int n_classes, cap_classes;
	struct sched_idmap class_map;
	struct sched_class **shapes;
	double *shape_w;
	bool *shape_core; /* in the core workload: counts for dead milli */
	int n_shapes;
	struct sched_group **groups;
	int n_groups, cap_groups;
	struct sched_idmap group_map;
	struct sched_group **live[SCHED_LIVE_COUNT];
	int n_live[SCHED_LIVE_COUNT], cap_live[SCHED_LIVE_COUNT];
	struct sched_group **joined;   /* log: the group of every host join */
	int n_joined, cap_joined;
	struct sched_hnode *hnodes;
	int *gpu_models;               /* model ids of all GPUs, host after host */
	size_t memo_used;              /* entries, against SCHED_MEMO_BUDGET */
	int n_reserved;
};

static uint64_t sched_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

static uint64_t sched_hash_str(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return sched_mix(h, 0);
}

static void sched_idmap_init(struct sched_idmap *m)
{
	m->cap = 64;
	m->len = 0;
	m->slots = xmalloc(m->cap * sizeof *m->slots);
	memset(m->slots, 0xff, m->cap * sizeof *m->slots);
}

/* ---- models ---- */

static int sched_model_id(struct sched_ctx *ctx, const char *name, bool add)
{
	for (int i = 0; i < ctx->n_models; i++)
		if (strcmp(ctx->models[i], name) == 0)
			return i;
	if (!add)
		return SCHED_MODEL_NONE;
	if (ctx->n_models == ctx->cap_models) {
		ctx->cap_models = ctx->cap_models ? ctx->cap_models * 2 : 8;
		ctx->models = xrealloc(ctx->models, (size_t)ctx->cap_models * sizeof *ctx->models);
	}
	ctx->models[ctx->n_models] = name;
	return ctx->n_models++;
}

/* ---- classes ---- */

static void sched_class_key(const struct task_resources *r, struct sched_class *k)
{
	memset(k, 0, sizeof *k);
	k->gpus = r->gpus > 0 ? r->gpus : 0;
	k->milli = pool_task_milli(r);
	k->vram = r->min_vram_mb > 0 ? r->min_vram_mb : 0;
	k->cpu = r->cpu_milli > 0 ? r->cpu_milli : 0;
	k->mem = r->mem_mb > 0 ? r->mem_mb : 0;
	k->short_work = pool_task_short(r);
	k->res = r;
	k->n_models = r->n_models > 0 ? r->n_models : 0;
	uint64_t h = sched_mix(sched_mix(sched_mix(0, (uint64_t)k->gpus), (uint64_t)k->milli), (uint64_t)k->vram);
	h = sched_mix(sched_mix(sched_mix(h, (uint64_t)k->cpu), (uint64_t)k->mem), (uint64_t)k->short_work);
	for (int i = 0; i < k->n_models; i++)
		h = sched_hash_str(h, r->models[i]);
	k->hash = h;
}

static bool sched_class_equal(const struct sched_class *a, const struct sched_class *b)
{
	if (a->hash != b->hash || a->gpus != b->gpus || a->milli != b->milli || a->vram != b->vram ||
	    a->cpu != b->cpu || a->mem != b->mem || a->short_work != b->short_work || a->n_models != b->n_models)
		return false;
	for (int i = 0; i < a->n_models; i++)
		if (strcmp(a->res->models[i] ? a->res->models[i] : "", b->res->models[i] ? b->res->models[i] : ""))
			return false;
	return true;
}

static struct sched_class *sched_class_add(struct sched_ctx *ctx, const struct sched_class *key)
{
	struct sched_class *c = xmalloc(sizeof *c);
	*c = *key;
	c->id = ctx->n_classes;
	c->model_ids = xcalloc((size_t)(c->n_models > 0 ? c->n_models : 1), sizeof *c->model_ids);
	for (int i = 0; i < c->n_models; i++) {
		c->model_ids[i] = c->res->models[i] ? sched_model_id(ctx, c->res->models[i], false) : SCHED_MODEL_NONE;
		if (c->model_ids[i] >= 0 && c->model_ids[i] < 64)
			c->model_mask |= 1ULL << c->model_ids[i];
	}
	if (ctx->n_classes == ctx->cap_classes) {
		ctx->cap_classes = ctx->cap_classes ? ctx->cap_classes * 2 : 16;
		ctx->classes = xrealloc(ctx->classes, (size_t)ctx->cap_classes * sizeof *ctx->classes);
	}
	ctx->classes[ctx->n_classes++] = c;
	return c;
}

static void sched_idmap_grow(struct sched_idmap *m, void *const *items, uint64_t (*hash_of)(const void *));

static uint64_t sched_class_hash_of(const void *c) { return ((const struct sched_class *)c)->hash; }

/* The class of r, created on first sight. */
static struct sched_class *sched_class_of(struct sched_ctx *ctx, const struct task_resources *r)
{
	struct sched_class key;
	sched_class_key(r, &key);
	struct sched_idmap *m = &ctx->class_map;
	size_t mask = m->cap - 1, i = key.hash & mask;
	for (; m->slots[i] >= 0; i = (i + 1) & mask)
		if (sched_class_equal(ctx->classes[m->slots[i]], &key))
			return ctx->classes[m->slots[i]];
	struct sched_class *c = sched_class_add(ctx, &key);
	m->slots[i] = c->id;
	if (++m->len * 2 > m->cap)
		sched_idmap_grow(m, (void *const *)ctx->classes, sched_class_hash_of);
	return c;
}

static void sched_idmap_grow(struct sched_idmap *m, void *const *items, uint64_t (*hash_of)(const void *))
{
	size_t old_cap = m->cap;
	int *old = m->slots;
	m->cap *= 2;
	m->slots = xmalloc(m->cap * sizeof *m->slots);
	memset(m->slots, 0xff, m->cap * sizeof *m->slots);
	for (size_t j = 0; j < old_cap; j++) {
		if (old[j] < 0)
			continue;
		size_t i = hash_of(items[old[j]]) & (m->cap - 1);
		while (m->slots[i] >= 0)
			i = (i + 1) & (m->cap - 1);
		m->slots[i] = old[j];
	}
	free(old);
}

/* ---- eligibility and fit, on state slots ---- */

static bool sched_slot_eligible(const struct sched_class *c, const struct sched_slot *s)
{
	if (s->vram < c->vram || (s->degraded && !c->short_work))
		return false;
	if (c->n_models == 0)
		return true;
	if (s->model < 64)
		return (c->model_mask >> s->model) & 1;
	for (int i = 0; i < c->n_models; i++)
		if (c->model_ids[i] == s->model)
			return true;
	return false;
}

static bool sched_side_fits(int64_t cpu_left, int64_t mem_left, const struct sched_class *c)
{
	return cpu_left >= c->cpu && mem_left >= c->mem;
}

/* Per-GPU need: a slot is usable by c only with at least this much free. */
static int sched_need(const struct sched_class *c) { return c->gpus > 0 ? c->milli : 0; }

/* ---- host states and groups ---- */

static bool sched_slot_less(const struct sched_slot *a, int ga, const struct sched_slot *b, int gb)
{
	if (a->model != b->model)
		return a->model < b->model;
	if (a->vram != b->vram)
		return a->vram < b->vram;
	if (a->free != b->free)
		return a->free < b->free;
	if (a->group != b->group)
		return a->group < b->group;
	if (a->degraded != b->degraded)
		return !a->degraded;
	return ga < gb;
}

static int64_t sched_left(int64_t cap, int64_t used)
{
	return cap > 0 ? (cap > used ? cap - used : 0) : SCHED_UNTRACKED;
}

/* Recomputes a host's state from the pool; slots sorted so equal hosts get
 * equal states, and hn->slot_gpu remembers which GPU each slot is. */
static void sched_host_state(struct sched_ctx *ctx, struct sched_hnode *hn, struct sched_state *st)
{
	const struct host *h = hn->host;
	memset(st, 0, sizeof *st);
	for (int j = 0; j < h->n_gpus && st->n < SCHED_MAX_SLOTS; j++) {
		const struct gpu *g = &h->gpus[j];
		if (!pool_gpu_schedulable(g))
			continue;
		struct sched_slot s = {
			.degraded = g->health == GPU_DEGRADED,
			.vram = g->vram_mb,
			.model = hn->gpu_model[j],
			.group = g->nvlink_group >= 0 ? g->nvlink_group : -1,
			.free = g->milli_alloc < TASK_MILLI_FULL ? TASK_MILLI_FULL - (g->milli_alloc > 0 ? g->milli_alloc : 0) : 0,
		};
		int i = st->n++; /* insertion sort: at most 16 slots */
		while (i > 0 && sched_slot_less(&s, j, &st->slot[i - 1], hn->slot_gpu[i - 1])) {
			st->slot[i] = st->slot[i - 1];
			hn->slot_gpu[i] = hn->slot_gpu[i - 1];
			i--;
		}
		st->slot[i] = s;
		hn->slot_gpu[i] = j;
		st->free_total += s.free;
	}
	st->cpu_left = sched_left(h->cpu_milli, h->cpu_milli_alloc);
	st->mem_left = sched_left(h->mem_mb, h->mem_mb_alloc);
	st->cpu_cap = h->cpu_milli;
	st->mem_cap = h->mem_mb;
}

static uint64_t sched_state_hash(const struct sched_state *st)
{
	uint64_t h = sched_mix(sched_mix(sched_mix(0, (uint64_t)st->n), (uint64_t)st->cpu_left), (uint64_t)st->mem_left);
	h = sched_mix(sched_mix(h, (uint64_t)st->cpu_cap), (uint64_t)st->mem_cap);
	for (int i = 0; i < st->n; i++) {
		const struct sched_slot *s = &st->slot[i];
		h = sched_mix(sched_mix(sched_mix(sched_mix(h, (uint64_t)s->vram), (uint64_t)s->model), (uint64_t)s->group),
			      (uint64_t)s->free + ((uint64_t)s->degraded << 32));
	}
	return h;
}

static bool sched_state_equal(const struct sched_state *a, const struct sched_state *b)
{
	if (a->n != b->n || a->cpu_left != b->cpu_left || a->mem_left != b->mem_left || a->cpu_cap != b->cpu_cap ||
	    a->mem_cap != b->mem_cap)
		return false;
	for (int i = 0; i < a->n; i++) {
		const struct sched_slot *x = &a->slot[i], *y = &b->slot[i];
		if (x->vram != y->vram || x->model != y->model || x->group != y->group || x->free != y->free ||
		    x->degraded != y->degraded)
			return false;
	}
	return true;
}

static uint64_t sched_group_hash_of(const void *g) { return ((const struct sched_group *)g)->hash; }

static struct sched_group *sched_group_new(struct sched_ctx *ctx, const struct sched_state *st, uint64_t hash)
{
	struct sched_group *g = xcalloc(1, sizeof *g);
	g->id = ctx->n_groups;
	g->hash = hash;
	g->st = *st;
	g->live_pos = -1;
	g->live_list = st->free_total > 0 ? SCHED_LIVE_GPU : SCHED_LIVE_NO_GPU;
	if (ctx->n_groups == ctx->cap_groups) {
		ctx->cap_groups = ctx->cap_groups ? ctx->cap_groups * 2 : 64;
		ctx->groups = xrealloc(ctx->groups, (size_t)ctx->cap_groups * sizeof *ctx->groups);
	}
	ctx->groups[ctx->n_groups++] = g;
	return g;
}

/* The group of a state, created on first sight. */
static struct sched_group *sched_group_of(struct sched_ctx *ctx, const struct sched_state *st)
{
	uint64_t hash = sched_state_hash(st);
	struct sched_idmap *m = &ctx->group_map;
	size_t mask = m->cap - 1, i = hash & mask;
	for (; m->slots[i] >= 0; i = (i + 1) & mask) {
		struct sched_group *g = ctx->groups[m->slots[i]];
		if (g->hash == hash && sched_state_equal(&g->st, st))
			return g;
	}
	struct sched_group *g = sched_group_new(ctx, st, hash);
	m->slots[i] = g->id;
	if (++m->len * 2 > m->cap)
		sched_idmap_grow(m, (void *const *)ctx->groups, sched_group_hash_of);
	return g;
}

static void sched_live_add(struct sched_ctx *ctx, struct sched_group *g)
{
	int l = g->live_list;
	if (ctx->n_live[l] == ctx->cap_live[l]) {
		ctx->cap_live[l] = ctx->cap_live[l] ? ctx->cap_live[l] * 2 : 64;
		ctx->live[l] = xrealloc(ctx->live[l], (size_t)ctx->cap_live[l] * sizeof *ctx->live[l]);
	}
	g->live_pos = ctx->n_live[l];
	ctx->live[l][ctx->n_live[l]++] = g;
}

static void sched_live_remove(struct sched_ctx *ctx, struct sched_group *g)
{
	int l = g->live_list;
	struct sched_group *last = ctx->live[l][--ctx->n_live[l]];
	last->live_pos = g->live_pos;
	ctx->live[l][g->live_pos] = last;
	g->live_pos = -1;
}

/* Keeps hosts sorted by position, descending, so the lowest is at the end. */
static void sched_group_join(struct sched_ctx *ctx, struct sched_group *g, struct sched_hnode *hn)
{
	if (g->n_hosts == g->cap_hosts) {
		g->cap_hosts = g->cap_hosts ? g->cap_hosts * 2 : 4;
		g->hosts = xrealloc(g->hosts, (size_t)g->cap_hosts * sizeof *g->hosts);
	}
	int i = g->n_hosts++;
	while (i > 0 && g->hosts[i - 1]->host->pos < hn->host->pos) {
		g->hosts[i] = g->hosts[i - 1];
		i--;
	}
	g->hosts[i] = hn;
	hn->group = g;
	if (g->live_pos < 0)
		sched_live_add(ctx, g);
	if (ctx->n_joined == ctx->cap_joined) {
		ctx->cap_joined = ctx->cap_joined ? ctx->cap_joined * 2 : 256;
		ctx->joined = xrealloc(ctx->joined, (size_t)ctx->cap_joined * sizeof *ctx->joined);
	}
	ctx->joined[ctx->n_joined++] = g;
}

static void sched_group_leave(struct sched_ctx *ctx, struct sched_hnode *hn)
{
	struct sched_group *g = hn->group;
	int i = g->n_hosts - 1;
	while (i >= 0 && g->hosts[i] != hn)
		i--;
	memmove(&g->hosts[i], &g->hosts[i + 1], (size_t)(g->n_hosts - i - 1) * sizeof *g->hosts);
	g->n_hosts--;
	hn->group = NULL;
	if (g->n_hosts == 0)
		sched_live_remove(ctx, g);
}

/* Puts a host in the group of its current state. */
static void sched_host_index(struct sched_ctx *ctx, struct sched_hnode *hn)
{
	struct sched_state st;
	sched_host_state(ctx, hn, &st);
	sched_group_join(ctx, sched_group_of(ctx, &st), hn);
}

/* ---- target shapes ---- */

static int sched_class_cmp_count(const void *a, const void *b)
{
	const struct sched_class *x = *(struct sched_class *const *)a, *y = *(struct sched_class *const *)b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->id - y->id;
}

static void sched_shapes_alloc(struct sched_ctx *ctx, int n)
{
	ctx->shapes = xcalloc((size_t)(n > 0 ? n : 1), sizeof *ctx->shapes);
	ctx->shape_w = xcalloc((size_t)(n > 0 ? n : 1), sizeof *ctx->shape_w);
	ctx->shape_core = xcalloc((size_t)(n > 0 ? n : 1), sizeof *ctx->shape_core);
}

/* FGD's target workload: the most frequent classes, covering 95 % of tasks. */
static void sched_shapes_learn(struct sched_ctx *ctx, size_t total)
{
	struct sched_class **by_count = xmalloc((size_t)(ctx->n_classes > 0 ? ctx->n_classes : 1) * sizeof *by_count);
	memcpy(by_count, ctx->classes, (size_t)ctx->n_classes * sizeof *by_count);
	qsort(by_count, (size_t)ctx->n_classes, sizeof *by_count, sched_class_cmp_count);
	sched_shapes_alloc(ctx, SCHED_MAX_SHAPES);
	size_t covered = 0;
	for (int i = 0; i < ctx->n_classes && ctx->n_shapes < SCHED_MAX_SHAPES; i++) {
		if (total > 0 && (double)covered >= SCHED_SHAPE_COVER * (double)total)
			break;
		ctx->shapes[ctx->n_shapes] = by_count[i];
		ctx->shape_core[ctx->n_shapes] = true; /* learned shapes are the core by construction */
		ctx->shape_w[ctx->n_shapes++] = total > 0 ? (double)by_count[i]->count / (double)total : 1.0;
		covered += by_count[i]->count;
	}
	free(by_count);
}

/* Free milli per (model, VRAM) kind of GPU over the hosts in the index. */
struct sched_gpu_kind {
	int model;
	int64_t vram;
	double free;
};

static int sched_gpu_kinds(const struct sched_ctx *ctx, struct sched_gpu_kind **out)
{
	struct sched_gpu_kind *kinds = NULL;
	int n = 0, cap = 0;
	for (int l = 0; l < SCHED_LIVE_COUNT; l++)
		for (int j = 0; j < ctx->n_live[l]; j++) {
			const struct sched_group *g = ctx->live[l][j];
			for (int k = 0; k < g->st.n; k++) {
				const struct sched_slot *s = &g->st.slot[k];
				int i = 0;
				while (i < n && (kinds[i].model != s->model || kinds[i].vram != s->vram))
					i++;
				if (i == n) {
					if (n == cap) {
						cap = cap ? cap * 2 : 8;
						kinds = xrealloc(kinds, (size_t)cap * sizeof *kinds);
					}
					kinds[n++] = (struct sched_gpu_kind){ s->model, s->vram, 0 };
				}
				kinds[i].free += (double)g->n_hosts * s->free;
			}
		}
	*out = kinds;
	return n;
}

/* FGD weighs a shape by how often it arrives, so every free milli counts the
 * same for it. But a shape pinned to a model (or a VRAM floor) can only use
 * the free milli of those GPUs: when they are few, each one is worth more to
 * it, and work that could run anywhere should leave them alone. So a shape's
 * weight is multiplied by (free milli of the pool) / (free milli it may use):
 * 1 for shapes that may use any GPU (a workload without pins is scored
 * exactly as FGD scores it), larger the scarcer its GPUs. Placing free-to-go
 * work on a GPU a scarce shape cannot use then lowers the weighted
 * fragmentation more than placing it on one that shape needs. Measured on
 * openb gpuspec10 (10 % of pods pinned), seeds 42..51: 94.39 -> 95.15
 * alloc %. A shape with nothing free that it may use keeps its plain weight:
 * no placement changes its share of the pool. Computed once per pass from
 * the index, so memoised scores stay valid. */
static void sched_shapes_weigh_scarcity(struct sched_ctx *ctx)
{
	if (ctx->cfg->policy != SCHED_POLICY_FRAG)
		return;
	struct sched_gpu_kind *kinds;
	int n_kinds = sched_gpu_kinds(ctx, &kinds);
	double pool_free = 0;
	for (int k = 0; k < n_kinds; k++)
		pool_free += kinds[k].free;
	for (int i = 0; i < ctx->n_shapes; i++) {
		const struct sched_class *s = ctx->shapes[i];
		double usable = 0;
		for (int k = 0; k < n_kinds; k++) {
			struct sched_slot probe = { .model = kinds[k].model, .vram = kinds[k].vram };
			if (sched_slot_eligible(s, &probe))
				usable += kinds[k].free;
		}
		if (s->gpus > 0 && usable > 0)
			ctx->shape_w[i] *= pool_free / usable;
	}
	free(kinds);
}

static int sched_weight_cmp_desc(const void *a, const void *b)
{
	const double *x = *(const double *const *)a, *y = *(const double *const *)b;
	if (*x != *y)
		return *x > *y ? -1 : 1;
	return x < y ? -1 : x > y; /* equal weights: the given order */
}

/* The core workload among given shapes: as FGD picks its target workload,
 * the heaviest shapes covering SCHED_SHAPE_COVER of the weight. A given list
 * may hold every shape of a trace, down to a handful of pods each; milli that
 * only such a rare shape could use will mostly never be used, so it is dead
 * milli all the same (see sched_frag_delta). Ties keep the given order. */
static void sched_shapes_mark_core(struct sched_ctx *ctx)
{
	int n = ctx->n_shapes;
	double **by_weight = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *by_weight);
	double total = 0, covered = 0;
	for (int i = 0; i < n; i++) {
		by_weight[i] = &ctx->shape_w[i];
		total += ctx->shape_w[i];
	}
	qsort(by_weight, (size_t)n, sizeof *by_weight, sched_weight_cmp_desc);
	for (int i = 0; i < n && covered < SCHED_SHAPE_COVER * total; i++) {
		ctx->shape_core[by_weight[i] - ctx->shape_w] = true;
		covered += *by_weight[i];
	}
	free(by_weight);
}

static void sched_shapes_given(struct sched_ctx *ctx, const struct sched_shape *shapes, size_t n)
{
	sched_shapes_alloc(ctx, (int)n);
	for (size_t i = 0; i < n; i++) {
		if (shapes[i].weight <= 0)
			continue;
		ctx->shapes[ctx->n_shapes] = sched_class_of(ctx, &shapes[i].res);
		ctx->shape_w[ctx->n_shapes++] = shapes[i].weight;
	}
	sched_shapes_mark_core(ctx);
}

/* ---- frag ---- */

static bool sched_slot_fits(const struct sched_class *s, const struct sched_slot *slot, int free)
{
	return sched_slot_eligible(s, slot) && free >= sched_need(s);
}

/* A state's slots cut into runs of one (model, VRAM). Slots are sorted by
 * free inside a run, so a shape's counters take one eligibility test and one
 * search per run: this is the inner loop of the frag score. */
struct sched_runs {
	int n;
	int start[SCHED_MAX_SLOTS + 1];
};

static void sched_runs_of(const struct sched_state *st, struct sched_runs *r)
{
	r->n = 0;
	for (int i = 0; i < st->n; i++)
		if (i == 0 || st->slot[i].model != st->slot[i - 1].model || st->slot[i].vram != st->slot[i - 1].vram)
			r->start[r->n++] = i;
	r->start[r->n] = st->n;
}

/* First slot in [lo, hi) with at least need free. */
static int sched_first_with(const struct sched_state *st, int lo, int hi, int need)
{
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (st->slot[mid].free >= need)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void sched_shape_stat(const struct sched_state *st, const struct sched_runs *runs, const struct sched_class *s,
			     struct sched_shape_stat *out)
{
	memset(out, 0, sizeof *out);
	int need = sched_need(s);
	for (int r = 0; r < runs->n; r++) {
		int lo = runs->start[r], hi = runs->start[r + 1];
		if (!sched_slot_eligible(s, &st->slot[lo]))
			continue;
		out->eligible |= (uint32_t)(((1ULL << hi) - 1) & ~((1ULL << lo) - 1));
		if (need > 0)
			for (int k = sched_first_with(st, lo, hi, need); k < hi; k++)
				out->units += st->slot[k].free / need;
	}
}

/* How many pods of s CPU or memory leave room for (no limit when the host
 * does not track it or s asks for none). */
static int64_t sched_side_room(int64_t left, int64_t per)
{
	return left == SCHED_UNTRACKED || per <= 0 ? INT64_MAX : left / per;
}

/* GPU milli of a state that shape s cannot use, even if only s arrived: all
 * of it but what the pods of s that still fit would take, where the GPUs
 * (whole free GPUs for gangs, free / need per GPU for shares), the CPU and
 * the memory each bound how many fit. FGD counts a GPU as usable for s when
 * s fits the host and the GPU has its need free; counting pods instead also
 * charges what s could never reach: GPUs beyond what the host's CPU or memory
 * can feed (8 free GPUs and cores for 2 pods of s), whole GPUs beyond the
 * last full gang, and the remainder a GPU keeps after its last share of s
 * (1000 free is 2 pods of 470 and 60 lost). Measured with the dead term
 * below; see sched_frag_delta for the figures. */
static int64_t sched_shape_frag(const struct sched_class *s, const struct sched_shape_stat *k, int64_t free_total,
				int64_t cpu_left, int64_t mem_left)
{
	if (s->gpus <= 0)
		return free_total;
	int64_t pods = k->units / s->gpus;
	int64_t cpu_room = sched_side_room(cpu_left, s->cpu), mem_room = sched_side_room(mem_left, s->mem);
	pods = cpu_room < pods ? cpu_room : pods;
	pods = mem_room < pods ? mem_room : pods;
	return free_total - pods * s->gpus * sched_need(s);
}

static const struct sched_shape_stat *sched_group_stats(struct sched_ctx *ctx, struct sched_group *g)
{
	if (!g->stats) {
		struct sched_runs runs;
		sched_runs_of(&g->st, &runs);
		g->stats = xcalloc((size_t)(ctx->n_shapes > 0 ? ctx->n_shapes : 1), sizeof *g->stats);
		for (int i = 0; i < ctx->n_shapes; i++)
			sched_shape_stat(&g->st, &runs, ctx->shapes[i], &g->stats[i]);
	}
	return g->stats;
}

/* Increase of the fragmentation when c takes the picked slots: the expected
 * increase, sum_s w_s * (after - before), plus the increase of the state's
 * dead milli, the least that any core GPU shape cannot use (milli no core
 * shape can use; the min is exact when one shape is the most accommodating
 * everywhere, as a small, cheap, unpinned one is).
 *
 * Why the second term: FGD weighs a shape by the chance that it is the next
 * pod, a one-step look. To it, a GPU that only the light-CPU half of the
 * work fits is half-fragmented already, so a pod that takes the host's last
 * CPU, or leaves a sliver smaller than any common shape, looks cheap there:
 * the heavy half loses nothing. But milli that no shape can use is never
 * allocated again (until work ends), while milli some shape can use fills
 * up as more work arrives; the dead term charges that permanent loss at full
 * weight. Measured on openb, seeds 42..51 (alloc % at 100 % arrived),
 * before -> pod counting (sched_shape_frag) with the dead term: default
 * 95.22 -> 95.54, gpushare40 93.91 -> 94.00, multigpu50 97.27 -> 97.37,
 * gpuspec10 95.15 -> 95.66. Each alone is not enough: the dead term over
 * FGD's counting gave 95.38, 94.02, 97.52, 95.06 (gpuspec10 down); pod
 * counting alone, on 5 seeds, lost 0.2-0.4 on default and gpushare40. Over
 * every shape instead of the core ones, a rare 50-milli shape keeps
 * 190-milli slivers "alive": multigpu50 97.20. */
static double sched_frag_delta(struct sched_ctx *ctx, struct sched_group *g, const struct sched_class *c,
			       const struct sched_pick *pick)
{
	const struct sched_state *st = &g->st;
	const struct sched_shape_stat *stats = sched_group_stats(ctx, g);
	int64_t cpu_after = st->cpu_left == SCHED_UNTRACKED ? st->cpu_left : st->cpu_left - c->cpu;
	int64_t mem_after = st->mem_left == SCHED_UNTRACKED ? st->mem_left : st->mem_left - c->mem;
	int64_t free_after = st->free_total - (int64_t)pick->n * c->milli;
	double delta = 0;
	int64_t dead_before = INT64_MAX, dead_after = INT64_MAX;
	for (int i = 0; i < ctx->n_shapes; i++) {
		const struct sched_class *s = ctx->shapes[i];
		struct sched_shape_stat after = stats[i];
		int need = sched_need(s);
		for (int j = 0; j < pick->n && need > 0; j++) {
			if (!((after.eligible >> pick->slot[j]) & 1))
				continue;
			int f0 = st->slot[pick->slot[j]].free, f1 = f0 - c->milli;
			after.units += f1 / need - f0 / need;
		}
		int64_t before_f = sched_shape_frag(s, &stats[i], st->free_total, st->cpu_left, st->mem_left);
		int64_t after_f = sched_shape_frag(s, &after, free_after, cpu_after, mem_after);
		delta += ctx->shape_w[i] * (double)(after_f - before_f);
		if (ctx->shape_core[i] && s->gpus > 0) {
			dead_before = before_f < dead_before ? before_f : dead_before;
			dead_after = after_f < dead_after ? after_f : dead_after;
		}
	}
	if (dead_before != INT64_MAX)
		delta += (double)(dead_after - dead_before);
	return delta;
}

/* ---- picking slots inside one state ---- */

/* Best fit's host score: the share of the host left free after placing
 * (GPU and CPU averaged when the host tracks CPU, as in the openb BestFit). */
static double sched_bestfit_left(const struct sched_state *st, const struct sched_class *c, const struct sched_pick *pick)
{
	double gpu_cap = (double)st->n * TASK_MILLI_FULL;
	double gpu_left = gpu_cap > 0 ? (double)(st->free_total - (int64_t)pick->n * c->milli) / gpu_cap : 0;
	if (st->cpu_left == SCHED_UNTRACKED || st->cpu_cap <= 0)
		return gpu_left;
	return 0.5 * gpu_left + 0.5 * (double)(st->cpu_left - c->cpu) / (double)st->cpu_cap;
}

/* Number of fully free, eligible slots in NVLink group grp. */
static int sched_group_free_count(const struct sched_state *st, const struct sched_class *c, int grp)
{
	int n = 0;
	for (int i = 0; i < st->n; i++)
		n += st->slot[i].group == grp && st->slot[i].free == TASK_MILLI_FULL && sched_slot_eligible(c, &st->slot[i]);
	return n;
}

/* Whole GPUs: the NVLink group with the fewest free GPUs that still holds the
 * whole gang (keeps bigger groups whole for bigger gangs); unknown-group GPUs
 * count as groups of one. With no such group, the gang spans groups, taken
 * from the fullest groups first; *split says so. */
static bool sched_pick_whole_nvlink(const struct sched_state *st, const struct sched_class *c, struct sched_pick *pick,
				    bool *split)
{
	int count[SCHED_MAX_SLOTS], n_free = 0, best = -1;
	for (int i = 0; i < st->n; i++) {
		const struct sched_slot *s = &st->slot[i];
		count[i] = 0;
		if (s->free != TASK_MILLI_FULL || !sched_slot_eligible(c, s))
			continue;
		n_free++;
		count[i] = s->group < 0 ? 1 : sched_group_free_count(st, c, s->group);
		if (count[i] >= c->gpus && (best < 0 || count[i] < count[best]))
			best = i;
	}
	if (n_free < c->gpus)
		return false;
	pick->n = 0;
	*split = best < 0;
	if (best >= 0) {
		for (int i = 0; i < st->n && pick->n < c->gpus; i++)
			if (count[i] > 0 && (i == best || (st->slot[best].group >= 0 && st->slot[i].group == st->slot[best].group)))
				pick->slot[pick->n++] = i;
		return true;
	}
	for (int want = SCHED_MAX_SLOTS; want >= 1 && pick->n < c->gpus; want--)
		for (int i = 0; i < st->n && pick->n < c->gpus; i++)
			if (count[i] == want)
				pick->slot[pick->n++] = i;
	return true;
}

/* Whole GPUs, no topology: the first eligible free slots. */
static bool sched_pick_whole_first(const struct sched_state *st, const struct sched_class *c, struct sched_pick *pick)
{
	pick->n = 0;
	for (int i = 0; i < st->n && pick->n < c->gpus; i++)
		if (st->slot[i].free == TASK_MILLI_FULL && sched_slot_eligible(c, &st->slot[i]))
			pick->slot[pick->n++] = i;
	return pick->n == c->gpus;
}

static bool sched_score_less(const struct sched_score *a, const struct sched_score *b)
{
	for (int i = 0; i < 3; i++)
		if (a->k[i] != b->k[i])
			return a->k[i] < b->k[i];
	return false;
}

/* FGD's score of a fragmentation increase: int(100 * sigmoid(-delta/1000)),
 * negated so that less is better. The rounding is part of the policy, not a
 * detail: increases within a few tens of milli (about 40 near zero, wider
 * further out) are noise next to the packing that the next key (best fit)
 * and then host order add, and letting those decide them packs tighter.
 * Measured on openb seed 42 against the raw float: default 94.65 -> 95.15,
 * gpushare40 93.35 -> 93.85 alloc %, multigpu50 and gpuspec10 a little up.
 * The 1000 assumes shape weights are shares (summing to about 1), so that
 * delta is in GPU milli; the scarcity factor (sched_shapes_weigh_scarcity)
 * is 1 for every shape that may use any GPU, so it leaves that as it is for
 * workloads without pins. */
static double sched_frag_quantize(double delta)
{
	return -floor(100.0 / (1.0 + exp(delta / 1000.0)));
}

static struct sched_score sched_score_of(struct sched_ctx *ctx, struct sched_group *g, const struct sched_class *c,
					 const struct sched_pick *pick, bool split)
{
	struct sched_score s = { { 0, 0, 0 } };
	double left = sched_bestfit_left(&g->st, c, pick);
	if (ctx->cfg->policy == SCHED_POLICY_BESTFIT) {
		s.k[0] = left;
	} else {
		s.k[0] = split ? 1 : 0;
		s.k[1] = sched_frag_quantize(sched_frag_delta(ctx, g, c, pick));
		s.k[2] = left;
	}
	return s;
}

/* A share of one GPU: frag tries each distinct slot that fits; best fit
 * takes the one with the least free that fits. */
static bool sched_pick_share(struct sched_ctx *ctx, struct sched_group *g, const struct sched_class *c,
			     struct sched_pick *pick, struct sched_score *score)
{
	const struct sched_state *st = &g->st;
	bool found = false;
	for (int i = 0; i < st->n; i++) {
		const struct sched_slot *s = &st->slot[i];
		if (!sched_slot_fits(c, s, s->free))
			continue;
		if (i > 0 && st->slot[i - 1].model == s->model && st->slot[i - 1].vram == s->vram &&
		    st->slot[i - 1].free == s->free)
			continue; /* same as the slot before: same score */
		struct sched_pick cand = { 1, { i } };
		struct sched_score sc = sched_score_of(ctx, g, c, &cand, false);
		if (!found || sched_score_less(&sc, score)) {
			*pick = cand;
			*score = sc;
			found = true;
		}
	}
	return found;
}

/* Whether c fits state g, and if so which slots it takes and the score. */
static bool sched_eval(struct sched_ctx *ctx, struct sched_group *g, const struct sched_class *c,
		       struct sched_pick *pick, struct sched_score *score)
{
	if (!sched_side_fits(g->st.cpu_left, g->st.mem_left, c))
		return false;
	pick->n = 0;
	if (c->gpus == 0) {
		*score = sched_score_of(ctx, g, c, pick, false);
		return true;
	}
	if (c->gpus == 1 && c->milli < TASK_MILLI_FULL)
		return sched_pick_share(ctx, g, c, pick, score);
	bool split = false;
	bool ok = ctx->cfg->policy == SCHED_POLICY_FRAG ? sched_pick_whole_nvlink(&g->st, c, pick, &split)
							: sched_pick_whole_first(&g->st, c, pick);
	if (ok)
		*score = sched_score_of(ctx, g, c, pick, split);
	return ok;
}

/* The memo of c for group gid, grown to cover every group so far; NULL for a
 * class seen once (nothing to reuse) or when the pass's budget is spent. */
static struct sched_memo *sched_memo_of(struct sched_ctx *ctx, struct sched_class *c, int gid)
{
	if (gid < c->memo_cap)
		return &c->memo[gid];
	if (c->count < 2)
		return NULL;
	int cap = c->memo_cap ? c->memo_cap : 64;
	while (cap <= gid || cap < ctx->n_groups)
		cap *= 2;
	if (ctx->memo_used + (size_t)(cap - c->memo_cap) > SCHED_MEMO_BUDGET)
		return NULL;
	ctx->memo_used += (size_t)(cap - c->memo_cap);
	c->memo = xrealloc(c->memo, (size_t)cap * sizeof *c->memo);
	memset(&c->memo[c->memo_cap], 0, (size_t)(cap - c->memo_cap) * sizeof *c->memo);
	c->memo_cap = cap;
	return &c->memo[gid];
}

/* sched_eval through the memo (scores only; the winner is re-picked). */
static bool sched_eval_memo(struct sched_ctx *ctx, struct sched_group *g, struct sched_class *c,
			    struct sched_score *score)
{
	struct sched_memo *m = sched_memo_of(ctx, c, g->id);
	struct sched_pick pick;
	if (!m)
		return sched_eval(ctx, g, c, &pick, score);
	if (!m->known) {
		m->known = true;
		m->fits = sched_eval(ctx, g, c, &pick, &m->score);
	}
	*score = m->score;
	return m->fits;
}

/* Candidate order: score, then the group seen first (at the start of a pass
 * groups are made in host order, so ties go to the lower host). */
static bool sched_cand_before(const struct sched_cand *a, const struct sched_cand *b)
{
	if (sched_score_less(&a->score, &b->score))
		return true;
	if (sched_score_less(&b->score, &a->score))
		return false;
	return a->group->id < b->group->id;
}

static void sched_cand_sift_down(struct sched_cand *h, int n, int i)
{
	struct sched_cand item = h[i];
	for (int child; (child = 2 * i + 1) < n; i = child) {
		if (child + 1 < n && sched_cand_before(&h[child + 1], &h[child]))
			child++;
		if (!sched_cand_before(&h[child], &item))
			break;
		h[i] = h[child];
	}
	h[i] = item;
}

static void sched_cand_sift_up(struct sched_cand *h, int i)
{
	struct sched_cand item = h[i];
	for (; i > 0 && sched_cand_before(&item, &h[(i - 1) / 2]); i = (i - 1) / 2)
		h[i] = h[(i - 1) / 2];
	h[i] = item;
}

/* Adds g to c's candidates if c fits it; heap order is restored by the caller
 * (sift_up) or in bulk (heapify). */
static bool sched_cand_add(struct sched_ctx *ctx, struct sched_class *c, struct sched_group *g)
{
	struct sched_score sc;
	if (g->n_hosts == 0 || !sched_eval_memo(ctx, g, c, &sc))
		return false;
	if (c->n_cands == c->cap_cands) {
		c->cap_cands = c->cap_cands ? c->cap_cands * 2 : 16;
		c->cands = xrealloc(c->cands, (size_t)c->cap_cands * sizeof *c->cands);
	}
	c->cands[c->n_cands++] = (struct sched_cand){ sc, g };
	return true;
}

static void sched_cand_pop(struct sched_class *c)
{
	c->cands[0] = c->cands[--c->n_cands];
	sched_cand_sift_down(c->cands, c->n_cands, 0);
}

/* The best host for c, or NULL. Scanning every live group per task would cost
 * O(states) each time; instead each class keeps a heap of the groups it fits.
 * Scores of a state never change, and a group can only get better for a class
 * by gaining hosts, so after the first search a class looks only at the groups
 * hosts joined since (ctx->joined); groups that emptied are dropped lazily when
 * they reach the top. */
static struct sched_hnode *sched_choose(struct sched_ctx *ctx, struct sched_class *c)
{
	if (!c->searched) {
		for (int l = c->gpus > 0 ? SCHED_LIVE_GPU : SCHED_LIVE_NO_GPU; l < SCHED_LIVE_COUNT; l++)
			for (int i = 0; i < ctx->n_live[l]; i++)
				sched_cand_add(ctx, c, ctx->live[l][i]);
		for (int i = c->n_cands / 2; i-- > 0;)
			sched_cand_sift_down(c->cands, c->n_cands, i);
		c->searched = true;
	} else {
		for (int i = c->log_pos; i < ctx->n_joined; i++)
			if (sched_cand_add(ctx, c, ctx->joined[i]))
				sched_cand_sift_up(c->cands, c->n_cands - 1);
	}
	c->log_pos = ctx->n_joined;
	while (c->n_cands > 0 && c->cands[0].group->n_hosts == 0)
		sched_cand_pop(c);
	if (c->n_cands == 0)
		return NULL;
	struct sched_group *g = c->cands[0].group;
	return g->hosts[g->n_hosts - 1];
}

static void sched_placement_of(const struct sched_hnode *hn, const struct sched_class *c, const struct sched_pick *pick,
			       struct placement *out)
{
	memset(out, 0, sizeof *out);
	out->host = hn->host;
	out->n = pick->n;
	out->milli = c->milli;
	for (int i = 0; i < pick->n; i++)
		out->gpu_idx[i] = hn->slot_gpu[pick->slot[i]];
}

/* Chooses a host and the GPUs on it; false when nothing fits. */
static bool sched_find(struct sched_ctx *ctx, struct sched_class *c, struct placement *out)
{
	struct sched_hnode *hn = sched_choose(ctx, c);
	if (!hn)
		return false;
	struct sched_pick pick;
	struct sched_score score;
	if (!sched_eval(ctx, hn->group, c, &pick, &score))
		return false;
	sched_placement_of(hn, c, &pick, out);
	return true;
}

/* ---- reservation ---- */

/* How ready a host is for c: fully free eligible GPUs (gangs) or the most
 * free on one eligible GPU (shares), then all free milli on eligible GPUs.
 * -1 when the host could never take c, even empty. */
static int64_t sched_readiness(const struct sched_hnode *hn, const struct sched_class *c, const struct sched_state *st)
{
	const struct host *h = hn->host;
	if ((h->cpu_milli > 0 && h->cpu_milli < c->cpu) || (h->mem_mb > 0 && h->mem_mb < c->mem))
		return -1;
	int eligible = 0, whole = 0, best_free = 0;
	int64_t free_sum = 0;
	for (int i = 0; i < st->n; i++) {
		const struct sched_slot *s = &st->slot[i];
		if (!sched_slot_eligible(c, s))
			continue;
		eligible++;
		whole += s->free == TASK_MILLI_FULL;
		best_free = s->free > best_free ? s->free : best_free;
		free_sum += s->free;
	}
	if (eligible < c->gpus)
		return -1;
	int64_t ready = c->milli < TASK_MILLI_FULL ? best_free : whole;
	return ready * 1000000 + free_sum;
}

/* Takes the most ready host out of the index for a blocked task. */
static void sched_reserve(struct sched_ctx *ctx, const struct sched_class *c)
{
	struct sched_hnode *best = NULL;
	int64_t best_ready = -1;
	for (int i = 0; i < ctx->pool->n_hosts; i++) {
		struct sched_hnode *hn = &ctx->hnodes[i];
		if (!hn->group)
			continue;
		int64_t ready = sched_readiness(hn, c, &hn->group->st);
		if (ready > best_ready) {
			best = hn;
			best_ready = ready;
		}
	}
	if (!best)
		return;
	sched_group_leave(ctx, best);
	ctx->n_reserved++;
}

/* The task is read last: most blocked tasks are turned away before that. */
static bool sched_should_reserve(const struct sched_ctx *ctx, const struct task *t, const struct sched_class *c,
				 int64_t now_ms)
{
	const struct sched_config *cfg = ctx->cfg;
	return c->gpus > 0 && cfg->reserve_after_ms >= 0 && ctx->n_reserved < cfg->max_reservations &&
	       now_ms - t->queued_ms >= cfg->reserve_after_ms;
}

/* ---- context ---- */

static struct sched_ctx *sched_ctx_new(struct pool *p, const struct sched_config *cfg)
{
	struct sched_ctx *ctx = xcalloc(1, sizeof *ctx);
	ctx->pool = p;
	ctx->cfg = cfg;
	sched_idmap_init(&ctx->class_map);
	sched_idmap_init(&ctx->group_map);
	/* Models first, so classes can map their model names to ids. */
	size_t n_gpus = 0;
	for (int i = 0; i < p->n_hosts; i++)
		n_gpus += (size_t)p->hosts[i]->n_gpus;
	ctx->gpu_models = xmalloc((n_gpus > 0 ? n_gpus : 1) * sizeof *ctx->gpu_models);
	n_gpus = 0;
	for (int i = 0; i < p->n_hosts; i++)
		for (int j = 0; j < p->hosts[i]->n_gpus; j++)
			ctx->gpu_models[n_gpus++] = sched_model_id(ctx, p->hosts[i]->gpus[j].model, true);
	return ctx;
}

static void sched_ctx_index_hosts(struct sched_ctx *ctx)
{
	struct pool *p = ctx->pool;
	ctx->hnodes = xcalloc((size_t)(p->n_hosts > 0 ? p->n_hosts : 1), sizeof *ctx->hnodes);
	const int *models = ctx->gpu_models;
	for (int i = 0; i < p->n_hosts; i++) {
		ctx->hnodes[i].host = p->hosts[i];
		ctx->hnodes[i].gpu_model = models;
		models += p->hosts[i]->n_gpus;
		if (p->hosts[i]->online)
			sched_host_index(ctx, &ctx->hnodes[i]);
	}
}

static void sched_ctx_free(struct sched_ctx *ctx)
{
	for (int i = 0; i < ctx->n_classes; i++) {
		free(ctx->classes[i]->model_ids);
		free(ctx->classes[i]->memo);
		free(ctx->classes[i]->cands);
		free(ctx->classes[i]);
	}
	for (int i = 0; i < ctx->n_groups; i++) {
		free(ctx->groups[i]->hosts);
		free(ctx->groups[i]->stats);
		free(ctx->groups[i]);
	}
	for (int l = 0; l < SCHED_LIVE_COUNT; l++)
		free(ctx->live[l]);
	free(ctx->classes);
	free(ctx->class_map.slots);
	free(ctx->groups);
	free(ctx->group_map.slots);
	free(ctx->shapes);
	free(ctx->shape_w);
	free(ctx->shape_core);
	free(ctx->models);
	free(ctx->hnodes);
	free(ctx->joined);
	free(ctx->gpu_models);
	free(ctx);
}

static bool sched_resources_valid(const struct task_resources *r)
{
	return r->gpus >= 0 && r->gpus <= TASK_MAX_GPUS && (r->gpus != 1 || r->milli <= TASK_MILLI_FULL);
}

bool sched_place(struct pool *p, const struct task_resources *r, const struct sched_config *c, struct placement *out)
{
	if (!sched_resources_valid(r))
		return false;
	struct sched_ctx *ctx = sched_ctx_new(p, c);
	struct sched_class *cls = sched_class_of(ctx, r);
	cls->count = 1;
	if (c->shapes && c->n_shapes > 0)
		sched_shapes_given(ctx, c->shapes, c->n_shapes);
	else
		sched_shapes_learn(ctx, 1);
	sched_ctx_index_hosts(ctx);
	sched_shapes_weigh_scarcity(ctx);
	bool ok = sched_find(ctx, cls, out);
	sched_ctx_free(ctx);
	return ok;
}

/* After an allocation the host has a new state: move it to that group. */
static void sched_host_changed(struct sched_ctx *ctx, struct sched_hnode *hn)
{
	sched_group_leave(ctx, hn);
	sched_host_index(ctx, hn);
}

/* What the pass reads of a task. Gathered in one tight loop first: tasks are
 * big and scattered, and a loop that does nothing but copy lets the CPU have
 * many of those cache misses in flight at once, where the classifying loop
 * would take them one at a time. */
struct sched_req {
	struct task_resources res;
	struct sched_class *cls; /* NULL: invalid request, skipped */
};

static struct sched_req *sched_gather(struct task *const *ordered, size_t n)
{
	struct sched_req *req = xmalloc((n > 0 ? n : 1) * sizeof *req);
	for (size_t i = 0; i < n; i++)
		req[i].res = ordered[i]->res;
	return req;
}

/* Classes of the requests, counted for the learned shapes; returns how many
 * requests are valid. */
static size_t sched_classify(struct sched_ctx *ctx, struct sched_req *req, size_t n)
{
	size_t valid = 0;
	for (size_t i = 0; i < n; i++) {
		req[i].cls = NULL;
		if (!sched_resources_valid(&req[i].res))
			continue;
		req[i].cls = sched_class_of(ctx, &req[i].res);
		req[i].cls->count++;
		valid++;
	}
	return valid;
}

size_t sched_pass(struct pool *p, struct task *const *ordered, size_t n, const struct sched_config *c,
		  int64_t now_ms, struct sched_decision *out)
{
	return sched_pass_info(p, ordered, n, c, now_ms, out, NULL);
}

size_t sched_pass_info(struct pool *p, struct task *const *ordered, size_t n, const struct sched_config *c,
		       int64_t now_ms, struct sched_decision *out, struct sched_pass_info *info)
{
	struct sched_ctx *ctx = sched_ctx_new(p, c);
	struct sched_req *req = sched_gather(ordered, n);
	size_t valid = sched_classify(ctx, req, n);
	if (c->shapes && c->n_shapes > 0)
		sched_shapes_given(ctx, c->shapes, c->n_shapes);
	else
		sched_shapes_learn(ctx, valid);
	sched_ctx_index_hosts(ctx);
	sched_shapes_weigh_scarcity(ctx);
	size_t placed = 0;
	for (size_t i = 0; i < n; i++) {
		struct sched_class *cls = req[i].cls;
		if (!cls)
			continue;
		struct placement pl;
		if (!cls->infeasible && sched_find(ctx, cls, &pl) && pool_alloc(p, &pl, &req[i].res) == 0) {
			out[placed++] = (struct sched_decision){ .task = ordered[i], .pl = pl };
			sched_host_changed(ctx, &ctx->hnodes[pl.host->pos]);
			continue;
		}
		cls->infeasible = true;
		if (sched_should_reserve(ctx, ordered[i], cls, now_ms))
			sched_reserve(ctx, cls);
	}
	if (info)
		info->reserved_hosts = ctx->n_reserved;
	free(req);
	sched_ctx_free(ctx);
	return placed;
}
