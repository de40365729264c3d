/* store.c — the backend-independent half of the store: the write queue, the
 * writer thread with group commit, tickets, and dispatch to a backend.
 *
 * Why group commit: a durable commit costs one fsync of the log, and the disk
 * does about as many fsyncs per second whether a transaction holds one row or
 * a thousand (SQLite WAL, synchronous=FULL: ~9k commits/s one row each,
 * ~158k rows/s at 64 rows per commit). So callers never commit themselves:
 * they enqueue an op and get a ticket; one writer thread takes everything
 * pending, writes it in one transaction, commits once and wakes every waiter.
 * The more callers wait at once, the bigger the batches and the cheaper each
 * acknowledged write.
 *
 * Tickets are handed out in enqueue order under the queue lock, the writer
 * applies ops in that order, and it publishes "decided through ticket N" after
 * each batch. A write that did not become durable is recorded in a short list
 * of failed ticket ranges, which store_wait consults. */
#include "store.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "util.h"

/* Upper bound on one transaction: keeps a commit's latency (and the memory of
 * a batch) bounded when callers enqueue faster than the disk commits. */
#define STORE_BATCH_MAX 4096

/* Tickets [first, last] whose writes were not committed, and why. */
struct store_failure {
	uint64_t first, last;
	struct err err;
};

struct store {
	const struct store_backend *be; /* first: what every public call dispatches through */
	struct store_db *db;

	pthread_mutex_t mu;      /* guards everything below */
	pthread_cond_t work_cv;  /* writer: ops pending or stopping */
	pthread_cond_t done_cv;  /* waiters: decided_through moved */
	struct store_op *head, *tail;
	uint64_t last_ticket;     /* the newest ticket handed out */
	uint64_t decided_through; /* every ticket <= this is committed or failed */
	pthread_mutex_t hook_mu;
	void (*commit_hook)(void *arg); /* called after each batch is decided */
	void *commit_hook_arg;
	struct store_failure *failures;
	size_t n_failures, cap_failures;
	bool stopping;

	pthread_t writer;
};

/* --- ops --- */

static void store_op_free(struct store_op *op)
{
	task_free(op->task);
	free(op->detail);
	free(op->token_hash);
	free(op->token_client);
	free(op->token_role);
	free(op);
}

/* An update saves only the mutable columns, so the op skips the deep copy of
 * argv/env/models (the caller usually holds the node's lock while enqueueing). */
static struct task *store_copy_mutable(const struct task *t)
{
	struct task *c = xmalloc(sizeof *c);
	*c = *t;
	c->argv = c->env = c->res.models = NULL;
	c->argc = c->n_env = c->res.n_models = 0;
	c->image = NULL; /* fixed at submission, like argv */
	c->failure_reason = xstrdup(t->failure_reason);
	c->failure_message = xstrdup(t->failure_message);
	c->queue_slot = NULL;
	return c;
}

