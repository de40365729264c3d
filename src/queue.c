/* queue.c — pending tasks and the order they should be tried in.
 *
 * Layout, and why:
 *   - Tasks are grouped by (client, base priority), base = priority +
 *     category boost. Inside a group every task ages at the same rate, so the
 *     oldest task always has the highest effective priority: a group kept
 *     sorted by (queued_ms, seq) is already in the order the rule wants, and
 *     its head is its best task. Tasks arrive in time order, so keeping the
 *     group sorted is an append; a requeued task re-enters as of its requeue
 *     time, which needs a binary search and a rare memmove.
 *   - queue_order is a k-way merge of the group heads, in two levels: each
 *     client's groups in a heap by their next task, and the clients in a heap
 *     by (effective priority desc, virtual use asc, queued_ms, seq). A
 *     client's virtual use starts at the GPU milli it holds (queue_charge)
 *     and grows by the demand of each of its tasks written out, so among
 *     equal priority the clients take turns weighted by what they hold and
 *     what is already ahead of them: client A's 10,000 tasks cannot starve
 *     client B's one. Cost: O(G + max log G) for G groups, never a sort of
 *     all n tasks.
 *   - Deadlines (max_wait_ms) sit in a second heap, so queue_take_expired
 *     touches only the tasks that expire.
 * Removed tasks leave holes in their group; a group compacts itself when the
 * holes outnumber its live tasks, so removal is O(1) amortised. */
#include "queue.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "strmap.h"
#include "util.h"

#define QUEUE_NO_POS SIZE_MAX

struct queue_group;

/* task->queue_slot points here. */
struct queue_entry {
	struct task *task;
	struct queue *q;
	struct queue_group *group;
	size_t idx;          /* position in group->items */
	size_t deadline_pos; /* position in q->deadlines, QUEUE_NO_POS when none */
	enum task_category category;
};

/* Sort keys stay in a hole, so binary search still works over holes. The
 * task pointer and its demand sit here too, so queue_order walks contiguous
 * arrays and never touches a task or its entry (at 100,000 tasks, chasing
 * pointers is what costs: each is a cache miss). 32 bytes: two per line. */
struct queue_item {
	int64_t queued_ms;
	uint64_t seq;
	struct task *task; /* NULL: a hole left by a removal */
	int64_t demand;    /* GPU milli, for the fair-share books */
};

struct queue_client;

/* One client's tasks at one base priority, oldest first. */
struct queue_group {
	struct queue_client *client;
	int64_t base;
	struct queue_item *items; /* live range [head, end) */
	size_t head, end, cap;
	size_t live;
	size_t active_pos; /* in q->active, QUEUE_NO_POS when empty */
	/* queue_order scratch: the next item and the key it gives */
	size_t cursor;
	int64_t key_eff, key_qms;
	uint64_t key_seq;
};

/* Binary heap of pointers; `moved` (optional) tracks positions so an item can
 * be removed from the middle. */
struct queue_heap {
	void **items;
	size_t len, cap;
	bool (*before)(const void *a, const void *b);
	void (*moved)(void *item, size_t pos);
};

struct queue_client {
	char name[TASK_CLIENT_MAX];
	int64_t charged; /* GPU milli in use (queue_charge) */
	struct queue_group **groups;
	int n_groups, cap_groups;
	/* queue_order scratch: charged + demand already written out, the
	 * client's groups by their next task, and the key of the best one */
	int64_t virt;
	struct queue_heap heads;
	uint64_t stamp;
	int64_t key_eff, key_qms;
	uint64_t key_seq;
};

struct queue {
	struct queue_config cfg;
	struct strmap clients;         /* name -> struct queue_client */
	struct queue_group **active;   /* groups with live tasks */
	size_t n_active, cap_active;
	struct queue_heap deadlines;   /* entries with max_wait_ms > 0 */
	struct queue_heap merge;       /* queue_order scratch: clients by their best task */
	uint64_t stamp;                /* queue_order calls, to reset client scratch once */
	size_t len;
	size_t len_cat[TASK_CAT_COUNT];
};

