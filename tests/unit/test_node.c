/* Unit tests of the node core with a real store and its real scheduler
 * thread, driven through the same calls the HTTP routes make (no HTTP). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node.h"
#include "util.h"

static char dir[64];
static struct node *n;

static void open_node(int64_t grace_ms, int max_attempts)
{
	log_set_quiet(true);
	strcpy(dir, "/tmp/gpunode-node-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	struct node_config cfg;
	node_config_default(&cfg);
	snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s/data", dir);
	cfg.host_grace_ms = grace_ms;
	cfg.max_attempts = max_attempts;
	struct err e;
	cr_assert_eq(node_open(&cfg, &n, &e), 0, "%s", e.msg);
}

static void setup(void) { open_node(10000, 3); }

static void teardown(void)
{
	node_close(n);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void register_host(const char *host, int gpus, const char *held_id)
{
	json_t *g = json_array();
	for (int i = 0; i < gpus; i++) {
		char uuid[64];
		snprintf(uuid, sizeof uuid, "GPU-%s-%d", host, i);
		json_array_append_new(g, json_pack("{s:s, s:i, s:s, s:I}", "uuid", uuid, "index", i, "model", "H100-80GB",
						   "vram_mb", (json_int_t)81920));
	}
	json_t *tasks = json_array();
	if (held_id)
		json_array_append_new(tasks, json_pack("{s:s, s:s}", "id", held_id, "state", "running"));
	json_t *req = json_pack("{s:s, s:o, s:o}", "host", host, "gpus", g, "tasks", tasks), *resp;
	struct err e;
	cr_assert_eq(node_agent_register(n, req, &resp, &e), 0, "%s", e.msg);
	json_decref(req);
	json_decref(resp);
}

static char *submit(const char *client, int64_t max_wait_ms)
{
	struct task *t = task_new(), *copy;
	char *argv[] = {"true"};
	t->argv = strv_dup(argv, 1);
	t->argc = 1;
	t->max_wait_ms = max_wait_ms;
	uint64_t ticket;
	struct err e;
	cr_assert_eq(node_submit(n, t, client, &copy, &ticket, &e), 0, "%s", e.msg);
	cr_assert_eq(store_wait(n->store, ticket, &e), 0, "%s", e.msg);
	char *id = xstrdup(copy->id);
	task_free(copy);
	return id;
}

/* The task as the store has it (what every reader sees). */
static struct task *stored(const char *id)
{
	struct task *t;
	struct err e;
	cr_assert_eq(node_get_task(n, id, NULL, &t, &e), 0, "%s", e.msg);
	return t;
}

static void wait_state(const char *id, enum task_state want, int attempts)
{
	for (int i = 0; i < 500; i++) {
		struct task *t = stored(id);
		bool ok = t->state == want && (attempts < 0 || t->attempts == attempts);
		task_free(t);
		if (ok)
			return;
		usleep(10000);
	}
	struct task *t = stored(id);
	cr_assert_fail("task %s: want %s (attempts %d), have %s (attempts %d)", id, task_state_name(want), attempts,
		       task_state_name(t->state), t->attempts);
}

static void report(const char *host, const char *id, const char *event, int code)
{
	json_t *r = json_pack("[{s:s, s:s, s:i, s:s}]", "task_id", id, "event", event, "exit_code", code, "executor",
			      "process");
	uint64_t ticket;
	struct err e;
	cr_assert_eq(node_agent_reports(n, host, r, &ticket, &e), 0, "%s", e.msg);
	cr_assert_eq(store_wait(n->store, ticket, &e), 0);
	json_decref(r);
}

/* Commands the agent would receive now (only durable ones are visible). */
static json_t *commands(const char *host)
{
	json_t *resp;
	struct err e;
	cr_assert_eq(node_agent_commands(n, host, 0, &resp, &e), 0, "%s", e.msg);
	json_t *cmds = json_incref(json_object_get(resp, "commands"));
	json_decref(resp);
	return cmds;
}

TestSuite(node, .init = setup, .fini = teardown);

Test(node, a_task_is_placed_started_and_finished_with_its_history)
{
	register_host("h1", 1, NULL);
	char *id = submit("alice", 0);
	wait_state(id, TASK_ASSIGNED, 1);
	json_t *cmds = commands("h1");
	cr_assert_eq(json_array_size(cmds), 1, "one start command, visible once committed");
	json_t *c0 = json_array_get(cmds, 0);
	cr_assert_str_eq(json_string_value(json_object_get(c0, "type")), "start");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(c0, "task"), "id")), id);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(json_object_get(c0, "task"), "gpus"), 0)),
			 "GPU-h1-0");
	json_decref(cmds);
	report("h1", id, "running", 0);
	report("h1", id, "exited", 0);
	struct task *t = stored(id);
	cr_assert_eq(t->state, TASK_SUCCEEDED);
	cr_assert(t->has_exit_code && t->exit_code == 0);
	cr_assert_str_eq(t->executor, "process");
	task_free(t);
	report("h1", id, "exited", 1); /* a resent report changes nothing */
	t = stored(id);
	cr_assert_eq(t->state, TASK_SUCCEEDED);
	task_free(t);
	free(id);
}

