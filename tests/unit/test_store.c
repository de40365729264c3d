/* test_store.c — the durable store against a real SQLite file in a temp dir:
 * round trips, history, listing, tokens, group commit under concurrency,
 * failure isolation, migrations, and kill -9 durability. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "task.h"
#include "util.h"

static char g_dir[64];
static char g_path[128];

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char p[512];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static void setup(void)
{
	log_set_quiet(true);
	snprintf(g_dir, sizeof g_dir, "/tmp/gpunode-test-store-XXXXXX");
	cr_assert_not_null(mkdtemp(g_dir));
	snprintf(g_path, sizeof g_path, "%s/store.db", g_dir);
}

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

/* Criterion ends its workers without LeakSanitizer's exit-time check, and a
 * failure in .fini does not fail a test, so under ASan every test ends with
 * this call: a leak fails the test that caused it. */
static void assert_no_leaks(void)
{
#ifdef __SANITIZE_ADDRESS__
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (LeakSanitizer report above)");
#endif
}

static void teardown(void) { remove_dir(g_dir); }

TestSuite(store, .init = setup, .fini = teardown, .timeout = 120);

/* --- helpers --- */

static struct store *open_store(void)
{
	struct store *s;
	struct err e = { 0 };
	cr_assert_eq(store_open(g_path, &s, &e), 0, "store_open: %s", e.msg);
	return s;
}

static void wait_ok(struct store *s, uint64_t ticket)
{
	struct err e = { 0 };
	cr_assert_eq(store_wait(s, ticket, &e), 0, "store_wait: %s", e.msg);
}

/* Ids that sort in creation order, 12 hex of "time" then 8 hex of i. */
static void make_id(char id[TASK_ID_LEN + 1], unsigned i)
{
	snprintf(id, TASK_ID_LEN + 1, "%012llx%08x", 0x18f000000000ULL + i, i);
}

static struct task *minimal_task(unsigned i, const char *client)
{
	struct task *t = task_new();
	make_id(t->id, i);
	str_copy(t->client, sizeof t->client, client);
	char *argv[] = { "true" };
	t->argv = strv_dup(argv, 1);
	t->argc = 1;
	t->state = TASK_QUEUED;
	t->created_ms = t->queued_ms = 1700000000000LL + i;
	return t;
}