/* ---- heap ---- */

static void queue_heap_set(struct queue_heap *h, size_t pos, void *item)
{
	h->items[pos] = item;
	if (h->moved)
		h->moved(item, pos);
}

static void queue_heap_sift_up(struct queue_heap *h, size_t pos)
{
	void *item = h->items[pos];
	while (pos > 0) {
		size_t parent = (pos - 1) / 2;
		if (!h->before(item, h->items[parent]))
			break;
		queue_heap_set(h, pos, h->items[parent]);
		pos = parent;
	}
	queue_heap_set(h, pos, item);
}

static void queue_heap_sift_down(struct queue_heap *h, size_t pos)
{
	void *item = h->items[pos];
	for (;;) {
		size_t child = 2 * pos + 1;
		if (child >= h->len)
			break;
		if (child + 1 < h->len && h->before(h->items[child + 1], h->items[child]))
			child++;
		if (!h->before(h->items[child], item))
			break;
		queue_heap_set(h, pos, h->items[child]);
		pos = child;
	}
	queue_heap_set(h, pos, item);
}

static void queue_heap_reserve(struct queue_heap *h, size_t n)
{
	if (n <= h->cap)
		return;
	h->cap = n > 2 * h->cap ? n : 2 * h->cap;
	h->items = xrealloc(h->items, h->cap * sizeof *h->items);
}

static void queue_heap_push(struct queue_heap *h, void *item)
{
	queue_heap_reserve(h, h->len + 1);
	h->items[h->len++] = item;
	queue_heap_sift_up(h, h->len - 1);
}

static void queue_heap_remove_at(struct queue_heap *h, size_t pos)
{
	void *last = h->items[--h->len];
	if (pos == h->len)
		return;
	queue_heap_set(h, pos, last);
	if (pos > 0 && h->before(last, h->items[(pos - 1) / 2]))
		queue_heap_sift_up(h, pos);
	else
		queue_heap_sift_down(h, pos);
}

/* Floyd's bottom-up build: O(n) for the items already in place. */
static void queue_heap_heapify(struct queue_heap *h)
{
	for (size_t i = h->len / 2; i-- > 0;)
		queue_heap_sift_down(h, i);
}

/* ---- deadlines ---- */

static int64_t queue_deadline(const struct queue_entry *e)
{
	return e->task->queued_ms + e->task->max_wait_ms;
}

static bool queue_deadline_before(const void *a, const void *b)
{
	const struct queue_entry *x = a, *y = b;
	int64_t dx = queue_deadline(x), dy = queue_deadline(y);
	return dx != dy ? dx < dy : x->task->seq < y->task->seq;
}

static void queue_deadline_moved(void *item, size_t pos)
{
	((struct queue_entry *)item)->deadline_pos = pos;
}

/* ---- clients ---- */

static bool queue_group_before(const void *a, const void *b);

/* Clients are never removed: a node sees a bounded set of them. */
static struct queue_client *queue_client_get(struct queue *q, const char *name)
{
	struct queue_client *c = strmap_get(&q->clients, name);
	if (!c) {
		c = xcalloc(1, sizeof *c);
		str_copy(c->name, sizeof c->name, name);
		c->heads.before = queue_group_before;
		strmap_put(&q->clients, c->name, c);
	}
	return c;
}

static struct queue_group *queue_group_get(struct queue_client *c, int64_t base)
{
	for (int i = 0; i < c->n_groups; i++)
		if (c->groups[i]->base == base)
			return c->groups[i];
	if (c->n_groups == c->cap_groups) {
		c->cap_groups = c->cap_groups ? c->cap_groups * 2 : 4;
		c->groups = xrealloc(c->groups, (size_t)c->cap_groups * sizeof *c->groups);
	}
	struct queue_group *g = xcalloc(1, sizeof *g);
	g->client = c;
	g->base = base;
	g->active_pos = QUEUE_NO_POS;
	c->groups[c->n_groups++] = g;
	return g;
}