/* Appends op to the FIFO and gives it the next ticket. */
static uint64_t store_enqueue(struct store *s, struct store_op *op)
{
	op->ts_ms = now_ms();
	op->next = NULL;
	pthread_mutex_lock(&s->mu);
	/* Read the ticket under the lock: once it is released the writer may
	 * commit and free op at any moment. */
	uint64_t ticket = op->ticket = ++s->last_ticket;
	if (s->tail)
		s->tail->next = op;
	else
		s->head = op;
	s->tail = op;
	pthread_cond_signal(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
	return ticket;
}

uint64_t store_insert_task(struct store *s, const struct task *t)
{
	struct store_op *op = xcalloc(1, sizeof *op);
	op->kind = STORE_OP_INSERT_TASK;
	op->task = task_clone(t);
	return store_enqueue(s, op);
}

uint64_t store_update_task(struct store *s, const struct task *t, enum task_state from, const char *detail)
{
	struct store_op *op = xcalloc(1, sizeof *op);
	op->kind = STORE_OP_UPDATE_TASK;
	op->task = store_copy_mutable(t);
	op->from = from;
	op->detail = xstrdup(detail);
	return store_enqueue(s, op);
}

uint64_t store_put_token(struct store *s, const char *hash_hex, const char *client, const char *role)
{
	struct store_op *op = xcalloc(1, sizeof *op);
	op->kind = STORE_OP_PUT_TOKEN;
	op->token_hash = xstrdup(hash_hex ? hash_hex : "");
	op->token_client = xstrdup(client ? client : "");
	op->token_role = xstrdup(role ? role : "");
	return store_enqueue(s, op);
}

/* --- failure ranges (caller holds s->mu) --- */

static void store_record_failure_locked(struct store *s, uint64_t ticket, const struct err *e)
{
	struct store_failure *last = s->n_failures ? &s->failures[s->n_failures - 1] : NULL;
	/* A failing disk fails every batch: merge neighbours so the list stays short. */
	if (last && last->last + 1 == ticket && last->err.code == e->code) {
		last->last = ticket;
		return;
	}
	if (s->n_failures == s->cap_failures) {
		s->cap_failures = s->cap_failures ? s->cap_failures * 2 : 8;
		s->failures = xrealloc(s->failures, s->cap_failures * sizeof *s->failures);
	}
	s->failures[s->n_failures++] = (struct store_failure){ .first = ticket, .last = ticket, .err = *e };
}

static const struct store_failure *store_find_failure_locked(const struct store *s, uint64_t ticket)
{
	/* Newest first: a waiter almost always asks about a recent ticket. */
	for (size_t i = s->n_failures; i-- > 0;)
		if (ticket >= s->failures[i].first && ticket <= s->failures[i].last)
			return &s->failures[i];
	return NULL;
}

/* --- the writer --- */

/* Takes up to STORE_BATCH_MAX ops off the FIFO (caller holds s->mu). */
static int store_take_batch_locked(struct store *s, struct store_op **batch)
{
	int n = 0;
	while (s->head && n < STORE_BATCH_MAX) {
		batch[n++] = s->head;
		s->head = s->head->next;
	}
	if (!s->head)
		s->tail = NULL;
	return n;
}

/* Writes the batch as one transaction. If that fails, one op may be to blame
 * (a duplicate id, a bad string), so each op is retried in its own
 * transaction: only the writes that really cannot be stored fail. A failing
 * disk fails every retry too, which costs time but loses nothing. */
static void store_write_batch(struct store *s, struct store_op **batch, int n)
{
	struct err e = { 0 };
	if (s->be->write_batch(s->db, batch, n, &e) == 0)
		return;
	if (n == 1) {
		pthread_mutex_lock(&s->mu);
		store_record_failure_locked(s, batch[0]->ticket, &e);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	for (int i = 0; i < n; i++)
		store_write_batch(s, &batch[i], 1);
}

static void store_publish_decided(struct store *s, uint64_t ticket)
{
	pthread_mutex_lock(&s->mu);
	s->decided_through = ticket;
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->mu);
	/* Own lock: clearing the hook waits for a call in progress. */
	pthread_mutex_lock(&s->hook_mu);
	if (s->commit_hook)
		s->commit_hook(s->commit_hook_arg);
	pthread_mutex_unlock(&s->hook_mu);
}

uint64_t store_decided(struct store *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t t = s->decided_through;
	pthread_mutex_unlock(&s->mu);
	return t;
}

void store_set_commit_hook(struct store *s, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&s->hook_mu);
	s->commit_hook = fn;
	s->commit_hook_arg = arg;
	pthread_mutex_unlock(&s->hook_mu);
}

static void *store_writer_main(void *arg)
{
	struct store *s = arg;
	struct store_op **batch = xmalloc(STORE_BATCH_MAX * sizeof *batch);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->work_cv, &s->mu);
		if (!s->head)
			break; /* stopping and drained */
		int n = store_take_batch_locked(s, batch);
		pthread_mutex_unlock(&s->mu);

		store_write_batch(s, batch, n);
		store_publish_decided(s, batch[n - 1]->ticket);
		for (int i = 0; i < n; i++)
			store_op_free(batch[i]);

		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	free(batch);
	return NULL;
}

