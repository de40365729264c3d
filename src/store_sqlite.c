/* store_sqlite.c — the SQLite store backend (the default).
 *
 * One write connection, used by the writer thread of store.c only, and a small
 * pool of read-only connections that any thread may borrow. WAL mode lets the
 * readers run beside the writer, each reading the last committed snapshot;
 * synchronous=FULL makes every COMMIT fsync the log, so a write acknowledged
 * by store_wait survives kill -9 and power loss.
 *
 * Enum values (state, category) are stored as their names, not numbers: the
 * database stays readable with the sqlite3 shell and survives a reordering of
 * the enums in task.h. */
#include "store_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* How long a connection waits for a lock held by another process (a second
 * gpunode on the same file, the sqlite3 shell, a backup) before failing. */
#define STORE_SQLITE_BUSY_MS 5000
/* Readers beyond this many concurrent calls wait for a free connection. */
#define STORE_SQLITE_READERS_MAX 16

/* --- schema --- */

/* Migrations, in order. Each runs in its own transaction together with the
 * schema_version row that records it. Never edit a released step: append a
 * new one (ALTER TABLE, new index...) and the version moves with it. */
struct store_sqlite_migration {
	int version;
	const char *sql;
};

static const struct store_sqlite_migration store_sqlite_migrations[] = {
	{ 1,
	  "CREATE TABLE tasks ("
	  " id TEXT PRIMARY KEY,"           /* time-sortable hex: ORDER BY id is age order */
	  " client TEXT NOT NULL,"
	  " category TEXT NOT NULL,"
	  " priority INTEGER NOT NULL,"
	  " gpus INTEGER NOT NULL,"
	  " milli INTEGER NOT NULL,"
	  " min_vram_mb INTEGER NOT NULL,"
	  " cpu_milli INTEGER NOT NULL,"
	  " mem_mb INTEGER NOT NULL,"
	  " models TEXT NOT NULL,"          /* JSON array of strings */
	  " argv TEXT NOT NULL,"            /* JSON array of strings */
	  " env TEXT NOT NULL,"             /* JSON array of KEY=VALUE strings */
	  " max_wait_ms INTEGER NOT NULL,"
	  " state TEXT NOT NULL,"
	  " attempts INTEGER NOT NULL,"
	  " exit_code INTEGER,"             /* NULL: no exit code */
	  " failure_reason TEXT,"
	  " failure_message TEXT,"
	  " created_ms INTEGER NOT NULL,"   /* times: ms since the epoch, 0 = not yet */
	  " queued_ms INTEGER NOT NULL,"
	  " assigned_ms INTEGER NOT NULL,"
	  " started_ms INTEGER NOT NULL,"
	  " ended_ms INTEGER NOT NULL,"
	  " host TEXT NOT NULL,"            /* '' when not placed */
	  " gpu_uuids TEXT NOT NULL,"       /* JSON array of strings */
	  " executor TEXT NOT NULL"
	  ");"
	  "CREATE INDEX tasks_client_id ON tasks (client, id);"
	  "CREATE INDEX tasks_state_id ON tasks (state, id);"
	  "CREATE INDEX tasks_category_id ON tasks (category, id);"
	  "CREATE TABLE task_events ("
	  " seq INTEGER PRIMARY KEY,"       /* rowid: append order */
	  " task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,"
	  " ts_ms INTEGER NOT NULL,"
	  " from_state TEXT NOT NULL,"
	  " to_state TEXT NOT NULL,"
	  " detail TEXT"
	  ");"
	  "CREATE INDEX task_events_task_seq ON task_events (task_id, seq);"
	  "CREATE TABLE tokens ("
	  " hash TEXT PRIMARY KEY,"         /* only the hash of a token is ever stored */
	  " client TEXT NOT NULL,"
	  " role TEXT NOT NULL,"
	  " created_ms INTEGER NOT NULL"
	  ");" },
	/* Containers (issue 3): how a task runs, and what its run used. */
	{ 2,
	  "ALTER TABLE tasks ADD COLUMN image TEXT;"                         /* NULL: none given */
	  "ALTER TABLE tasks ADD COLUMN pids_limit INTEGER NOT NULL DEFAULT 0;"
	  "ALTER TABLE tasks ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 0;"
	  "ALTER TABLE tasks ADD COLUMN network INTEGER NOT NULL DEFAULT 0;"   /* booleans: 0/1 */
	  "ALTER TABLE tasks ADD COLUMN readonly_rootfs INTEGER NOT NULL DEFAULT 0;"
	  "ALTER TABLE tasks ADD COLUMN reuse_warm INTEGER NOT NULL DEFAULT 0;"
	  "ALTER TABLE tasks ADD COLUMN cpu_seconds REAL NOT NULL DEFAULT 0;"
	  "ALTER TABLE tasks ADD COLUMN peak_mem_bytes INTEGER NOT NULL DEFAULT 0;" },
};

#define STORE_SQLITE_N_MIGRATIONS ((int)(sizeof store_sqlite_migrations / sizeof store_sqlite_migrations[0]))

int store_schema_version(void)
{
	return store_sqlite_migrations[STORE_SQLITE_N_MIGRATIONS - 1].version;
}

/* The tasks columns in one order used by every INSERT and SELECT; the enum
 * gives each its result column (and, plus one, its ?N parameter). */
#define TASK_COLUMNS                                                                                      \
	"id, client, category, priority, gpus, milli, min_vram_mb, cpu_milli, mem_mb, models, argv, env, " \
	"max_wait_ms, state, attempts, exit_code, failure_reason, failure_message, created_ms, "        \
	"queued_ms, assigned_ms, started_ms, ended_ms, host, gpu_uuids, executor, image, pids_limit, "   \
	"timeout_ms, network, readonly_rootfs, reuse_warm, cpu_seconds, peak_mem_bytes"

