/* node.c — the node core: active tasks, submit/cancel, and the scheduler
 * thread. See node.h for the ordering rule (memory, then store, then the
 * outside world). */
#include "node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

struct active_task {
	struct task *t;
	struct placement pl;
	bool charged; /* pl is booked in the pool and the client's fair share */
};

void node_config_default(struct node_config *c)
{
	memset(c, 0, sizeof *c);
	sched_config_default(&c->sched);
	queue_config_default(&c->queue);
	c->heartbeat_interval_ms = 1000;
	c->host_grace_ms = 10000;
	c->max_attempts = 3;
}

/* --- the active-task table (keyed by the task's own id) --- */

static struct active_task *active_insert(struct node *n, struct task *t)
{
	struct active_task *a = xcalloc(1, sizeof *a);
	a->t = t;
	strmap_put(&n->active, t->id, a);
	return a;
}

struct active_task *node_active_find(struct node *n, const char *id)
{
	return strmap_get(&n->active, id);
}

static void active_remove(struct node *n, struct active_task *a)
{
	strmap_del(&n->active, a->t->id, a);
}

struct task *node_active_task(struct active_task *a)
{
	return a->t;
}

size_t node_active_on_host(struct node *n, const char *host, struct active_task **out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n->active.cap; i++) {
		struct active_task *a = n->active.slots[i].val;
		if (!n->active.slots[i].key || a->t->state == TASK_QUEUED || strcmp(a->t->host, host) != 0)
			continue;
		if (out && k < cap)
			out[k] = a;
		k++;
	}
	return out && k > cap ? cap : k;
}

/* --- booking --- */

static void charge(struct node *n, struct active_task *a)
{
	a->charged = true;
	queue_charge(n->queue, a->t->client, (int64_t)a->pl.milli * a->pl.n);
}

static void uncharge(struct node *n, struct active_task *a)
{
	if (!a->charged)
		return;
	pool_release(n->pool, &a->pl, &a->t->res);
	queue_charge(n->queue, a->t->client, -(int64_t)a->pl.milli * a->pl.n);
	a->charged = false;
}

static void clear_placement(struct task *t)
{
	t->host[0] = '\0';
	t->n_gpus_assigned = 0;
}

uint64_t node_claim_placement_locked(struct node *n, struct active_task *a)
{
	if (a->charged)
		return 0;
	if (pool_placement_of(n->pool, a->t, &a->pl) == 0 && pool_alloc(n->pool, &a->pl, &a->t->res) == 0) {
		charge(n, a);
		return 0;
	}
	return node_requeue_locked(n, a, "its GPUs are no longer available on the host");
}

void node_kick_locked(struct node *n)
{
	n->sched_dirty = true;
	pthread_cond_signal(&n->sched_cv);
}

bool node_move_locked(struct task *t, enum task_state to)
{
	if (!task_transition_legal(t->state, to)) {
		log_msg("error", "node", "task=%s illegal transition %s -> %s refused", t->id, task_state_name(t->state),
			task_state_name(to));
		return false;
	}
	t->state = to;
	return true;
}

uint64_t node_finish_locked(struct node *n, struct active_task *a, enum task_state to, const char *reason,
			    const char *message, const char *detail)
{
	struct task *t = a->t;
	enum task_state from = t->state;
	if (!node_move_locked(t, to))
		return 0;
	if (from == TASK_QUEUED)
		queue_remove(n->queue, t);
	uncharge(n, a);
	t->ended_ms = now_ms();
	if (reason)
		task_set_failure(t, reason, message);
	uint64_t ticket = store_update_task(n->store, t, from, detail);
	active_remove(n, a);
	task_free(t);
	free(a);
	n->counters.finished++;
	node_kick_locked(n);
	return ticket;
}