int store_wait(struct store *s, uint64_t ticket, struct err *e)
{
	pthread_mutex_lock(&s->mu);
	if (ticket > s->last_ticket) {
		pthread_mutex_unlock(&s->mu);
		return err_set(e, ERR_INVALID, "store ticket %llu was never issued", (unsigned long long)ticket);
	}
	while (s->decided_through < ticket)
		pthread_cond_wait(&s->done_cv, &s->mu);
	const struct store_failure *f = store_find_failure_locked(s, ticket);
	int rc = 0;
	if (f)
		rc = err_set(e, f->err.code, "%s", f->err.msg);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* --- open / close --- */

/* The one place that maps a location to a backend. A PostgreSQL backend will
 * claim "postgres://" URLs here. */
static const struct store_backend *store_backend_for(const char *path)
{
	(void)path;
	return &store_sqlite_backend;
}

int store_open(const char *path, struct store **out, struct err *e)
{
	*out = NULL;
	if (!path || !path[0])
		return err_set(e, ERR_INVALID, "store: empty database path");
	struct store *s = xcalloc(1, sizeof *s);
	s->be = store_backend_for(path);
	if (s->be->open(path, &s->db, e) < 0) {
		free(s);
		return -1;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->hook_mu, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	pthread_cond_init(&s->done_cv, NULL);
	int rc = pthread_create(&s->writer, NULL, store_writer_main, s);
	if (rc != 0) {
		s->be->close(s->db);
		pthread_cond_destroy(&s->done_cv);
		pthread_cond_destroy(&s->work_cv);
		pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->hook_mu);
		free(s);
		return err_set(e, ERR_INTERNAL, "store: cannot start the writer thread: %s", strerror(rc));
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_signal(&s->work_cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->writer, NULL); /* the writer drains the FIFO before it exits */
	s->be->close(s->db);
	pthread_cond_destroy(&s->done_cv);
	pthread_cond_destroy(&s->work_cv);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->hook_mu);
	free(s->failures);
	free(s);
}

/* --- reads: check arguments once here, then dispatch --- */

int store_get_task(struct store *s, const char *id, struct task **out, struct err *e)
{
	*out = NULL;
	if (!id)
		return err_set(e, ERR_INVALID, "store: no task id");
	return s->be->get_task(s->db, id, out, e);
}

int store_list_tasks(struct store *s, const struct store_task_filter *f, struct task ***out, int *n,
		     struct err *e)
{
	*out = NULL;
	*n = 0;
	struct store_task_filter checked = *f;
	if (checked.state < -1 || checked.state >= TASK_STATE_COUNT)
		return err_set(e, ERR_INVALID, "state filter %d is not a task state", f->state);
	if (checked.category < -1 || checked.category >= TASK_CAT_COUNT)
		return err_set(e, ERR_INVALID, "category filter %d is not a task category", f->category);
	if (checked.limit < 1)
		checked.limit = 1;
	if (checked.limit > 1000)
		checked.limit = 1000;
	return s->be->list_tasks(s->db, &checked, out, n, e);
}

int store_task_history(struct store *s, const char *id, struct task_event **out, int *n, struct err *e)
{
	*out = NULL;
	*n = 0;
	if (!id)
		return err_set(e, ERR_INVALID, "store: no task id");
	return s->be->task_history(s->db, id, out, n, e);
}

void store_free_events(struct task_event *ev, int n)
{
	if (!ev)
		return;
	for (int i = 0; i < n; i++)
		free(ev[i].detail);
	free(ev);
}

int store_load_active(struct store *s, int (*cb)(void *ctx, struct task *t), void *ctx, struct err *e)
{
	return s->be->load_active(s->db, cb, ctx, e);
}

int store_find_token(struct store *s, const char *hash_hex, char *client, size_t client_cap, char *role,
		     size_t role_cap, struct err *e)
{
	if (!hash_hex)
		return err_set(e, ERR_INVALID, "store: no token hash");
	return s->be->find_token(s->db, hash_hex, client, client_cap, role, role_cap, e);
}

int store_count_by_state(struct store *s, int64_t counts[TASK_STATE_COUNT], struct err *e)
{
	return s->be->count_by_state(s->db, counts, e);
}

/* --- JSON array columns --- */

static int store_json_array_dump(json_t *arr, char **out, const char *what, struct err *e)
{
	*out = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (!*out)
		return err_set(e, ERR_INTERNAL, "%s: cannot encode as JSON", what);
	return 0;
}

int store_strv_to_json(char *const *v, int n, const char *what, char **out, struct err *e)
{
	*out = NULL;
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		json_t *str = json_string(v[i] ? v[i] : "");
		if (!str) {
			json_decref(arr);
			return err_set(e, ERR_INVALID, "%s: entry %d is not valid UTF-8", what, i);
		}
		json_array_append_new(arr, str);
	}
	return store_json_array_dump(arr, out, what, e);
}