enum task_col {
	COL_ID, COL_CLIENT, COL_CATEGORY, COL_PRIORITY, COL_GPUS, COL_MILLI, COL_MIN_VRAM_MB,
	COL_CPU_MILLI, COL_MEM_MB, COL_MODELS, COL_ARGV, COL_ENV, COL_MAX_WAIT_MS, COL_STATE,
	COL_ATTEMPTS, COL_EXIT_CODE, COL_FAILURE_REASON, COL_FAILURE_MESSAGE, COL_CREATED_MS,
	COL_QUEUED_MS, COL_ASSIGNED_MS, COL_STARTED_MS, COL_ENDED_MS, COL_HOST, COL_GPU_UUIDS,
	COL_EXECUTOR, COL_IMAGE, COL_PIDS_LIMIT, COL_TIMEOUT_MS, COL_NETWORK, COL_READONLY_ROOTFS,
	COL_REUSE_WARM, COL_CPU_SECONDS, COL_PEAK_MEM_BYTES,
};

static const char store_sqlite_insert_task_sql[] =
	"INSERT INTO tasks (" TASK_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
	"?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34)";
/* Same parameter numbers as the insert, so one binding function serves both. */
static const char store_sqlite_update_task_sql[] =
	"UPDATE tasks SET state = ?14, attempts = ?15, exit_code = ?16, failure_reason = ?17, "
	"failure_message = ?18, queued_ms = ?20, assigned_ms = ?21, started_ms = ?22, ended_ms = ?23, "
	"host = ?24, gpu_uuids = ?25, executor = ?26, cpu_seconds = ?33, peak_mem_bytes = ?34 WHERE id = ?1";
static const char store_sqlite_insert_event_sql[] =
	"INSERT INTO task_events (task_id, ts_ms, from_state, to_state, detail) VALUES (?1, ?2, ?3, ?4, ?5)";
/* Putting a token again changes its owner and role but keeps its birth time. */
static const char store_sqlite_put_token_sql[] =
	"INSERT INTO tokens (hash, client, role, created_ms) VALUES (?1, ?2, ?3, ?4) "
	"ON CONFLICT (hash) DO UPDATE SET client = excluded.client, role = excluded.role";

/* Fixed read statements, prepared once per read connection on first use. */
enum store_sqlite_read_stmt {
	RD_GET_TASK,
	RD_TASK_EXISTS,
	RD_HISTORY,
	RD_FIND_TOKEN,
	RD_COUNT_BY_STATE,
	RD_LOAD_ACTIVE,
	RD_COUNT
};

/* List statements differ by which filters are present: one per combination. */
enum {
	LIST_BY_CLIENT = 1,
	LIST_BY_STATE = 2,
	LIST_BY_CATEGORY = 4,
	LIST_BEFORE_ID = 8,
	LIST_VARIANTS = 16
};

struct store_sqlite_reader {
	struct store_sqlite_reader *next; /* free list */
	sqlite3 *conn;
	sqlite3_stmt *stmt[RD_COUNT];
	sqlite3_stmt *list[LIST_VARIANTS];
};

struct store_db {
	char *path;

	/* writer thread only (and store_open before the thread starts) */
	sqlite3 *w;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *insert_task, *update_task, *insert_event, *put_token;

	/* read pool */
	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	struct store_sqlite_reader *free_readers;
	struct store_sqlite_reader *all_readers[STORE_SQLITE_READERS_MAX];
	int n_readers;
	char *load_active_sql;
};

/* --- errors --- */

static enum err_code store_sqlite_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return ERR_CONFLICT;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return ERR_INTERNAL;
	default:
		return ERR_UNAVAILABLE; /* busy, I/O, disk full, read-only: the store cannot take it now */
	}
}

/* Fills e from the connection's last error; returns -1. */
static int store_sqlite_err(struct err *e, sqlite3 *conn, const char *what)
{
	int rc = sqlite3_extended_errcode(conn);
	return err_set(e, store_sqlite_code(rc), "store: %s: %s", what, sqlite3_errmsg(conn));
}

/* --- statements --- */

static int store_sqlite_prepare(sqlite3 *conn, const char *sql, sqlite3_stmt **out, struct err *e)
{
	if (sqlite3_prepare_v3(conn, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
		return store_sqlite_err(e, conn, "prepare");
	return 0;
}

/* Ends a statement's use: resets it (which also ends its implicit read
 * transaction, so the WAL can be checkpointed) and drops the bindings, which
 * may point at memory the caller is about to free. */
static void store_sqlite_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. */
static int store_sqlite_step_done(sqlite3 *conn, sqlite3_stmt *st, const char *what, struct err *e)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : store_sqlite_err(e, conn, what);
	store_sqlite_done(st);
	return ret;
}

static int store_sqlite_exec(sqlite3 *conn, const char *sql, const char *what, struct err *e)
{
	if (sqlite3_exec(conn, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_sqlite_err(e, conn, what);
	return 0;
}

static void store_sqlite_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
	if (s)
		sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, idx);
}

static const char *store_sqlite_column_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

/* --- opening: pragmas and migrations --- */

/* SQLite creates files with mode 0644; the store holds client data and token
 * hashes, so create it 0600 first (SQLite gives its -wal/-shm the same mode). */
static int store_sqlite_create_private(const char *path, struct err *e)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, ERR_UNAVAILABLE, "store: cannot open %s: %s", path, strerror(errno));
	close(fd);
	return 0;
}