uint64_t node_requeue_locked(struct node *n, struct active_task *a, const char *why)
{
	struct task *t = a->t;
	if (t->attempts >= n->cfg.max_attempts) {
		char msg[256];
		snprintf(msg, sizeof msg, "%s; gave up after %d attempts", why, t->attempts);
		return node_finish_locked(n, a, TASK_LOST, "lost", msg, msg);
	}
	enum task_state from = t->state;
	if (!node_move_locked(t, TASK_QUEUED))
		return 0;
	uncharge(n, a);
	clear_placement(t);
	t->queued_ms = now_ms();
	t->assigned_ms = t->started_ms = 0;
	t->executor[0] = '\0';
	queue_push(n->queue, t);
	node_note_arrival_locked(n, t);
	n->counters.requeued++;
	node_kick_locked(n);
	char detail[256];
	snprintf(detail, sizeof detail, "requeued: %s", why);
	return store_update_task(n->store, t, from, detail);
}

/* --- client operations --- */

int node_submit(struct node *n, struct task *t, const char *client, struct task **copy, uint64_t *ticket,
		struct err *e)
{
	str_copy(t->client, sizeof t->client, client);
	t->state = TASK_QUEUED;
	t->created_ms = t->queued_ms = now_ms();
	task_id_new(t->id);

	pthread_mutex_lock(&n->mu);
	if (n->stopping) {
		pthread_mutex_unlock(&n->mu);
		task_free(t);
		return err_set(e, ERR_UNAVAILABLE, "node is shutting down");
	}
	t->seq = n->next_seq++;
	/* The insert is enqueued before the task becomes placeable, so any
	 * placement write of it lands after it in the store. */
	*ticket = store_insert_task(n->store, t);
	active_insert(n, t);
	queue_push(n->queue, t);
	node_note_arrival_locked(n, t);
	n->counters.submitted++;
	*copy = task_clone(t);
	pthread_mutex_unlock(&n->mu);
	return 0;
}

int node_get_task(struct node *n, const char *id, const char *client, struct task **out, struct err *e)
{
	if (!task_id_valid(id))
		return err_set(e, ERR_INVALID, "bad task id \"%.40s\": want %d lowercase hex digits", id, TASK_ID_LEN);
	if (store_get_task(n->store, id, out, e) < 0)
		return -1;
	if (client && strcmp((*out)->client, client) != 0) {
		task_free(*out);
		*out = NULL;
		return err_set(e, ERR_NOT_FOUND, "no task %s", id);
	}
	return 0;
}

int node_cancel(struct node *n, const char *id, const char *client, struct task **copy, uint64_t *ticket,
		struct err *e)
{
	struct task *stored;
	if (node_get_task(n, id, client, &stored, e) < 0)
		return -1;
	task_free(stored);

	pthread_mutex_lock(&n->mu);
	struct active_task *a = node_active_find(n, id);
	if (!a) {
		pthread_mutex_unlock(&n->mu);
		return err_set(e, ERR_CONFLICT, "task %s has already ended", id);
	}
	char host[TASK_HOST_MAX];
	str_copy(host, sizeof host, a->t->state != TASK_QUEUED ? a->t->host : "");
	*copy = task_clone(a->t);
	(*copy)->state = TASK_CANCELLED;
	(*copy)->ended_ms = now_ms();
	task_set_failure(*copy, "cancelled", "cancelled by request");
	*ticket = node_finish_locked(n, a, TASK_CANCELLED, "cancelled", "cancelled by request", "cancelled by request");
	/* The stop reaches the agent only once the cancellation is durable. */
	struct host_link *link = host[0] ? node_link_find(n, host, false) : NULL;
	if (link)
		node_link_push_stop(n, link, id, *ticket);
	n->counters.cancelled++;
	pthread_mutex_unlock(&n->mu);
	return 0;
}

static void describe_placement(const struct task *t, char *buf, size_t cap)
{
	int off = snprintf(buf, cap, "placed on host %s gpus", t->host);
	for (int i = 0; i < t->n_gpus_assigned && off > 0 && (size_t)off < cap; i++)
		off += snprintf(buf + off, cap - (size_t)off, "%s%s", i ? "," : " ", t->gpu_uuids[i]);
}