/* A task with every stored field set to something other than its default. */
static struct task *full_task(void)
{
	struct task *t = task_new();
	make_id(t->id, 42);
	str_copy(t->client, sizeof t->client, "acme-ml");
	t->category = TASK_CAT_TRAINING;
	t->priority = -17;
	t->res.gpus = 2;
	t->res.milli = 1000;
	t->res.min_vram_mb = 81920;
	t->res.cpu_milli = 16000;
	t->res.mem_mb = 65536;
	char *models[] = { "H100-80GB", "A100-80GB" };
	t->res.models = strv_dup(models, 2);
	t->res.n_models = 2;
	char *argv[] = { "python3", "-c", "print(\"héllo, \\\"world\\\"\")\n\ttab", "" };
	t->argv = strv_dup(argv, 4);
	t->argc = 4;
	char *env[] = { "CUDA_LAUNCH_BLOCKING=1", "MSG=a=b c" };
	t->env = strv_dup(env, 2);
	t->n_env = 2;
	t->max_wait_ms = 3600000;
	t->state = TASK_FAILED;
	t->attempts = 3;
	t->exit_code = -9;
	t->has_exit_code = true;
	t->failure_reason = xstrdup("nonzero_exit");
	t->failure_message = xstrdup("the command exited with code -9 (killed)");
	t->created_ms = 1700000000001LL;
	t->queued_ms = 1700000000002LL;
	t->assigned_ms = 1700000000003LL;
	t->started_ms = 1700000000004LL;
	t->ended_ms = 1700000000005LL;
	str_copy(t->host, sizeof t->host, "gpu-host-07");
	t->n_gpus_assigned = 3;
	str_copy(t->gpu_uuids[0], sizeof t->gpu_uuids[0], "GPU-11111111-2222-3333-4444-555555555555");
	str_copy(t->gpu_uuids[1], sizeof t->gpu_uuids[1], "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
	str_copy(t->gpu_uuids[2], sizeof t->gpu_uuids[2], "MIG-1");
	str_copy(t->executor, sizeof t->executor, "docker");
	return t;
}

static void assert_strv_eq(char **a, int na, char **b, int nb, const char *what)
{
	cr_assert_eq(na, nb, "%s: %d entries, want %d", what, na, nb);
	for (int i = 0; i < na; i++)
		cr_assert_str_eq(a[i], b[i], "%s[%d]", what, i);
	if (na > 0)
		cr_assert_null(a[na], "%s is NULL-terminated", what);
	else
		cr_assert_null(a, "%s is NULL when empty", what);
}

static void assert_opt_str_eq(const char *a, const char *b, const char *what)
{
	if (!b)
		cr_assert_null(a, "%s should be NULL", what);
	else
		cr_assert(a && strcmp(a, b) == 0, "%s: got \"%s\", want \"%s\"", what, a ? a : "(null)", b);
}

static void assert_task_eq(const struct task *got, const struct task *want)
{
	cr_assert_str_eq(got->id, want->id);
	cr_assert_str_eq(got->client, want->client);
	cr_assert_eq(got->category, want->category);
	cr_assert_eq(got->priority, want->priority);
	cr_assert_eq(got->res.gpus, want->res.gpus);
	cr_assert_eq(got->res.milli, want->res.milli);
	cr_assert_eq(got->res.min_vram_mb, want->res.min_vram_mb);
	cr_assert_eq(got->res.cpu_milli, want->res.cpu_milli);
	cr_assert_eq(got->res.mem_mb, want->res.mem_mb);
	assert_strv_eq(got->res.models, got->res.n_models, want->res.models, want->res.n_models, "models");
	assert_strv_eq(got->argv, got->argc, want->argv, want->argc, "argv");
	assert_strv_eq(got->env, got->n_env, want->env, want->n_env, "env");
	cr_assert_eq(got->max_wait_ms, want->max_wait_ms);
	cr_assert_eq(got->state, want->state, "state %s, want %s", task_state_name(got->state),
		     task_state_name(want->state));
	cr_assert_eq(got->attempts, want->attempts);
	cr_assert_eq(got->has_exit_code, want->has_exit_code);
	if (want->has_exit_code)
		cr_assert_eq(got->exit_code, want->exit_code);
	assert_opt_str_eq(got->failure_reason, want->failure_reason, "failure_reason");
	assert_opt_str_eq(got->failure_message, want->failure_message, "failure_message");
	cr_assert_eq(got->created_ms, want->created_ms);
	cr_assert_eq(got->queued_ms, want->queued_ms);
	cr_assert_eq(got->assigned_ms, want->assigned_ms);
	cr_assert_eq(got->started_ms, want->started_ms);
	cr_assert_eq(got->ended_ms, want->ended_ms);
	cr_assert_str_eq(got->host, want->host);
	cr_assert_eq(got->n_gpus_assigned, want->n_gpus_assigned);
	for (int i = 0; i < want->n_gpus_assigned; i++)
		cr_assert_str_eq(got->gpu_uuids[i], want->gpu_uuids[i]);
	cr_assert_str_eq(got->executor, want->executor);
}

static struct task *get_ok(struct store *s, const char *id)
{
	struct task *t = NULL;
	struct err e = { 0 };
	cr_assert_eq(store_get_task(s, id, &t, &e), 0, "get %s: %s", id, e.msg);
	return t;
}

static void free_tasks(struct task **v, int n)
{
	for (int i = 0; i < n; i++)
		task_free(v[i]);
	free(v);
}

/* --- round trips --- */

Test(store, round_trip_every_field)
{
	struct store *s = open_store();
	struct task *want = full_task();
	wait_ok(s, store_insert_task(s, want));
	struct task *got = get_ok(s, want->id);
	assert_task_eq(got, want);
	task_free(got);
	task_free(want);
	store_close(s);
	assert_no_leaks();
}

Test(store, round_trip_empty_fields)
{
	struct store *s = open_store();
	struct task *want = minimal_task(1, "c");
	wait_ok(s, store_insert_task(s, want));
	struct task *got = get_ok(s, want->id);
	assert_task_eq(got, want);
	cr_assert_null(got->failure_reason);
	cr_assert_eq(got->has_exit_code, false);
	cr_assert_eq(got->n_gpus_assigned, 0);
	task_free(got);
	task_free(want);
	store_close(s);
	assert_no_leaks();
}

Test(store, get_unknown_task_is_not_found)
{
	struct store *s = open_store();
	struct task *t = NULL;
	struct err e = { 0 };
	cr_assert_eq(store_get_task(s, "0123456789abcdef0123", &t, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
	cr_assert_null(t);
	store_close(s);
	assert_no_leaks();
}

Test(store, open_reports_an_unusable_path)
{
	struct store *s = (void *)1;
	struct err e = { 0 };
	cr_assert_eq(store_open("/nonexistent-dir/for/gpunode/store.db", &s, &e), -1);
	cr_assert_null(s);
	cr_assert_eq(e.code, ERR_UNAVAILABLE);
	cr_assert_not_null(strstr(e.msg, "/nonexistent-dir/for/gpunode/store.db"), "message names the file: %s", e.msg);
	cr_assert_eq(store_open("", &s, &e), -1);
	cr_assert_eq(e.code, ERR_INVALID);
	assert_no_leaks();
}

/* --- updates and history --- */

Test(store, update_saves_mutable_fields_and_history_in_order)
{
	struct store *s = open_store();
	struct task *t = minimal_task(7, "c");
	wait_ok(s, store_insert_task(s, t));

	t->state = TASK_ASSIGNED;
	t->attempts = 1;
	t->assigned_ms = 1700000000100LL;
	str_copy(t->host, sizeof t->host, "local");
	t->n_gpus_assigned = 1;
	str_copy(t->gpu_uuids[0], sizeof t->gpu_uuids[0], "GPU-0");
	store_update_task(s, t, TASK_QUEUED, "placed on host local gpus GPU-0");
	t->state = TASK_RUNNING;
	t->started_ms = 1700000000200LL;
	str_copy(t->executor, sizeof t->executor, "process");
	store_update_task(s, t, TASK_ASSIGNED, NULL);
	t->state = TASK_FAILED;
	t->ended_ms = 1700000000300LL;
	t->exit_code = 3;
	t->has_exit_code = true;
	task_set_failure(t, "nonzero_exit", "exited with 3");
	wait_ok(s, store_update_task(s, t, TASK_RUNNING, "exited 3"));

	struct task *got = get_ok(s, t->id);
	assert_task_eq(got, t);
	task_free(got);

	struct task_event *ev;
	int n;
	struct err e = { 0 };
	cr_assert_eq(store_task_history(s, t->id, &ev, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 4);
	enum task_state from[] = { TASK_QUEUED, TASK_QUEUED, TASK_ASSIGNED, TASK_RUNNING };
	enum task_state to[] = { TASK_QUEUED, TASK_ASSIGNED, TASK_RUNNING, TASK_FAILED };
	const char *detail[] = { "submitted", "placed on host local gpus GPU-0", NULL, "exited 3" };
	for (int i = 0; i < n; i++) {
		cr_assert_eq(ev[i].from, from[i], "event %d from", i);
		cr_assert_eq(ev[i].to, to[i], "event %d to", i);
		assert_opt_str_eq(ev[i].detail, detail[i], "detail");
		cr_assert_gt(ev[i].ts_ms, 0);
		if (i > 0)
			cr_assert_geq(ev[i].ts_ms, ev[i - 1].ts_ms);
	}
	store_free_events(ev, n);
	task_free(t);
	store_close(s);
	assert_no_leaks();
}

Test(store, requeue_clears_placement)
{
	struct store *s = open_store();
	struct task *t = minimal_task(8, "c");
	t->state = TASK_RUNNING;
	str_copy(t->host, sizeof t->host, "h1");
	t->n_gpus_assigned = 2;
	str_copy(t->gpu_uuids[0], sizeof t->gpu_uuids[0], "GPU-a");
	str_copy(t->gpu_uuids[1], sizeof t->gpu_uuids[1], "GPU-b");
	wait_ok(s, store_insert_task(s, t));
	t->state = TASK_QUEUED;
	t->host[0] = '\0';
	t->n_gpus_assigned = 0;
	wait_ok(s, store_update_task(s, t, TASK_RUNNING, "requeued: host lost"));
	struct task *got = get_ok(s, t->id);
	cr_assert_str_eq(got->host, "");
	cr_assert_eq(got->n_gpus_assigned, 0);
	cr_assert_eq(got->state, TASK_QUEUED);
	task_free(got);
	task_free(t);
	store_close(s);
	assert_no_leaks();
}

Test(store, history_of_unknown_task_is_not_found)
{
	struct store *s = open_store();
	struct task_event *ev = (void *)1;
	int n = -1;
	struct err e = { 0 };
	cr_assert_eq(store_task_history(s, "0123456789abcdef0123", &ev, &n, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
	cr_assert_null(ev);
	cr_assert_eq(n, 0);
	store_close(s);
	assert_no_leaks();
}

/* --- failures are reported to their own waiters only --- */

Test(store, failed_writes_fail_alone)
{
	struct store *s = open_store();
	struct task *a = minimal_task(1, "c"), *b = minimal_task(2, "c"), *ghost = minimal_task(3, "c");
	struct task *bad = minimal_task(4, "c");
	free(bad->argv[0]);
	bad->argv[0] = xstrdup("\xff\xfe not utf-8");

	/* Enqueued back to back, so most likely one batch: the good writes in it
	 * must still commit. */
	uint64_t ta = store_insert_task(s, a);
	uint64_t tdup = store_insert_task(s, a);
	uint64_t tghost = store_update_task(s, ghost, TASK_QUEUED, "x");
	uint64_t tbad = store_insert_task(s, bad);
	uint64_t tb = store_insert_task(s, b);

	struct err e = { 0 };
	wait_ok(s, ta);
	cr_assert_eq(store_wait(s, tdup, &e), -1);
	cr_assert_eq(e.code, ERR_CONFLICT, "dup: %s", e.msg);
	cr_assert_eq(store_wait(s, tghost, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND, "ghost: %s", e.msg);
	cr_assert_eq(store_wait(s, tbad, &e), -1);
	cr_assert_eq(e.code, ERR_INVALID, "bad: %s", e.msg);
	wait_ok(s, tb);
	cr_assert_eq(store_wait(s, tb + 1000, &e), -1, "a ticket never issued is an error, not a hang");

	struct task *got;
	cr_assert_eq(store_get_task(s, bad->id, &got, &e), -1);
	cr_assert_eq(store_get_task(s, ghost->id, &got, &e), -1);
	task_free(get_ok(s, a->id));
	task_free(get_ok(s, b->id));
	struct task_event *ev;
	int n;
	cr_assert_eq(store_task_history(s, a->id, &ev, &n, &e), 0);
	cr_assert_eq(n, 1, "the duplicate insert left no history row");
	store_free_events(ev, n);

	task_free(a);
	task_free(b);
	task_free(ghost);
	task_free(bad);
	store_close(s);
	assert_no_leaks();
}

/* --- listing --- */

#define N_LIST 30

static struct store *store_with_list_tasks(void)
{
	struct store *s = open_store();
	uint64_t last = 0;
	for (unsigned i = 0; i < N_LIST; i++) {
		struct task *t = minimal_task(i, i % 2 ? "bob" : "alice");
		t->category = (enum task_category)(i % TASK_CAT_COUNT);
		t->state = i % 3 == 0 ? TASK_QUEUED : i % 3 == 1 ? TASK_RUNNING : TASK_SUCCEEDED;
		last = store_insert_task(s, t);
		task_free(t);
	}
	wait_ok(s, last);
	return s;
}

static int list_ok(struct store *s, const struct store_task_filter *f, struct task ***out)
{
	int n;
	struct err e = { 0 };
	cr_assert_eq(store_list_tasks(s, f, out, &n, &e), 0, "list: %s", e.msg);
	return n;
}

static void assert_newest_first(struct task **v, int n)
{
	for (int i = 1; i < n; i++)
		cr_assert_gt(strcmp(v[i - 1]->id, v[i]->id), 0, "row %d is not older than row %d", i, i - 1);
}

Test(store, list_filters)
{
	struct store *s = store_with_list_tasks();
	struct task **v;
	struct store_task_filter f = { .state = -1, .category = -1, .limit = 1000 };
	int n = list_ok(s, &f, &v);
	cr_assert_eq(n, N_LIST);
	assert_newest_first(v, n);
	char id[TASK_ID_LEN + 1];
	make_id(id, N_LIST - 1);
	cr_assert_str_eq(v[0]->id, id, "the newest task comes first");
	free_tasks(v, n);

	f.client = "alice";
	n = list_ok(s, &f, &v);
	cr_assert_eq(n, N_LIST / 2);
	assert_newest_first(v, n);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(v[i]->client, "alice");
	free_tasks(v, n);

	f.client = NULL;
	f.state = TASK_RUNNING;
	n = list_ok(s, &f, &v);
	cr_assert_eq(n, N_LIST / 3);
	for (int i = 0; i < n; i++)
		cr_assert_eq(v[i]->state, TASK_RUNNING);
	free_tasks(v, n);

	f.state = -1;
	f.category = TASK_CAT_FINETUNE;
	n = list_ok(s, &f, &v);
	int want = 0;
	for (unsigned i = 0; i < N_LIST; i++)
		want += i % TASK_CAT_COUNT == TASK_CAT_FINETUNE;
	cr_assert_eq(n, want);
	for (int i = 0; i < n; i++)
		cr_assert_eq(v[i]->category, TASK_CAT_FINETUNE);
	free_tasks(v, n);

	/* All three: i even (alice), i % 3 == 0 (queued), i % 4 == 0 (inference): i % 12 == 0. */
	f.client = "alice";
	f.state = TASK_QUEUED;
	f.category = TASK_CAT_INFERENCE;
	n = list_ok(s, &f, &v);
	cr_assert_eq(n, 3, "ids 0, 12, 24");
	make_id(id, 24);
	cr_assert_str_eq(v[0]->id, id);
	free_tasks(v, n);

	f.client = "nobody";
	n = list_ok(s, &f, &v);
	cr_assert_eq(n, 0);
	free_tasks(v, n);
	store_close(s);
	assert_no_leaks();
}

Test(store, list_pagination_visits_every_task_once)
{
	struct store *s = store_with_list_tasks();
	struct store_task_filter f = { .state = -1, .category = -1, .limit = 7 };
	char before[TASK_ID_LEN + 1] = "";
	int seen = 0, pages = 0;
	for (;;) {
		struct task **v;
		f.before_id = before[0] ? before : NULL;
		int n = list_ok(s, &f, &v);
		cr_assert_leq(n, 7);
		for (int i = 0; i < n; i++) {
			char want[TASK_ID_LEN + 1];
			make_id(want, (unsigned)(N_LIST - 1 - seen));
			cr_assert_str_eq(v[i]->id, want, "row %d of the walk", seen);
			seen++;
		}
		if (n > 0)
			str_copy(before, sizeof before, v[n - 1]->id);
		free_tasks(v, n);
		pages++;
		if (n < 7)
			break;
	}
	cr_assert_eq(seen, N_LIST);
	cr_assert_eq(pages, 5);

	/* Pagination composes with a filter. */
	f.client = "bob";
	f.limit = 4;
	char bob_before[TASK_ID_LEN + 1];
	make_id(bob_before, 21);
	f.before_id = bob_before;
	struct task **v;
	int n = list_ok(s, &f, &v);
	cr_assert_eq(n, 4);
	unsigned want_ids[] = { 19, 17, 15, 13 };
	for (int i = 0; i < n; i++) {
		char want[TASK_ID_LEN + 1];
		make_id(want, want_ids[i]);
		cr_assert_str_eq(v[i]->id, want);
	}
	free_tasks(v, n);
	store_close(s);
	assert_no_leaks();
}

Test(store, list_limit_is_clamped_and_filters_checked)
{
	struct store *s = store_with_list_tasks();
	struct task **v;
	struct store_task_filter f = { .state = -1, .category = -1, .limit = 0 };
	int n = list_ok(s, &f, &v);
	cr_assert_eq(n, 1, "limit 0 reads as 1");
	free_tasks(v, n);
	f.limit = 1000000;
	n = list_ok(s, &f, &v);
	cr_assert_eq(n, N_LIST, "a huge limit is clamped, not refused");
	free_tasks(v, n);

	struct err e = { 0 };
	f.state = TASK_STATE_COUNT;
	cr_assert_eq(store_list_tasks(s, &f, &v, &n, &e), -1);
	cr_assert_eq(e.code, ERR_INVALID);
	f.state = -1;
	f.category = 99;
	cr_assert_eq(store_list_tasks(s, &f, &v, &n, &e), -1);
	cr_assert_eq(e.code, ERR_INVALID);
	store_close(s);
	assert_no_leaks();
}

/* --- active tasks and counts --- */

struct collected {
	char ids[TASK_STATE_COUNT * 2][TASK_ID_LEN + 1];
	int n;
	int stop_after;
};

static int collect_cb(void *ctx, struct task *t)
{
	struct collected *c = ctx;
	str_copy(c->ids[c->n++], sizeof c->ids[0], t->id);
	task_free(t);
	return c->stop_after && c->n >= c->stop_after;
}

Test(store, load_active_returns_only_live_tasks_oldest_first)
{
	struct store *s = open_store();
	uint64_t last = 0;
	/* Two tasks per state, interleaved so age order differs from state order. */
	for (unsigned i = 0; i < TASK_STATE_COUNT * 2; i++) {
		struct task *t = minimal_task(i, "c");
		t->state = (enum task_state)(i % TASK_STATE_COUNT);
		last = store_insert_task(s, t);
		task_free(t);
	}
	wait_ok(s, last);

	struct collected c = { 0 };
	struct err e = { 0 };
	cr_assert_eq(store_load_active(s, collect_cb, &c, &e), 0, "%s", e.msg);
	int k = 0;
	for (unsigned i = 0; i < TASK_STATE_COUNT * 2; i++) {
		if (task_state_terminal((enum task_state)(i % TASK_STATE_COUNT)))
			continue;
		char want[TASK_ID_LEN + 1];
		make_id(want, i);
		cr_assert_lt(k, c.n, "missing live task %u", i);
		cr_assert_str_eq(c.ids[k], want);
		k++;
	}
	cr_assert_eq(c.n, k, "only non-terminal tasks are loaded");
	cr_assert_eq(k, 6, "queued, assigned and running, twice each");

	struct collected stop = { .stop_after = 2 };
	cr_assert_eq(store_load_active(s, collect_cb, &stop, &e), 0);
	cr_assert_eq(stop.n, 2, "a non-zero return stops the walk");
	store_close(s);
	assert_no_leaks();
}

Test(store, count_by_state)
{
	struct store *s = store_with_list_tasks();
	int64_t counts[TASK_STATE_COUNT];
	struct err e = { 0 };
	cr_assert_eq(store_count_by_state(s, counts, &e), 0, "%s", e.msg);
	for (int i = 0; i < TASK_STATE_COUNT; i++) {
		int64_t want = i == TASK_QUEUED || i == TASK_RUNNING || i == TASK_SUCCEEDED ? N_LIST / 3 : 0;
		cr_assert_eq(counts[i], want, "%s: %lld", task_state_name((enum task_state)i), (long long)counts[i]);
	}
	store_close(s);
	assert_no_leaks();
}

/* --- tokens --- */

Test(store, tokens)
{
	struct store *s = open_store();
	const char *hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	wait_ok(s, store_put_token(s, hash, "acme", "client"));
	char client[TASK_CLIENT_MAX], role[16];
	struct err e = { 0 };
	cr_assert_eq(store_find_token(s, hash, client, sizeof client, role, sizeof role, &e), 0, "%s", e.msg);
	cr_assert_str_eq(client, "acme");
	cr_assert_str_eq(role, "client");

	wait_ok(s, store_put_token(s, hash, "acme", "admin"));
	cr_assert_eq(store_find_token(s, hash, client, sizeof client, role, sizeof role, &e), 0);
	cr_assert_str_eq(role, "admin", "putting a token again replaces its role");

	cr_assert_eq(store_find_token(s, "00", client, sizeof client, role, sizeof role, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
	char tiny[3];
	cr_assert_eq(store_find_token(s, hash, client, sizeof client, tiny, sizeof tiny, &e), -1,
		     "a role that does not fit is refused, not cut");
	store_close(s);
	assert_no_leaks();
}

/* --- concurrency: group commit under 8 writers, reading their own writes --- */

#define N_THREADS 8
#define N_PER_THREAD 2000

struct writer_arg {
	struct store *s;
	int index;
	int failures;
};

static void *writer_thread(void *p)
{
	struct writer_arg *a = p;
	char client[16];
	snprintf(client, sizeof client, "client-%d", a->index);
	for (unsigned i = 0; i < N_PER_THREAD; i++) {
		struct task *t = minimal_task((unsigned)a->index * N_PER_THREAD + i, client);
		struct err e = { 0 };
		struct task *got = NULL;
		/* After store_wait the write is committed, so any read connection sees it. */
		if (store_wait(a->s, store_insert_task(a->s, t), &e) < 0 ||
		    store_get_task(a->s, t->id, &got, &e) < 0 || strcmp(got->client, client) != 0)
			a->failures++;
		task_free(got);
		task_free(t);
	}
	return NULL;
}

static int count_client_pages(struct store *s, const char *client)
{
	struct store_task_filter f = { .client = client, .state = -1, .category = -1, .limit = 1000 };
	char before[TASK_ID_LEN + 1];
	int total = 0, n;
	do {
		struct task **v;
		n = list_ok(s, &f, &v);
		total += n;
		if (n > 0) {
			str_copy(before, sizeof before, v[n - 1]->id);
			f.before_id = before;
		}
		free_tasks(v, n);
	} while (n == f.limit);
	return total;
}

Test(store, concurrent_inserts_are_all_durable_and_counted)
{
	struct store *s = open_store();
	pthread_t th[N_THREADS];
	struct writer_arg args[N_THREADS];
	for (int i = 0; i < N_THREADS; i++) {
		args[i] = (struct writer_arg){ .s = s, .index = i };
		cr_assert_eq(pthread_create(&th[i], NULL, writer_thread, &args[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(args[i].failures, 0, "thread %d had %d failed insert/read-back", i, args[i].failures);
	}
	int64_t counts[TASK_STATE_COUNT];
	struct err e = { 0 };
	cr_assert_eq(store_count_by_state(s, counts, &e), 0);
	cr_assert_eq(counts[TASK_QUEUED], N_THREADS * N_PER_THREAD);
	store_close(s);

	s = open_store(); /* and after a reopen, from the file */
	for (int i = 0; i < N_THREADS; i++) {
		char client[16];
		snprintf(client, sizeof client, "client-%d", i);
		cr_assert_eq(count_client_pages(s, client), N_PER_THREAD, "%s", client);
	}
	store_close(s);
	assert_no_leaks();
}

/* Callers that enqueue without waiting race the writer, which commits and
 * frees their ops as they arrive: each caller still sees its tickets rise in
 * the order it enqueued, and the last one covers all of them. */
#define N_TOKEN_OPS 5000

static void *token_thread(void *p)
{
	struct writer_arg *a = p;
	uint64_t prev = 0;
	for (int i = 0; i < N_TOKEN_OPS; i++) {
		char hash[32];
		snprintf(hash, sizeof hash, "%d-%d", a->index, i % 50);
		uint64_t t = store_put_token(a->s, hash, "c", "client");
		if (t <= prev)
			a->failures++;
		prev = t;
	}
	struct err e;
	if (store_wait(a->s, prev, &e) < 0)
		a->failures++;
	return NULL;
}

Test(store, enqueue_without_waiting_returns_increasing_tickets)
{
	struct store *s = open_store();
	pthread_t th[4];
	struct writer_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct writer_arg){ .s = s, .index = i };
		cr_assert_eq(pthread_create(&th[i], NULL, token_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(args[i].failures, 0, "thread %d", i);
	}
	store_close(s);
	assert_no_leaks();
}

/* --- lifecycle --- */

Test(store, close_drains_pending_writes)
{
	struct store *s = open_store();
	for (unsigned i = 0; i < 500; i++) {
		struct task *t = minimal_task(i, "c");
		store_insert_task(s, t); /* nobody waits */
		task_free(t);
	}
	store_close(s);
	s = open_store();
	int64_t counts[TASK_STATE_COUNT];
	struct err e = { 0 };
	cr_assert_eq(store_count_by_state(s, counts, &e), 0);
	cr_assert_eq(counts[TASK_QUEUED], 500);
	store_close(s);
	assert_no_leaks();
}

Test(store, reopen_keeps_everything)
{
	struct store *s = open_store();
	struct task *t = full_task();
	t->state = TASK_QUEUED;
	store_insert_task(s, t);
	t->state = TASK_ASSIGNED;
	store_update_task(s, t, TASK_QUEUED, "placed");
	store_put_token(s, "abcd", "acme", "agent");
	store_close(s);

	s = open_store();
	struct task *got = get_ok(s, t->id);
	assert_task_eq(got, t);
	task_free(got);
	struct task_event *ev;
	int n;
	struct err e = { 0 };
	cr_assert_eq(store_task_history(s, t->id, &ev, &n, &e), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(ev[1].to, TASK_ASSIGNED);
	store_free_events(ev, n);
	char client[TASK_CLIENT_MAX], role[16];
	cr_assert_eq(store_find_token(s, "abcd", client, sizeof client, role, sizeof role, &e), 0);
	cr_assert_str_eq(role, "agent");
	task_free(t);
	store_close(s);
	assert_no_leaks();
}

/* --- migrations --- */

static int64_t query_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(g_path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void exec_sql(const char *sql)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(g_path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

Test(store, migrations_are_recorded_once)
{
	cr_assert_geq(store_schema_version(), 1);
	store_close(open_store());
	store_close(open_store());
	cr_assert_eq(query_int("SELECT MAX(version) FROM schema_version"), store_schema_version());
	cr_assert_eq(query_int("SELECT COUNT(*) FROM schema_version"), store_schema_version(),
		     "one row per step, none added by a reopen");
	cr_assert_eq(query_int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tasks_client_id'"), 1);
	assert_no_leaks();
}

Test(store, refuses_a_newer_schema)
{
	store_close(open_store());
	char sql[128];
	snprintf(sql, sizeof sql, "INSERT INTO schema_version (version, applied_ms) VALUES (%d, 0)",
		 store_schema_version() + 1);
	exec_sql(sql);
	struct store *s = (void *)1;
	struct err e = { 0 };
	cr_assert_eq(store_open(g_path, &s, &e), -1);
	cr_assert_null(s);
	cr_assert_eq(e.code, ERR_UNAVAILABLE);
	cr_assert_not_null(strstr(e.msg, "newer"), "message says why: %s", e.msg);
	assert_no_leaks();
}

Test(store, uses_wal_and_a_private_file)
{
	store_close(open_store());
	cr_assert_eq(query_int("SELECT COUNT(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
	struct stat st;
	cr_assert_eq(stat(g_path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", (unsigned)(st.st_mode & 0777));
	assert_no_leaks();
}

/* --- crash durability --- */

#define CRASH_WRITERS 4
#define CRASH_MIN_ACKED 1000

struct crash_arg {
	struct store *s;
	int fd;
};

static void *crash_writer(void *p)
{
	struct crash_arg *a = p;
	for (;;) {
		struct task *t = task_new();
		task_id_new(t->id);
		str_copy(t->client, sizeof t->client, "crash");
		char *argv[] = { "sleep", "1" };
		t->argv = strv_dup(argv, 2);
		t->argc = 2;
		t->created_ms = t->queued_ms = now_ms();
		struct err e;
		if (store_wait(a->s, store_insert_task(a->s, t), &e) < 0)
			_exit(3);
		char line[TASK_ID_LEN + 2];
		snprintf(line, sizeof line, "%s\n", t->id);
		/* One write under PIPE_BUF is atomic: lines never interleave. */
		if (write(a->fd, line, TASK_ID_LEN + 1) != TASK_ID_LEN + 1)
			_exit(4);
		task_free(t);
	}
	return NULL;
}

static void crash_child(int fd)
{
	struct store *s;
	struct err e;
	if (store_open(g_path, &s, &e) < 0)
		_exit(2);
	struct crash_arg a = { .s = s, .fd = fd };
	pthread_t th[CRASH_WRITERS];
	for (int i = 0; i < CRASH_WRITERS; i++)
		pthread_create(&th[i], NULL, crash_writer, &a);
	for (;;)
		pause(); /* until the parent kills us */
}

/* Reads acknowledged ids from fd into ids; stops at EOF or after want ids. */
static int read_acked(int fd, char (*ids)[TASK_ID_LEN + 1], int cap, int have, int want)
{
	char line[TASK_ID_LEN + 1];
	size_t got = 0;
	while (have < want && have < cap) {
		ssize_t r = read(fd, line + got, sizeof line - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof line) {
			cr_assert_eq(line[TASK_ID_LEN], '\n');
			memcpy(ids[have], line, TASK_ID_LEN);
			ids[have][TASK_ID_LEN] = '\0';
			have++;
			got = 0;
		}
	}
	return have;
}

Test(store, acknowledged_inserts_survive_kill_9)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		crash_child(fds[1]);
	}
	close(fds[1]);

	enum { CAP = 1000000 };
	char(*ids)[TASK_ID_LEN + 1] = xcalloc(CAP, sizeof *ids);
	int n = read_acked(fds[0], ids, CAP, 0, CRASH_MIN_ACKED);
	cr_assert_eq(n, CRASH_MIN_ACKED, "the child acknowledged only %d inserts before dying", n);
	kill(pid, SIGKILL); /* mid-stream: its writers are inserting as fast as they can */
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child died of SIGKILL, not on its own");
	n = read_acked(fds[0], ids, CAP, n, CAP); /* acknowledgements still in the pipe */
	close(fds[0]);

	struct store *s = open_store();
	for (int i = 0; i < n; i++)
		task_free(get_ok(s, ids[i]));
	int64_t counts[TASK_STATE_COUNT];
	struct err e = { 0 };
	cr_assert_eq(store_count_by_state(s, counts, &e), 0);
	cr_assert_geq(counts[TASK_QUEUED], n);
	store_close(s);
	free(ids);
	assert_no_leaks();
}