static int store_sqlite_set_pragmas(sqlite3 *w, struct err *e)
{
	sqlite3_busy_timeout(w, STORE_SQLITE_BUSY_MS);
	sqlite3_stmt *st;
	if (store_sqlite_prepare(w, "PRAGMA journal_mode = WAL", &st, e) < 0)
		return -1;
	int rc = sqlite3_step(st);
	const char *mode = rc == SQLITE_ROW ? store_sqlite_column_text(st, 0) : NULL;
	int ok = mode && strcmp(mode, "wal") == 0;
	sqlite3_finalize(st);
	if (!ok)
		return err_set(e, ERR_UNAVAILABLE, "store: cannot switch the database to WAL mode");
	/* FULL: COMMIT returns only after the WAL is fsynced. NORMAL would lose
	 * acknowledged writes on power loss, and is no faster under group commit. */
	return store_sqlite_exec(w, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", "pragmas", e);
}

/* The highest applied migration, 0 for a new database. */
static int store_sqlite_current_version(sqlite3 *w, int *out, struct err *e)
{
	sqlite3_stmt *st;
	if (store_sqlite_prepare(w, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &st, e) < 0)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_sqlite_err(e, w, "read schema_version");
}

static int store_sqlite_record_version(sqlite3 *w, int version, struct err *e)
{
	sqlite3_stmt *st;
	if (store_sqlite_prepare(w, "INSERT INTO schema_version (version, applied_ms) VALUES (?1, ?2)", &st, e) < 0)
		return -1;
	sqlite3_bind_int(st, 1, version);
	sqlite3_bind_int64(st, 2, now_ms());
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_sqlite_err(e, w, "record schema_version");
}

/* Applies one step unless the database already has it. The version is read
 * inside the write transaction, so two processes opening the same new file
 * cannot both apply a step. */
static int store_sqlite_migrate_step(sqlite3 *w, const struct store_sqlite_migration *m, struct err *e)
{
	if (store_sqlite_exec(w, "BEGIN IMMEDIATE", "begin migration", e) < 0)
		return -1;
	int current = 0;
	if (store_sqlite_current_version(w, &current, e) < 0)
		goto fail;
	if (current > store_schema_version()) {
		err_set(e, ERR_UNAVAILABLE,
			"store: database schema version %d is newer than this gpunode supports (%d); "
			"run a newer gpunode or restore a backup",
			current, store_schema_version());
		goto fail;
	}
	if (current < m->version) {
		char what[48];
		snprintf(what, sizeof what, "migration %d", m->version);
		if (store_sqlite_exec(w, m->sql, what, e) < 0 || store_sqlite_record_version(w, m->version, e) < 0)
			goto fail;
	}
	if (store_sqlite_exec(w, "COMMIT", "commit migration", e) < 0)
		goto fail;
	return 0;
fail:
	sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int store_sqlite_migrate(sqlite3 *w, struct err *e)
{
	if (store_sqlite_exec(w,
			      "CREATE TABLE IF NOT EXISTS schema_version ("
			      " version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
			      "create schema_version", e) < 0)
		return -1;
	for (int i = 0; i < STORE_SQLITE_N_MIGRATIONS; i++)
		if (store_sqlite_migrate_step(w, &store_sqlite_migrations[i], e) < 0)
			return -1;
	return 0;
}

static int store_sqlite_prepare_writer(struct store_db *db, struct err *e)
{
	sqlite3 *w = db->w;
	if (store_sqlite_prepare(w, "BEGIN IMMEDIATE", &db->begin, e) < 0 ||
	    store_sqlite_prepare(w, "COMMIT", &db->commit, e) < 0 ||
	    store_sqlite_prepare(w, "ROLLBACK", &db->rollback, e) < 0 ||
	    store_sqlite_prepare(w, store_sqlite_insert_task_sql, &db->insert_task, e) < 0 ||
	    store_sqlite_prepare(w, store_sqlite_update_task_sql, &db->update_task, e) < 0 ||
	    store_sqlite_prepare(w, store_sqlite_insert_event_sql, &db->insert_event, e) < 0 ||
	    store_sqlite_prepare(w, store_sqlite_put_token_sql, &db->put_token, e) < 0)
		return -1;
	return 0;
}

/* "... WHERE state IN ('queued','assigned','running') ..." built from
 * task_state_terminal, so a new live state is loaded without touching SQL. */
static char *store_sqlite_build_load_active_sql(void)
{
	char in[256] = "";
	size_t len = 0;
	for (int s = 0; s < TASK_STATE_COUNT; s++) {
		if (task_state_terminal((enum task_state)s))
			continue;
		len += (size_t)snprintf(in + len, sizeof in - len, "%s'%s'", len ? ", " : "",
					task_state_name((enum task_state)s));
	}
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT " TASK_COLUMNS " FROM tasks WHERE state IN (%s) ORDER BY id", in);
	return xstrdup(sql);
}

static void store_sqlite_close_writer(struct store_db *db)
{
	sqlite3_stmt *stmts[] = { db->begin, db->commit, db->rollback, db->insert_task,
				  db->update_task, db->insert_event, db->put_token };
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
		sqlite3_finalize(stmts[i]);
	sqlite3_close(db->w);
}

static int store_sqlite_open(const char *path, struct store_db **out, struct err *e)
{
	*out = NULL;
	if (store_sqlite_create_private(path, e) < 0)
		return -1;
	struct store_db *db = xcalloc(1, sizeof *db);
	db->path = xstrdup(path);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &db->w, flags, NULL) != SQLITE_OK) {
		err_set(e, ERR_UNAVAILABLE, "store: cannot open %s: %s", path,
			db->w ? sqlite3_errmsg(db->w) : "out of memory");
		goto fail;
	}
	if (store_sqlite_set_pragmas(db->w, e) < 0 || store_sqlite_migrate(db->w, e) < 0 ||
	    store_sqlite_prepare_writer(db, e) < 0)
		goto fail;
	db->load_active_sql = store_sqlite_build_load_active_sql();
	pthread_mutex_init(&db->pool_mu, NULL);
	pthread_cond_init(&db->pool_cv, NULL);
	*out = db;
	return 0;
fail:
	store_sqlite_close_writer(db);
	free(db->path);
	free(db);
	return -1;
}