Test(node, a_client_cannot_see_or_cancel_another_clients_task)
{
	char *id = submit("alice", 0);
	struct task *t, *copy;
	struct err e;
	uint64_t ticket;
	cr_assert_eq(node_get_task(n, id, "bob", &t, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
	cr_assert_eq(node_cancel(n, id, "bob", &copy, &ticket, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
	cr_assert_eq(node_cancel(n, id, "alice", &copy, &ticket, &e), 0, "%s", e.msg);
	task_free(copy);
	cr_assert_eq(store_wait(n->store, ticket, &e), 0);
	cr_assert_eq(node_cancel(n, id, NULL, &copy, &ticket, &e), -1);
	cr_assert_eq(e.code, ERR_CONFLICT, "cancelling an ended task is a conflict");
	cr_assert_eq(node_get_task(n, "not-an-id", NULL, &t, &e), -1);
	cr_assert_eq(e.code, ERR_INVALID);
	free(id);
}

Test(node, a_task_not_placed_within_its_max_wait_expires)
{
	char *id = submit("alice", 1000); /* no host at all */
	wait_state(id, TASK_EXPIRED, 0);
	struct task *t = stored(id);
	cr_assert_str_eq(t->failure_reason, "expired");
	task_free(t);
	free(id);
}

Test(node, an_agent_that_restarts_without_a_task_gets_it_requeued_and_placed_again)
{
	register_host("h1", 1, NULL);
	char *id = submit("alice", 0);
	wait_state(id, TASK_ASSIGNED, 1);
	register_host("h1", 1, NULL); /* restarted, holds nothing */
	wait_state(id, TASK_ASSIGNED, 2);
	register_host("h1", 1, id); /* restarted again, still holds it: kept */
	usleep(200000);
	struct task *t = stored(id);
	cr_assert_eq(t->state, TASK_ASSIGNED);
	cr_assert_eq(t->attempts, 2);
	task_free(t);
	free(id);
}

Test(node, a_task_that_keeps_losing_its_host_ends_lost_after_max_attempts)
{
	register_host("h1", 1, NULL);
	char *id = submit("alice", 0);
	for (int attempt = 1; attempt <= 3; attempt++) {
		wait_state(id, TASK_ASSIGNED, attempt);
		register_host("h1", 1, NULL); /* the agent lost it */
	}
	wait_state(id, TASK_LOST, 3);
	struct task *t = stored(id);
	cr_assert_str_eq(t->failure_reason, "lost");
	cr_assert(strstr(t->failure_message, "3 attempts"), "%s", t->failure_message);
	task_free(t);
	free(id);
}

Test(node, a_silent_host_is_declared_lost_and_its_task_moves, .init = NULL)
{
	open_node(300, 3);
	register_host("h1", 1, NULL);
	char *id = submit("alice", 0);
	wait_state(id, TASK_ASSIGNED, 1);
	report("h1", id, "running", 0);
	register_host("h2", 1, NULL);
	/* h2 keeps its heartbeat; h1 goes silent. */
	struct err e;
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(node_agent_heartbeat(n, "h2", &e), 0);
		struct task *t = stored(id);
		bool moved = t->state == TASK_ASSIGNED && strcmp(t->host, "h2") == 0;
		task_free(t);
		if (moved)
			break;
		usleep(20000);
	}
	struct task *t = stored(id);
	cr_assert_str_eq(t->host, "h2");
	cr_assert_eq(t->attempts, 2);
	task_free(t);
	cr_assert_eq(node_agent_heartbeat(n, "h1", &e), -1);
	cr_assert_eq(e.code, ERR_CONFLICT, "a host declared lost must register again");
	report("h2", id, "exited", 3);
	t = stored(id);
	cr_assert_eq(t->state, TASK_FAILED);
	cr_assert_str_eq(t->failure_reason, "nonzero_exit");
	task_free(t);
	free(id);
}

Test(node, acknowledged_tasks_are_back_after_a_restart)
{
	char *a = submit("alice", 0), *b = submit("bob", 0);
	node_close(n);
	char data[128];
	snprintf(data, sizeof data, "%s/data", dir);
	struct node_config cfg;
	node_config_default(&cfg);
	str_copy(cfg.data_dir, sizeof cfg.data_dir, data);
	struct err e;
	cr_assert_eq(node_open(&cfg, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(queue_len(n->queue), 2, "both queued tasks reloaded");
	register_host("h1", 2, NULL);
	wait_state(a, TASK_ASSIGNED, 1);
	wait_state(b, TASK_ASSIGNED, 1);
	free(a);
	free(b);
}
