/* store.h — durable state behind one interface. The SQLite backend
 * (store_sqlite.c, WAL mode, synchronous=FULL) is the default; a PostgreSQL
 * backend implements the same vtable later.
 *
 * Writes go through one writer thread with group commit: a caller enqueues a
 * write and gets a ticket; the writer takes everything pending, runs it in one
 * transaction, commits, and wakes the waiters. store_wait(ticket) returns once
 * that write and every write enqueued before it are durable. Writes are applied
 * in enqueue order, so callers that enqueue under their own lock keep the
 * database in the same order as their memory.
 *
 * Every task write is one transaction-member that updates the task row and
 * appends a task_events row (history is never lost).
 *
 * Reads use their own connections (WAL lets them run beside the writer) and
 * may be called from any thread. */
#ifndef GPUNODE_STORE_H
#define GPUNODE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "task.h"

struct store;

/* Opens (creating if needed) the database at path, applies schema migrations
 * in order (schema_version table), starts the writer thread. */
int store_open(const char *path, struct store **out, struct err *e);
/* Drains pending writes, stops the writer, closes every connection. */
void store_close(struct store *s);
/* The schema version this binary writes. */
int store_schema_version(void);

/* --- writes (enqueue; copy what they need, so the caller may change or free
 *     the task right after) --- */
/* New task in state queued, history event "submitted". */
uint64_t store_insert_task(struct store *s, const struct task *t);
/* Saves every mutable column of t (state, attempts, exit, failure, times,
 * placement) and appends a history row: from -> t->state, with detail (may
 * be NULL), e.g. "placed on host local gpus GPU-..." or "requeued: host lost". */
uint64_t store_update_task(struct store *s, const struct task *t, enum task_state from, const char *detail);
/* Tokens: only the hash is stored. role is "admin", "client" or "agent". */
uint64_t store_put_token(struct store *s, const char *hash_hex, const char *client, const char *role);
/* Blocks until the ticket's write is committed. Returns 0, or -1 with e set
 * when the commit failed (then the write is not durable). */
int store_wait(struct store *s, uint64_t ticket, struct err *e);

/* The newest ticket whose write is decided (committed or failed): a
 * ticket <= this makes store_wait return at once. */
uint64_t store_decided(struct store *s);
/* fn(arg) runs on the writer thread after every batch is decided; it must be
 * short and must not call back into the store's write path. NULL clears. */
void store_set_commit_hook(struct store *s, void (*fn)(void *arg), void *arg);

/* --- reads --- */
/* ERR_NOT_FOUND when there is no such task. *out is the caller's to task_free. */
int store_get_task(struct store *s, const char *id, struct task **out, struct err *e);

struct store_task_filter {
	const char *client;   /* NULL: all clients */
	int state;            /* -1: any, else enum task_state */
	int category;         /* -1: any, else enum task_category */
	const char *before_id;/* NULL: from the newest; else ids < before_id (pagination) */
	int limit;            /* 1..1000 */
};
/* Newest first. *out is an array of n tasks, the caller frees each and the array. */
int store_list_tasks(struct store *s, const struct store_task_filter *f, struct task ***out, int *n,
		     struct err *e);

struct task_event {
	int64_t ts_ms;
	enum task_state from; /* == to for the first event ("submitted") */
	enum task_state to;
	char *detail;         /* may be NULL */
};
/* Oldest first. Free with store_free_events. ERR_NOT_FOUND if no such task. */
int store_task_history(struct store *s, const char *id, struct task_event **out, int *n, struct err *e);
void store_free_events(struct task_event *ev, int n);

/* Calls cb for every task not in a terminal state, oldest first; cb takes
 * ownership of the task. A non-zero return from cb stops the walk. */
int store_load_active(struct store *s, int (*cb)(void *ctx, struct task *t), void *ctx, struct err *e);

/* Finds a token by hash. ERR_NOT_FOUND when unknown. */
int store_find_token(struct store *s, const char *hash_hex, char *client, size_t client_cap, char *role,
		     size_t role_cap, struct err *e);

/* Task counts per state (for /metrics). */
int store_count_by_state(struct store *s, int64_t counts[TASK_STATE_COUNT], struct err *e);

#endif