/* --- read connection pool --- */

static void store_sqlite_reader_close(struct store_sqlite_reader *r)
{
	for (int i = 0; i < RD_COUNT; i++)
		sqlite3_finalize(r->stmt[i]);
	for (int i = 0; i < LIST_VARIANTS; i++)
		sqlite3_finalize(r->list[i]);
	sqlite3_close(r->conn);
	free(r);
}

static int store_sqlite_reader_open(struct store_db *db, struct store_sqlite_reader **out, struct err *e)
{
	struct store_sqlite_reader *r = xcalloc(1, sizeof *r);
	int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(db->path, &r->conn, flags, NULL) != SQLITE_OK) {
		err_set(e, ERR_UNAVAILABLE, "store: cannot open a read connection to %s: %s", db->path,
			r->conn ? sqlite3_errmsg(r->conn) : "out of memory");
		store_sqlite_reader_close(r);
		return -1;
	}
	sqlite3_busy_timeout(r->conn, STORE_SQLITE_BUSY_MS);
	*out = r;
	return 0;
}

/* Borrows a read connection: a free one, a new one while under the cap, or
 * the next one given back. */
static int store_sqlite_reader_get(struct store_db *db, struct store_sqlite_reader **out, struct err *e)
{
	pthread_mutex_lock(&db->pool_mu);
	while (!db->free_readers && db->n_readers >= STORE_SQLITE_READERS_MAX)
		pthread_cond_wait(&db->pool_cv, &db->pool_mu);
	struct store_sqlite_reader *r = db->free_readers;
	if (r) {
		db->free_readers = r->next;
		pthread_mutex_unlock(&db->pool_mu);
		*out = r;
		return 0;
	}
	int slot = db->n_readers++; /* reserve the slot; open outside the lock */
	pthread_mutex_unlock(&db->pool_mu);

	int rc = store_sqlite_reader_open(db, &r, e);
	pthread_mutex_lock(&db->pool_mu);
	if (rc < 0) {
		db->n_readers--;
		pthread_cond_signal(&db->pool_cv);
	} else {
		db->all_readers[slot] = r;
	}
	pthread_mutex_unlock(&db->pool_mu);
	*out = r;
	return rc;
}

static void store_sqlite_reader_put(struct store_db *db, struct store_sqlite_reader *r)
{
	pthread_mutex_lock(&db->pool_mu);
	r->next = db->free_readers;
	db->free_readers = r;
	pthread_cond_signal(&db->pool_cv);
	pthread_mutex_unlock(&db->pool_mu);
}

static const char *store_sqlite_read_sql(struct store_db *db, enum store_sqlite_read_stmt which)
{
	switch (which) {
	case RD_GET_TASK:
		return "SELECT " TASK_COLUMNS " FROM tasks WHERE id = ?1";
	case RD_TASK_EXISTS:
		return "SELECT 1 FROM tasks WHERE id = ?1";
	case RD_HISTORY:
		return "SELECT ts_ms, from_state, to_state, detail FROM task_events WHERE task_id = ?1 ORDER BY seq";
	case RD_FIND_TOKEN:
		return "SELECT client, role FROM tokens WHERE hash = ?1";
	case RD_COUNT_BY_STATE:
		return "SELECT state, COUNT(*) FROM tasks GROUP BY state";
	case RD_LOAD_ACTIVE:
		return db->load_active_sql;
	case RD_COUNT:
		break;
	}
	return NULL;
}

/* The reader's statement for a fixed query, prepared on first use. */
static int store_sqlite_reader_stmt(struct store_db *db, struct store_sqlite_reader *r,
				    enum store_sqlite_read_stmt which, sqlite3_stmt **out, struct err *e)
{
	if (!r->stmt[which] && store_sqlite_prepare(r->conn, store_sqlite_read_sql(db, which), &r->stmt[which], e) < 0)
		return -1;
	*out = r->stmt[which];
	return 0;
}

/* --- rows to tasks --- */

static int store_sqlite_parse_state(const char *name, enum task_state *out, struct err *e)
{
	if (task_state_parse(name, out) < 0)
		return err_set(e, ERR_INTERNAL, "store: unknown task state \"%s\" in the database", name ? name : "");
	return 0;
}

static void store_sqlite_copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	str_copy(dst, cap, store_sqlite_column_text(st, col));
}

/* The JSON array columns: argv, env, models, gpu_uuids. */
static int store_sqlite_read_arrays(sqlite3_stmt *st, struct task *t, struct err *e)
{
	if (store_json_to_strv(store_sqlite_column_text(st, COL_ARGV), "argv", &t->argv, &t->argc, e) < 0 ||
	    store_json_to_strv(store_sqlite_column_text(st, COL_ENV), "env", &t->env, &t->n_env, e) < 0 ||
	    store_json_to_strv(store_sqlite_column_text(st, COL_MODELS), "models", &t->res.models,
			       &t->res.n_models, e) < 0 ||
	    store_json_to_gpu_uuids(store_sqlite_column_text(st, COL_GPU_UUIDS), t, e) < 0)
		return -1;
	return 0;
}

/* The columns of migration 2: how it runs and what it used. */
static void store_sqlite_read_run_options(sqlite3_stmt *st, struct task *t)
{
	t->image = xstrdup(store_sqlite_column_text(st, COL_IMAGE));
	t->pids_limit = sqlite3_column_int64(st, COL_PIDS_LIMIT);
	t->res.timeout_ms = sqlite3_column_int64(st, COL_TIMEOUT_MS);
	t->network = sqlite3_column_int(st, COL_NETWORK) != 0;
	t->readonly_rootfs = sqlite3_column_int(st, COL_READONLY_ROOTFS) != 0;
	t->reuse_warm = sqlite3_column_int(st, COL_REUSE_WARM) != 0;
	t->cpu_seconds = sqlite3_column_double(st, COL_CPU_SECONDS);
	t->peak_mem_bytes = sqlite3_column_int64(st, COL_PEAK_MEM_BYTES);
}