int store_gpu_uuids_to_json(const struct task *t, char **out, struct err *e)
{
	*out = NULL;
	int n = t->n_gpus_assigned;
	if (n < 0 || n > TASK_MAX_GPUS)
		return err_set(e, ERR_INVALID, "gpu_uuids: %d assigned GPUs is out of range", n);
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		/* The fixed-size slot may lack a terminator if someone filled it by hand. */
		json_t *str = json_stringn(t->gpu_uuids[i], strnlen(t->gpu_uuids[i], TASK_GPU_UUID_MAX - 1));
		if (!str) {
			json_decref(arr);
			return err_set(e, ERR_INVALID, "gpu_uuids: entry %d is not valid UTF-8", i);
		}
		json_array_append_new(arr, str);
	}
	return store_json_array_dump(arr, out, "gpu_uuids", e);
}

static int store_json_load_array(const char *json, const char *what, json_t **out, struct err *e)
{
	json_error_t jerr;
	*out = json_loads(json ? json : "[]", 0, &jerr);
	if (!*out)
		return err_set(e, ERR_INTERNAL, "%s: stored JSON is corrupt: %s", what, jerr.text);
	if (!json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		return err_set(e, ERR_INTERNAL, "%s: stored JSON is not an array", what);
	}
	return 0;
}

int store_json_to_strv(const char *json, const char *what, char ***out, int *n, struct err *e)
{
	*out = NULL;
	*n = 0;
	json_t *arr;
	if (store_json_load_array(json, what, &arr, e) < 0)
		return -1;
	size_t len = json_array_size(arr);
	char **v = len ? xcalloc(len + 1, sizeof *v) : NULL;
	for (size_t i = 0; i < len; i++) {
		const char *str = json_string_value(json_array_get(arr, i));
		if (!str) {
			strv_free(v, (int)i);
			json_decref(arr);
			return err_set(e, ERR_INTERNAL, "%s: stored entry %zu is not a string", what, i);
		}
		v[i] = xstrdup(str);
	}
	json_decref(arr);
	*out = v;
	*n = (int)len;
	return 0;
}

int store_json_to_gpu_uuids(const char *json, struct task *t, struct err *e)
{
	json_t *arr;
	if (store_json_load_array(json, "gpu_uuids", &arr, e) < 0)
		return -1;
	size_t len = json_array_size(arr);
	if (len > TASK_MAX_GPUS) {
		json_decref(arr);
		return err_set(e, ERR_INTERNAL, "gpu_uuids: %zu stored GPUs exceed the limit of %d", len,
			       TASK_MAX_GPUS);
	}
	for (size_t i = 0; i < len; i++) {
		const char *str = json_string_value(json_array_get(arr, i));
		if (!str || !str_copy(t->gpu_uuids[i], sizeof t->gpu_uuids[i], str)) {
			json_decref(arr);
			return err_set(e, ERR_INTERNAL, "gpu_uuids: stored entry %zu is not a UUID string", i);
		}
	}
	t->n_gpus_assigned = (int)len;
	json_decref(arr);
	return 0;
}