/* ---- groups ---- */

/* GPU milli a task asks for; at least 1 so a CPU-only task still counts as
 * one task ahead of its client. */
static int64_t queue_task_demand(const struct task *t)
{
	int64_t d = (int64_t)pool_task_milli(&t->res) * (t->res.gpus > 0 ? t->res.gpus : 0);
	return d > 0 ? d : 1;
}


static bool queue_item_before(int64_t qms, uint64_t seq, const struct queue_item *it)
{
	return qms != it->queued_ms ? qms < it->queued_ms : seq < it->seq;
}

static void queue_group_place(struct queue_group *g, size_t i, struct queue_item it)
{
	g->items[i] = it;
	if (it.task)
		((struct queue_entry *)it.task->queue_slot)->idx = i; /* moves are rare: compaction, requeue */
}

/* Drops the holes; keeps order. */
static void queue_group_compact(struct queue_group *g)
{
	size_t w = 0;
	for (size_t i = g->head; i < g->end; i++)
		if (g->items[i].task)
			queue_group_place(g, w++, g->items[i]);
	g->head = 0;
	g->end = w;
}

static void queue_group_make_room(struct queue_group *g)
{
	if (g->end < g->cap)
		return;
	if (g->end - g->head - g->live > g->live)
		queue_group_compact(g);
	if (g->end == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 8;
		g->items = xrealloc(g->items, g->cap * sizeof *g->items);
	}
}

/* First index in [head, end) whose key is after (qms, seq). */
static size_t queue_group_upper_bound(const struct queue_group *g, int64_t qms, uint64_t seq)
{
	size_t lo = g->head, hi = g->end;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (queue_item_before(qms, seq, &g->items[mid]))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void queue_group_insert(struct queue_group *g, struct queue_entry *e)
{
	struct queue_item it = { e->task->queued_ms, e->task->seq, e->task, queue_task_demand(e->task) };
	if (g->head > 0 && g->head < g->end && queue_item_before(it.queued_ms, it.seq, &g->items[g->head])) {
		queue_group_place(g, --g->head, it); /* an old task back in front */
	} else {
		queue_group_make_room(g);
		size_t pos = queue_group_upper_bound(g, it.queued_ms, it.seq);
		for (size_t i = g->end; i > pos; i--)
			queue_group_place(g, i, g->items[i - 1]);
		queue_group_place(g, pos, it);
		g->end++;
	}
	g->live++;
	e->group = g;
}

static void queue_group_skip_holes(struct queue_group *g)
{
	while (g->head < g->end && !g->items[g->head].task)
		g->head++;
	while (g->end > g->head && !g->items[g->end - 1].task)
		g->end--;
}

static void queue_group_erase(struct queue_group *g, struct queue_entry *e)
{
	g->items[e->idx].task = NULL;
	g->live--;
	queue_group_skip_holes(g);
	if (g->live == 0)
		g->head = g->end = 0;
	else if (g->end - g->head - g->live > g->live + 16)
		queue_group_compact(g);
}

static void queue_activate(struct queue *q, struct queue_group *g)
{
	if (g->active_pos != QUEUE_NO_POS)
		return;
	if (q->n_active == q->cap_active) {
		q->cap_active = q->cap_active ? q->cap_active * 2 : 16;
		q->active = xrealloc(q->active, q->cap_active * sizeof *q->active);
	}
	g->active_pos = q->n_active;
	q->active[q->n_active++] = g;
}

static void queue_deactivate(struct queue *q, struct queue_group *g)
{
	struct queue_group *last = q->active[--q->n_active];
	last->active_pos = g->active_pos;
	q->active[g->active_pos] = last;
	g->active_pos = QUEUE_NO_POS;
}

/* ---- public ---- */

void queue_config_default(struct queue_config *c)
{
	memset(c, 0, sizeof *c);
	c->aging_period_ms = 10000;
	c->aging_max_points = 60;
	c->category_boost[TASK_CAT_INFERENCE] = 50;
	c->small_job_points = 8;
}

struct queue *queue_new(const struct queue_config *c)
{
	struct queue *q = xcalloc(1, sizeof *q);
	if (c)
		q->cfg = *c;
	else
		queue_config_default(&q->cfg);
	q->deadlines.before = queue_deadline_before;
	q->deadlines.moved = queue_deadline_moved;
	return q;
}

static void queue_entry_free(struct queue_entry *e)
{
	e->task->queue_slot = NULL;
	free(e);
}

void queue_free(struct queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->clients.cap; i++) {
		struct queue_client *c = q->clients.slots[i].val;
		if (!q->clients.slots[i].key)
			continue;
		for (int j = 0; j < c->n_groups; j++) {
			struct queue_group *g = c->groups[j];
			for (size_t k = g->head; k < g->end; k++)
				if (g->items[k].task)
					queue_entry_free(g->items[k].task->queue_slot);
			free(g->items);
			free(g);
		}
		free(c->groups);
		free(c->heads.items);
		free(c);
	}
	strmap_free(&q->clients);
	free(q->active);
	free(q->deadlines.items);
	free(q->merge.items);
	free(q);
}