/* Rebuilds a whole task from a row selected with TASK_COLUMNS. */
static int store_sqlite_row_to_task(sqlite3_stmt *st, struct task **out, struct err *e)
{
	struct task *t = task_new();
	store_sqlite_copy_text(t->id, sizeof t->id, st, COL_ID);
	store_sqlite_copy_text(t->client, sizeof t->client, st, COL_CLIENT);
	if (task_category_parse(store_sqlite_column_text(st, COL_CATEGORY), &t->category) < 0) {
		err_set(e, ERR_INTERNAL, "store: task %s has an unknown category", t->id);
		goto fail;
	}
	t->priority = sqlite3_column_int(st, COL_PRIORITY);
	t->res.gpus = sqlite3_column_int(st, COL_GPUS);
	t->res.milli = sqlite3_column_int(st, COL_MILLI);
	t->res.min_vram_mb = sqlite3_column_int64(st, COL_MIN_VRAM_MB);
	t->res.cpu_milli = sqlite3_column_int64(st, COL_CPU_MILLI);
	t->res.mem_mb = sqlite3_column_int64(st, COL_MEM_MB);
	t->max_wait_ms = sqlite3_column_int64(st, COL_MAX_WAIT_MS);
	if (store_sqlite_parse_state(store_sqlite_column_text(st, COL_STATE), &t->state, e) < 0)
		goto fail;
	t->attempts = sqlite3_column_int(st, COL_ATTEMPTS);
	t->has_exit_code = sqlite3_column_type(st, COL_EXIT_CODE) != SQLITE_NULL;
	t->exit_code = t->has_exit_code ? sqlite3_column_int(st, COL_EXIT_CODE) : 0;
	t->failure_reason = xstrdup(store_sqlite_column_text(st, COL_FAILURE_REASON));
	t->failure_message = xstrdup(store_sqlite_column_text(st, COL_FAILURE_MESSAGE));
	t->created_ms = sqlite3_column_int64(st, COL_CREATED_MS);
	t->queued_ms = sqlite3_column_int64(st, COL_QUEUED_MS);
	t->assigned_ms = sqlite3_column_int64(st, COL_ASSIGNED_MS);
	t->started_ms = sqlite3_column_int64(st, COL_STARTED_MS);
	t->ended_ms = sqlite3_column_int64(st, COL_ENDED_MS);
	store_sqlite_copy_text(t->host, sizeof t->host, st, COL_HOST);
	store_sqlite_copy_text(t->executor, sizeof t->executor, st, COL_EXECUTOR);
	store_sqlite_read_run_options(st, t);
	if (store_sqlite_read_arrays(st, t, e) < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	task_free(t);
	return -1;
}

/* --- writes (writer thread) --- */

/* JSON texts bound to a statement; they must outlive its step. */
struct store_sqlite_json {
	char *models, *argv, *env, *gpu_uuids;
};

static void store_sqlite_json_free(struct store_sqlite_json *j)
{
	free(j->models);
	free(j->argv);
	free(j->env);
	free(j->gpu_uuids);
}

/* The columns fixed at submission (parameters ?1..?13, ?19 and ?27..?32). */
static int store_sqlite_bind_identity(sqlite3_stmt *st, const struct task *t, struct store_sqlite_json *j,
				      struct err *e)
{
	const struct task_resources *r = &t->res;
	if (store_strv_to_json(r->models, r->n_models, "models", &j->models, e) < 0 ||
	    store_strv_to_json(t->argv, t->argc, "argv", &j->argv, e) < 0 ||
	    store_strv_to_json(t->env, t->n_env, "env", &j->env, e) < 0)
		return -1;
	sqlite3_bind_text(st, COL_ID + 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, COL_CLIENT + 1, t->client, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, COL_CATEGORY + 1, task_category_name(t->category), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, COL_PRIORITY + 1, t->priority);
	sqlite3_bind_int(st, COL_GPUS + 1, r->gpus);
	sqlite3_bind_int(st, COL_MILLI + 1, r->milli);
	sqlite3_bind_int64(st, COL_MIN_VRAM_MB + 1, r->min_vram_mb);
	sqlite3_bind_int64(st, COL_CPU_MILLI + 1, r->cpu_milli);
	sqlite3_bind_int64(st, COL_MEM_MB + 1, r->mem_mb);
	sqlite3_bind_text(st, COL_MODELS + 1, j->models, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, COL_ARGV + 1, j->argv, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, COL_ENV + 1, j->env, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, COL_MAX_WAIT_MS + 1, t->max_wait_ms);
	sqlite3_bind_int64(st, COL_CREATED_MS + 1, t->created_ms);
	store_sqlite_bind_text(st, COL_IMAGE + 1, t->image);
	sqlite3_bind_int64(st, COL_PIDS_LIMIT + 1, t->pids_limit);
	sqlite3_bind_int64(st, COL_TIMEOUT_MS + 1, t->res.timeout_ms);
	sqlite3_bind_int(st, COL_NETWORK + 1, t->network);
	sqlite3_bind_int(st, COL_READONLY_ROOTFS + 1, t->readonly_rootfs);
	sqlite3_bind_int(st, COL_REUSE_WARM + 1, t->reuse_warm);
	return 0;
}

/* The columns that change over a task's life (parameters ?14..?26 but ?19,
 * and ?33..?34). */
static int store_sqlite_bind_mutable(sqlite3_stmt *st, const struct task *t, struct store_sqlite_json *j,
				     struct err *e)
{
	if (store_gpu_uuids_to_json(t, &j->gpu_uuids, e) < 0)
		return -1;
	sqlite3_bind_text(st, COL_STATE + 1, task_state_name(t->state), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, COL_ATTEMPTS + 1, t->attempts);
	if (t->has_exit_code)
		sqlite3_bind_int(st, COL_EXIT_CODE + 1, t->exit_code);
	else
		sqlite3_bind_null(st, COL_EXIT_CODE + 1);
	store_sqlite_bind_text(st, COL_FAILURE_REASON + 1, t->failure_reason);
	store_sqlite_bind_text(st, COL_FAILURE_MESSAGE + 1, t->failure_message);
	sqlite3_bind_int64(st, COL_QUEUED_MS + 1, t->queued_ms);
	sqlite3_bind_int64(st, COL_ASSIGNED_MS + 1, t->assigned_ms);
	sqlite3_bind_int64(st, COL_STARTED_MS + 1, t->started_ms);
	sqlite3_bind_int64(st, COL_ENDED_MS + 1, t->ended_ms);
	sqlite3_bind_text(st, COL_HOST + 1, t->host, (int)strnlen(t->host, sizeof t->host), SQLITE_STATIC);
	sqlite3_bind_text(st, COL_GPU_UUIDS + 1, j->gpu_uuids, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, COL_EXECUTOR + 1, t->executor, (int)strnlen(t->executor, sizeof t->executor),
			  SQLITE_STATIC);
	sqlite3_bind_double(st, COL_CPU_SECONDS + 1, t->cpu_seconds);
	sqlite3_bind_int64(st, COL_PEAK_MEM_BYTES + 1, t->peak_mem_bytes);
	return 0;
}

static int store_sqlite_insert_event(struct store_db *db, const struct store_op *op, enum task_state from,
				     const char *detail, struct err *e)
{
	sqlite3_stmt *st = db->insert_event;
	sqlite3_bind_text(st, 1, op->task->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, op->ts_ms);
	sqlite3_bind_text(st, 3, task_state_name(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, task_state_name(op->task->state), -1, SQLITE_STATIC);
	store_sqlite_bind_text(st, 5, detail);
	return store_sqlite_step_done(db->w, st, "insert task event", e);
}

static int store_sqlite_apply_insert(struct store_db *db, const struct store_op *op, struct err *e)
{
	const struct task *t = op->task;
	sqlite3_stmt *st = db->insert_task;
	struct store_sqlite_json j = { 0 };
	int rc = -1;
	if (store_sqlite_bind_identity(st, t, &j, e) == 0 && store_sqlite_bind_mutable(st, t, &j, e) == 0) {
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		if (rc < 0 && sqlite3_extended_errcode(db->w) == SQLITE_CONSTRAINT_PRIMARYKEY)
			err_set(e, ERR_CONFLICT, "store: task %s already exists", t->id);
		else if (rc < 0)
			store_sqlite_err(e, db->w, "insert task");
	}
	store_sqlite_done(st);
	store_sqlite_json_free(&j);
	if (rc < 0)
		return -1;
	/* The first history row: from == to == the state it was stored in. */
	return store_sqlite_insert_event(db, op, t->state, "submitted", e);
}

static int store_sqlite_apply_update(struct store_db *db, const struct store_op *op, struct err *e)
{
	const struct task *t = op->task;
	sqlite3_stmt *st = db->update_task;
	struct store_sqlite_json j = { 0 };
	int rc = -1;
	if (store_sqlite_bind_mutable(st, t, &j, e) == 0) {
		sqlite3_bind_text(st, COL_ID + 1, t->id, -1, SQLITE_STATIC);
		rc = store_sqlite_step_done(db->w, st, "update task", e);
	}
	store_sqlite_done(st);
	store_sqlite_json_free(&j);
	if (rc < 0)
		return -1;
	if (sqlite3_changes(db->w) == 0)
		return err_set(e, ERR_NOT_FOUND, "store: no task %s to update", t->id);
	return store_sqlite_insert_event(db, op, op->from, op->detail, e);
}

static int store_sqlite_apply_put_token(struct store_db *db, const struct store_op *op, struct err *e)
{
	sqlite3_stmt *st = db->put_token;
	sqlite3_bind_text(st, 1, op->token_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->token_client, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, op->token_role, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, op->ts_ms);
	return store_sqlite_step_done(db->w, st, "put token", e);
}

static int store_sqlite_apply(struct store_db *db, const struct store_op *op, struct err *e)
{
	switch (op->kind) {
	case STORE_OP_INSERT_TASK:
		return store_sqlite_apply_insert(db, op, e);
	case STORE_OP_UPDATE_TASK:
		return store_sqlite_apply_update(db, op, e);
	case STORE_OP_PUT_TOKEN:
		return store_sqlite_apply_put_token(db, op, e);
	}
	return err_set(e, ERR_INTERNAL, "store: unknown op kind %d", (int)op->kind);
}

/* A failed COMMIT can leave the transaction open (SQLITE_BUSY); an I/O error
 * may already have rolled it back. Either way the connection ends clean. */
static void store_sqlite_rollback(struct store_db *db)
{
	if (!sqlite3_get_autocommit(db->w)) {
		sqlite3_step(db->rollback);
		sqlite3_reset(db->rollback);
	}
}

static int store_sqlite_write_batch(struct store_db *db, struct store_op *const *ops, int n, struct err *e)
{
	if (store_sqlite_step_done(db->w, db->begin, "begin", e) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (store_sqlite_apply(db, ops[i], e) < 0)
			goto fail;
	if (store_sqlite_step_done(db->w, db->commit, "commit", e) < 0)
		goto fail;
	return 0;
fail:
	store_sqlite_rollback(db);
	return -1;
}

/* --- reads --- */

static int store_sqlite_get_task(struct store_db *db, const char *id, struct task **out, struct err *e)
{
	struct store_sqlite_reader *r;
	sqlite3_stmt *st;
	if (store_sqlite_reader_get(db, &r, e) < 0)
		return -1;
	int rc = store_sqlite_reader_stmt(db, r, RD_GET_TASK, &st, e);
	if (rc == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			rc = store_sqlite_row_to_task(st, out, e);
		else if (step == SQLITE_DONE)
			rc = err_set(e, ERR_NOT_FOUND, "no task %s", id);
		else
			rc = store_sqlite_err(e, r->conn, "get task");
		store_sqlite_done(st);
	}
	store_sqlite_reader_put(db, r);
	return rc;
}

static void store_sqlite_list_sql(int mask, char *sql, size_t cap)
{
	snprintf(sql, cap, "SELECT " TASK_COLUMNS " FROM tasks WHERE 1%s%s%s%s ORDER BY id DESC LIMIT ?5",
		 mask & LIST_BY_CLIENT ? " AND client = ?1" : "", mask & LIST_BY_STATE ? " AND state = ?2" : "",
		 mask & LIST_BY_CATEGORY ? " AND category = ?3" : "", mask & LIST_BEFORE_ID ? " AND id < ?4" : "");
}

static int store_sqlite_list_mask(const struct store_task_filter *f)
{
	return (f->client ? LIST_BY_CLIENT : 0) | (f->state >= 0 ? LIST_BY_STATE : 0) |
	       (f->category >= 0 ? LIST_BY_CATEGORY : 0) | (f->before_id ? LIST_BEFORE_ID : 0);
}

static int store_sqlite_list_stmt(struct store_sqlite_reader *r, const struct store_task_filter *f,
				  sqlite3_stmt **out, struct err *e)
{
	int mask = store_sqlite_list_mask(f);
	if (!r->list[mask]) {
		char sql[1024];
		store_sqlite_list_sql(mask, sql, sizeof sql);
		if (store_sqlite_prepare(r->conn, sql, &r->list[mask], e) < 0)
			return -1;
	}
	sqlite3_stmt *st = r->list[mask];
	if (f->client)
		sqlite3_bind_text(st, 1, f->client, -1, SQLITE_STATIC);
	if (f->state >= 0)
		sqlite3_bind_text(st, 2, task_state_name((enum task_state)f->state), -1, SQLITE_STATIC);
	if (f->category >= 0)
		sqlite3_bind_text(st, 3, task_category_name((enum task_category)f->category), -1, SQLITE_STATIC);
	if (f->before_id)
		sqlite3_bind_text(st, 4, f->before_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, f->limit);
	*out = st;
	return 0;
}

/* Collects every row of st as tasks (at most limit of them). */
static int store_sqlite_collect_tasks(sqlite3 *conn, sqlite3_stmt *st, int limit, struct task ***out, int *n,
				      struct err *e)
{
	struct task **v = xcalloc((size_t)limit, sizeof *v);
	int count = 0, step = SQLITE_DONE;
	while (count < limit && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (store_sqlite_row_to_task(st, &v[count], e) < 0)
			goto fail;
		count++;
	}
	if (count < limit && step != SQLITE_DONE) {
		store_sqlite_err(e, conn, "list tasks");
		goto fail;
	}
	*out = v;
	*n = count;
	return 0;
fail:
	for (int i = 0; i < count; i++)
		task_free(v[i]);
	free(v);
	return -1;
}

static int store_sqlite_list_tasks(struct store_db *db, const struct store_task_filter *f, struct task ***out,
				   int *n, struct err *e)
{
	struct store_sqlite_reader *r;
	sqlite3_stmt *st;
	if (store_sqlite_reader_get(db, &r, e) < 0)
		return -1;
	int rc = store_sqlite_list_stmt(r, f, &st, e);
	if (rc == 0) {
		rc = store_sqlite_collect_tasks(r->conn, st, f->limit, out, n, e);
		store_sqlite_done(st);
	}
	store_sqlite_reader_put(db, r);
	return rc;
}

static int store_sqlite_task_exists(struct store_db *db, struct store_sqlite_reader *r, const char *id,
				    struct err *e)
{
	sqlite3_stmt *st;
	if (store_sqlite_reader_stmt(db, r, RD_TASK_EXISTS, &st, e) < 0)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int step = sqlite3_step(st);
	int rc = step == SQLITE_ROW ? 0
		 : step == SQLITE_DONE ? err_set(e, ERR_NOT_FOUND, "no task %s", id)
				       : store_sqlite_err(e, r->conn, "find task");
	store_sqlite_done(st);
	return rc;
}

static int store_sqlite_row_to_event(sqlite3_stmt *st, struct task_event *ev, struct err *e)
{
	ev->ts_ms = sqlite3_column_int64(st, 0);
	if (store_sqlite_parse_state(store_sqlite_column_text(st, 1), &ev->from, e) < 0 ||
	    store_sqlite_parse_state(store_sqlite_column_text(st, 2), &ev->to, e) < 0)
		return -1;
	ev->detail = xstrdup(store_sqlite_column_text(st, 3));
	return 0;
}

static int store_sqlite_collect_events(sqlite3 *conn, sqlite3_stmt *st, struct task_event **out, int *n,
				       struct err *e)
{
	struct task_event *v = NULL;
	int count = 0, cap = 0, step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, (size_t)cap * sizeof *v);
		}
		if (store_sqlite_row_to_event(st, &v[count], e) < 0)
			goto fail;
		count++;
	}
	if (step != SQLITE_DONE) {
		store_sqlite_err(e, conn, "task history");
		goto fail;
	}
	*out = v;
	*n = count;
	return 0;
fail:
	store_free_events(v, count);
	return -1;
}