uint64_t node_assign_locked(struct node *n, const struct sched_decision *d, int64_t now)
{
	struct task *t = d->task;
	struct active_task *a = node_active_find(n, t->id);
	queue_remove(n->queue, t);
	a->pl = d->pl;
	charge(n, a);
	node_move_locked(t, TASK_ASSIGNED); /* from queued: always legal */
	t->attempts++;
	t->assigned_ms = now;
	str_copy(t->host, sizeof t->host, d->pl.host->id);
	t->n_gpus_assigned = d->pl.n;
	for (int i = 0; i < d->pl.n; i++)
		str_copy(t->gpu_uuids[i], TASK_GPU_UUID_MAX, d->pl.host->gpus[d->pl.gpu_idx[i]].uuid);
	char detail[1024];
	describe_placement(t, detail, sizeof detail);
	uint64_t ticket = store_update_task(n->store, t, TASK_QUEUED, detail);
	node_link_push_start(n, node_link_find(n, t->host, true), t, ticket);
	n->counters.placed++;
	return ticket;
}

/* --- open / close --- */

static int load_active_cb(void *ctx, struct task *t)
{
	struct node *n = ctx;
	t->seq = n->next_seq++;
	active_insert(n, t);
	if (t->state == TASK_QUEUED)
		queue_push(n->queue, t);
	else if (t->host[0])
		/* Placed before the restart: its host must come back within the
		 * grace period and claim it, or it is requeued. */
		node_link_find(n, t->host, true);
	return 0;
}

static int make_dir(const char *path, struct err *e)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return err_set(e, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
	return 0;
}

int node_open(const struct node_config *cfg, struct node **out, struct err *e)
{
	struct node *n = xcalloc(1, sizeof *n);
	n->cfg = *cfg;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->sched_cv, NULL);
	char path[600];
	snprintf(path, sizeof path, "%s/logs", cfg->data_dir);
	if (make_dir(cfg->data_dir, e) < 0 || make_dir(path, e) < 0)
		goto fail;
	snprintf(path, sizeof path, "%s/gpunode.db", cfg->data_dir);
	if (store_open(path, &n->store, e) < 0)
		goto fail;
	n->pool = pool_new();
	n->queue = queue_new(&cfg->queue);
	if (store_load_active(n->store, load_active_cb, n, e) < 0 || node_gpu_load_drains(n, e) < 0)
		goto fail;
	if (pthread_create(&n->sched_thread, NULL, node_sched_main, n) != 0) {
		err_set(e, ERR_INTERNAL, "cannot start the scheduler thread");
		goto fail;
	}
	n->sched_started = true;
	*out = n;
	return 0;
fail:
	node_close(n);
	return -1;
}

void node_shutdown_begin(struct node *n)
{
	pthread_mutex_lock(&n->mu);
	n->stopping = true;
	pthread_cond_broadcast(&n->sched_cv);
	pthread_mutex_unlock(&n->mu);
}

void node_close(struct node *n)
{
	if (!n)
		return;
	node_shutdown_begin(n);
	if (n->sched_started)
		pthread_join(n->sched_thread, NULL);
	if (n->store)
		store_close(n->store);
	/* The queue holds pointers into the tasks: free it first. */
	if (n->queue)
		queue_free(n->queue);
	if (n->pool)
		pool_free(n->pool);
	for (size_t i = 0; i < n->active.cap; i++)
		if (n->active.slots[i].key) {
			struct active_task *a = n->active.slots[i].val;
			task_free(a->t);
			free(a);
		}
	strmap_free(&n->active);
	free(n->arrivals);
	free(n->drains_pending);
	node_links_free(n);
	pthread_cond_destroy(&n->sched_cv);
	pthread_mutex_destroy(&n->mu);
	free(n);
}