static int64_t queue_base_priority(const struct queue *q, const struct task *t)
{
	int boost = (unsigned)t->category < TASK_CAT_COUNT ? q->cfg.category_boost[t->category] : 0;
	int whole_gpus = t->res.gpus > 1 ? t->res.gpus : 1; /* a share of one GPU counts as one */
	return (int64_t)t->priority + boost + q->cfg.small_job_points / whole_gpus;
}

void queue_push(struct queue *q, struct task *t)
{
	if (t->queue_slot)
		return; /* already queued: pushing twice must not duplicate it */
	struct queue_entry *e = xcalloc(1, sizeof *e);
	e->task = t;
	e->q = q;
	e->deadline_pos = QUEUE_NO_POS;
	e->category = (unsigned)t->category < TASK_CAT_COUNT ? t->category : TASK_CAT_BATCH;
	t->queue_slot = e;
	struct queue_group *g = queue_group_get(queue_client_get(q, t->client), queue_base_priority(q, t));
	queue_group_insert(g, e);
	queue_activate(q, g);
	if (t->max_wait_ms > 0)
		queue_heap_push(&q->deadlines, e);
	q->len++;
	q->len_cat[e->category]++;
}

void queue_remove(struct queue *q, struct task *t)
{
	struct queue_entry *e = t->queue_slot;
	if (!e || e->q != q)
		return;
	struct queue_group *g = e->group;
	queue_group_erase(g, e);
	if (g->live == 0)
		queue_deactivate(q, g);
	if (e->deadline_pos != QUEUE_NO_POS)
		queue_heap_remove_at(&q->deadlines, e->deadline_pos);
	q->len--;
	q->len_cat[e->category]--;
	queue_entry_free(e);
}

size_t queue_len(const struct queue *q) { return q->len; }

size_t queue_len_category(const struct queue *q, enum task_category c)
{
	return (unsigned)c < TASK_CAT_COUNT ? q->len_cat[c] : 0;
}

/* ---- ordering ----
 * Two levels: each client keeps a heap of its groups by their next task
 * (effective priority, then arrival), and one heap holds the clients by
 * their best task (effective priority, then virtual use, then arrival).
 * A task written out changes only its own client's key, which can only get
 * worse, so one sift-down per level keeps both heaps right. */

static int64_t queue_aging(const struct queue *q, int64_t queued_ms, int64_t now_ms)
{
	int64_t waited = now_ms - queued_ms;
	if (q->cfg.aging_period_ms <= 0 || waited <= 0)
		return 0;
	int64_t points = waited / q->cfg.aging_period_ms;
	return q->cfg.aging_max_points > 0 && points > q->cfg.aging_max_points ? q->cfg.aging_max_points : points;
}