static int store_sqlite_task_history(struct store_db *db, const char *id, struct task_event **out, int *n,
				     struct err *e)
{
	struct store_sqlite_reader *r;
	sqlite3_stmt *st;
	if (store_sqlite_reader_get(db, &r, e) < 0)
		return -1;
	int rc = store_sqlite_reader_stmt(db, r, RD_HISTORY, &st, e);
	if (rc == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = store_sqlite_collect_events(r->conn, st, out, n, e);
		store_sqlite_done(st);
	}
	/* Every stored task has its "submitted" row, so no rows means no task;
	 * asking the tasks table keeps that true even if history is pruned. */
	if (rc == 0 && *n == 0) {
		free(*out);
		*out = NULL;
		rc = store_sqlite_task_exists(db, r, id, e);
	}
	store_sqlite_reader_put(db, r);
	return rc;
}

static int store_sqlite_walk_active(sqlite3 *conn, sqlite3_stmt *st, int (*cb)(void *ctx, struct task *t),
				    void *ctx, struct err *e)
{
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct task *t;
		if (store_sqlite_row_to_task(st, &t, e) < 0)
			return -1;
		if (cb(ctx, t) != 0)
			return 0;
	}
	return step == SQLITE_DONE ? 0 : store_sqlite_err(e, conn, "load active tasks");
}

