/* store_backend.h — what a store backend implements (internal to the store
 * module: store.c and store_<backend>.c include it, nobody else).
 *
 * store.c owns everything that does not depend on the database: the write
 * queue, the writer thread, group commit, tickets and failure tracking, and
 * the JSON encoding of array columns. A backend owns its connections, its
 * schema and migrations, and turns ops and queries into SQL. The SQLite
 * backend lives in store_sqlite.c; a PostgreSQL backend fills the same table. */
#ifndef GPUNODE_STORE_BACKEND_H
#define GPUNODE_STORE_BACKEND_H

#include <stdint.h>

#include "store.h"

enum store_op_kind {
	STORE_OP_INSERT_TASK, /* task: a deep copy */
	STORE_OP_UPDATE_TASK, /* task: id and mutable fields only (argv/env/models are NULL) */
	STORE_OP_PUT_TOKEN,
};

/* One queued write. Everything it points to is owned by the op, so the caller
 * of store_insert_task & co. may free its own data right after enqueueing. */
struct store_op {
	struct store_op *next; /* FIFO link */
	uint64_t ticket;
	enum store_op_kind kind;
	int64_t ts_ms;         /* when it was enqueued: the history row's time */
	struct task *task;     /* insert/update */
	enum task_state from;  /* update: the history row's from-state */
	char *detail;          /* update: may be NULL */
	char *token_hash, *token_client, *token_role;
};

/* Per-backend connection state; each backend defines its own. */
struct store_db;

struct store_backend {
	const char *name;
	/* Opens or creates the database and applies migrations. */
	int (*open)(const char *path, struct store_db **out, struct err *e);
	void (*close)(struct store_db *db);
	/* Applies ops[0..n) in order inside one transaction and commits it: all
	 * of them become durable or none does. Called from the writer thread only. */
	int (*write_batch)(struct store_db *db, struct store_op *const *ops, int n, struct err *e);
	/* Reads: may be called from many threads at once. Arguments are already
	 * checked by store.c (limit clamped, filter values in range). */
	int (*get_task)(struct store_db *db, const char *id, struct task **out, struct err *e);
	int (*list_tasks)(struct store_db *db, const struct store_task_filter *f, struct task ***out, int *n,
			  struct err *e);
	int (*task_history)(struct store_db *db, const char *id, struct task_event **out, int *n,
			    struct err *e);
	int (*load_active)(struct store_db *db, int (*cb)(void *ctx, struct task *t), void *ctx, struct err *e);
	int (*find_token)(struct store_db *db, const char *hash_hex, char *client, size_t client_cap, char *role,
			  size_t role_cap, struct err *e);
	int (*count_by_state)(struct store_db *db, int64_t counts[TASK_STATE_COUNT], struct err *e);
};

extern const struct store_backend store_sqlite_backend;

/* --- JSON array columns, shared by backends (models, argv, env, gpu_uuids) --- */

/* Encodes n strings as a compact JSON array; the caller frees the result.
 * ERR_INVALID when a string is not valid UTF-8 (JSON cannot carry it). */
int store_strv_to_json(char *const *v, int n, const char *what, char **out, struct err *e);
/* The task's assigned GPU UUIDs (n_gpus_assigned of them) as a JSON array. */
int store_gpu_uuids_to_json(const struct task *t, char **out, struct err *e);
/* Decodes a JSON array of strings into a NULL-terminated vector of *n strings
 * (NULL when empty), as task_free expects. NULL json reads as empty. */
int store_json_to_strv(const char *json, const char *what, char ***out, int *n, struct err *e);
/* Decodes a JSON array of GPU UUIDs into t->gpu_uuids / t->n_gpus_assigned. */
int store_json_to_gpu_uuids(const char *json, struct task *t, struct err *e);

#endif