static bool queue_group_before(const void *a, const void *b)
{
	const struct queue_group *x = a, *y = b;
	if (x->key_eff != y->key_eff)
		return x->key_eff > y->key_eff;
	return x->key_qms != y->key_qms ? x->key_qms < y->key_qms : x->key_seq < y->key_seq;
}

static bool queue_client_before(const void *a, const void *b)
{
	const struct queue_client *x = a, *y = b;
	if (x->key_eff != y->key_eff)
		return x->key_eff > y->key_eff;
	if (x->virt != y->virt)
		return x->virt < y->virt;
	return x->key_qms != y->key_qms ? x->key_qms < y->key_qms : x->key_seq < y->key_seq;
}

static void queue_group_key(const struct queue *q, struct queue_group *g, int64_t now_ms)
{
	const struct queue_item *it = &g->items[g->cursor];
	g->key_eff = g->base + queue_aging(q, it->queued_ms, now_ms);
	g->key_qms = it->queued_ms;
	g->key_seq = it->seq;
}

static void queue_client_key(struct queue_client *c)
{
	const struct queue_group *best = c->heads.items[0];
	c->key_eff = best->key_eff;
	c->key_qms = best->key_qms;
	c->key_seq = best->key_seq;
}

/* Moves the cursor past the written task; false when the group is used up. */
static bool queue_group_advance(struct queue_group *g)
{
	do
		g->cursor++;
	while (g->cursor < g->end && !g->items[g->cursor].task);
	return g->cursor < g->end;
}

/* Fills both heaps with every active group, in O(groups). */
static void queue_merge_start(struct queue *q, int64_t now_ms)
{
	struct queue_heap *top = &q->merge;
	top->before = queue_client_before;
	top->len = 0;
	q->stamp++;
	for (size_t i = 0; i < q->n_active; i++) {
		struct queue_group *g = q->active[i];
		struct queue_client *c = g->client;
		if (c->stamp != q->stamp) {
			c->stamp = q->stamp;
			c->virt = c->charged;
			c->heads.len = 0;
			queue_heap_reserve(top, top->len + 1);
			top->items[top->len++] = c;
		}
		g->cursor = g->head; /* head is never a hole while live > 0 */
		queue_group_key(q, g, now_ms);
		queue_heap_reserve(&c->heads, c->heads.len + 1);
		c->heads.items[c->heads.len++] = g;
	}
	for (size_t i = 0; i < top->len; i++) {
		struct queue_client *c = top->items[i];
		queue_heap_heapify(&c->heads);
		queue_client_key(c);
	}
	queue_heap_heapify(top);
}

size_t queue_order(struct queue *q, int64_t now_ms, struct task **out, size_t max)
{
	struct queue_heap *top = &q->merge;
	queue_merge_start(q, now_ms);
	size_t n = 0;
	while (n < max && top->len > 0) {
		struct queue_client *c = top->items[0];
		struct queue_group *g = c->heads.items[0];
		const struct queue_item *it = &g->items[g->cursor];
		out[n++] = it->task;
		c->virt += it->demand;
		if (queue_group_advance(g)) {
			queue_group_key(q, g, now_ms);
			queue_heap_sift_down(&c->heads, 0);
		} else {
			queue_heap_remove_at(&c->heads, 0);
		}
		if (c->heads.len == 0) {
			queue_heap_remove_at(top, 0);
		} else {
			queue_client_key(c);
			queue_heap_sift_down(top, 0);
		}
	}
	return n;
}

size_t queue_take_expired(struct queue *q, int64_t now_ms, struct task **out, size_t max)
{
	size_t n = 0;
	while (n < max && q->deadlines.len > 0) {
		struct queue_entry *e = q->deadlines.items[0];
		if (queue_deadline(e) > now_ms)
			break;
		struct task *t = e->task;
		queue_remove(q, t);
		out[n++] = t;
	}
	return n;
}

void queue_charge(struct queue *q, const char *client, int64_t milli)
{
	struct queue_client *c = queue_client_get(q, client ? client : "");
	c->charged += milli;
	if (c->charged < 0)
		c->charged = 0;
}