static int store_sqlite_load_active(struct store_db *db, int (*cb)(void *ctx, struct task *t), void *ctx,
				    struct err *e)
{
	struct store_sqlite_reader *r;
	sqlite3_stmt *st;
	if (store_sqlite_reader_get(db, &r, e) < 0)
		return -1;
	int rc = store_sqlite_reader_stmt(db, r, RD_LOAD_ACTIVE, &st, e);
	if (rc == 0) {
		rc = store_sqlite_walk_active(r->conn, st, cb, ctx, e);
		store_sqlite_done(st);
	}
	store_sqlite_reader_put(db, r);
	return rc;
}

static int store_sqlite_copy_token_row(sqlite3_stmt *st, char *client, size_t client_cap, char *role,
				       size_t role_cap, struct err *e)
{
	/* A cut-off role could read as a different role: refuse instead. */
	if (!str_copy(client, client_cap, store_sqlite_column_text(st, 0)) ||
	    !str_copy(role, role_cap, store_sqlite_column_text(st, 1)))
		return err_set(e, ERR_INTERNAL, "store: token owner or role does not fit the caller's buffer");
	return 0;
}

static int store_sqlite_find_token(struct store_db *db, const char *hash_hex, char *client, size_t client_cap,
				   char *role, size_t role_cap, struct err *e)
{
	struct store_sqlite_reader *r;
	sqlite3_stmt *st;
	if (store_sqlite_reader_get(db, &r, e) < 0)
		return -1;
	int rc = store_sqlite_reader_stmt(db, r, RD_FIND_TOKEN, &st, e);
	if (rc == 0) {
		sqlite3_bind_text(st, 1, hash_hex, -1, SQLITE_STATIC);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			rc = store_sqlite_copy_token_row(st, client, client_cap, role, role_cap, e);
		else if (step == SQLITE_DONE)
			rc = err_set(e, ERR_NOT_FOUND, "unknown token");
		else
			rc = store_sqlite_err(e, r->conn, "find token");
		store_sqlite_done(st);
	}
	store_sqlite_reader_put(db, r);
	return rc;
}

static int store_sqlite_collect_counts(sqlite3 *conn, sqlite3_stmt *st, int64_t counts[TASK_STATE_COUNT],
				       struct err *e)
{
	for (int i = 0; i < TASK_STATE_COUNT; i++)
		counts[i] = 0;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		enum task_state s;
		if (store_sqlite_parse_state(store_sqlite_column_text(st, 0), &s, e) < 0)
			return -1;
		counts[s] = sqlite3_column_int64(st, 1);
	}
	return step == SQLITE_DONE ? 0 : store_sqlite_err(e, conn, "count tasks");
}

static int store_sqlite_count_by_state(struct store_db *db, int64_t counts[TASK_STATE_COUNT], struct err *e)
{
	struct store_sqlite_reader *r;
	sqlite3_stmt *st;
	if (store_sqlite_reader_get(db, &r, e) < 0)
		return -1;
	int rc = store_sqlite_reader_stmt(db, r, RD_COUNT_BY_STATE, &st, e);
	if (rc == 0) {
		rc = store_sqlite_collect_counts(r->conn, st, counts, e);
		store_sqlite_done(st);
	}
	store_sqlite_reader_put(db, r);
	return rc;
}

/* --- close --- */

static void store_sqlite_close(struct store_db *db)
{
	if (!db)
		return;
	for (int i = 0; i < db->n_readers; i++)
		if (db->all_readers[i])
			store_sqlite_reader_close(db->all_readers[i]);
	/* The writer closes last: as the last connection it checkpoints the WAL
	 * into the main file and removes it. */
	store_sqlite_close_writer(db);
	pthread_cond_destroy(&db->pool_cv);
	pthread_mutex_destroy(&db->pool_mu);
	free(db->load_active_sql);
	free(db->path);
	free(db);
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.open = store_sqlite_open,
	.close = store_sqlite_close,
	.write_batch = store_sqlite_write_batch,
	.get_task = store_sqlite_get_task,
	.list_tasks = store_sqlite_list_tasks,
	.task_history = store_sqlite_task_history,
	.load_active = store_sqlite_load_active,
	.find_token = store_sqlite_find_token,
	.count_by_state = store_sqlite_count_by_state,
};
