/* tasks.c — `gpunode tasks`: list tasks, newest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "strbuf.h"
#include "task.h"
#include "util.h"

static const char help[] =
	"Usage: gpunode tasks [OPTIONS]\n"
	"Lists tasks, newest first.\n"
	"\n"
	"Options:\n"
	"  --state S        only tasks in state S (queued assigned running succeeded failed\n"
	"                   cancelled expired lost)\n"
	"  --category C     only tasks of category C (inference training finetune batch)\n"
	"  --client NAME    only tasks of client NAME (admin token only)\n"
	"  --limit N        at most N tasks per page, 1..1000 (default 100)\n"
	"  --all            follow the pages: list every matching task\n"
	"  --json           print {\"tasks\":[...],\"next\":...} as the API returns it\n";

#define COMMAND_WIDTH 40

struct tasks_opts {
	const char *state, *category, *client;
	struct cli_int limit;
	bool all, json;
};

static char *page_path(const struct tasks_opts *o, const char *before)
{
	struct strbuf b = {0};
	strbuf_printf(&b, "/v1/tasks");
	client_query_add(&b, "state", o->state);
	client_query_add(&b, "category", o->category);
	client_query_add(&b, "client", o->client);
	if (o->limit.set) {
		char n[24];
		snprintf(n, sizeof n, "%lld", o->limit.value);
		client_query_add(&b, "limit", n);
	}
	client_query_add(&b, "before", before);
	return strbuf_take(&b, NULL);
}

/* Fetches one page, or every page with --all, into one {"tasks","next"}. */
static int fetch_tasks(struct client *c, const struct tasks_opts *o, json_t **out, struct err *e)
{
	json_t *all = NULL;
	char *before = NULL;
	for (;;) {
		char *path = page_path(o, before);
		json_t *page;
		int rc = client_json(c, "GET", path, NULL, &page, e);
		free(path);
		free(before);
		before = NULL;
		if (rc < 0) {
			json_decref(all);
			return rc;
		}
		json_t *tasks = json_object_get(page, "tasks");
		if (!json_is_array(tasks)) {
			json_decref(page);
			json_decref(all);
			return err_set(e, ERR_INTERNAL, "the node's answer has no \"tasks\" list");
		}
		const char *next = json_string_value(json_object_get(page, "next"));
		/* An empty page ends the walk too, so a node that keeps sending a
		 * "next" cannot loop us forever. */
		bool more = o->all && next && json_array_size(tasks) > 0;
		if (more)
			before = xstrdup(next);
		if (!all) {
			all = page;
		} else {
			json_array_extend(json_object_get(all, "tasks"), tasks);
			json_object_set(all, "next", json_object_get(page, "next"));
			json_decref(page);
		}
		if (!more)
			break;
	}
	*out = all;
	return 0;
}

/* "2" whole GPUs, or "250m" for a share of one. */
static const char *gpus_text(json_t *task, char *buf, size_t cap)
{
	json_int_t count = json_integer_value(json_object_get(task, "gpu_count"));
	json_t *milli = json_object_get(task, "gpu_milli");
	if (json_is_integer(milli) && json_integer_value(milli) < TASK_MILLI_FULL)
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT "m", json_integer_value(milli));
	else
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, count);
	return buf;
}

static void print_table(json_t *tasks)
{
	static const char *const headers[] = {"ID", "STATE", "CAT", "PRI", "GPUS", "HOST", "AGE", "COMMAND", NULL};
	struct cli_table t;
	cli_table_init(&t, headers);
	size_t i;
	json_t *task;
	json_array_foreach(tasks, i, task) {
		char pri[24], gpus[24], age[16], cmd[1024], cmd_short[COMMAND_WIDTH + 1];
		cli_table_add(&t, json_string_value(json_object_get(task, "id")),
			      json_string_value(json_object_get(task, "state")),
			      json_string_value(json_object_get(task, "category")),
			      cli_json_text(task, "priority", pri, sizeof pri), gpus_text(task, gpus, sizeof gpus),
			      json_string_value(json_object_get(task, "host")),
			      cli_format_age(json_string_value(json_object_get(task, "created_at")), age, sizeof age),
			      cli_truncate(cli_command_text(json_object_get(task, "command"), cmd, sizeof cmd), COMMAND_WIDTH, cmd_short,
					   sizeof cmd_short));
	}
	cli_table_print(&t);
	cli_table_free(&t);
}

int cli_tasks(int argc, char **argv)
{
	struct tasks_opts o = {0};
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--state", 0, CLI_OPT_STRING, &o.state, 0, 0},
		{"--category", 0, CLI_OPT_STRING, &o.category, 0, 0},
		{"--client", 0, CLI_OPT_STRING, &o.client, 0, 0},
		{"--limit", 0, CLI_OPT_INT, &o.limit, 1, 1000},
		{"--all", 0, CLI_OPT_FLAG, &o.all, 0, 0},
		{"--json", 0, CLI_OPT_FLAG, &o.json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "tasks", .help = help, .opts = opts, .conn = &conn, .max_args = 0};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	free(args.items);

	enum task_state st;
	enum task_category cat;
	if (o.state && task_state_parse(o.state, &st) < 0)
		return cli_usage_error("tasks", "--state: unknown state '%s'", o.state);
	if (o.category && task_category_parse(o.category, &cat) < 0)
		return cli_usage_error("tasks", "--category: unknown category '%s'", o.category);

	struct client c;
	if (cli_connect(&conn, &c) < 0)
		return CLI_FAIL;
	json_t *list = NULL;
	struct err e = {0};
	if (fetch_tasks(&c, &o, &list, &e) < 0) {
		rc = cli_fail("tasks", &e);
	} else {
		if (o.json)
			cli_print_json(list);
		else
			print_table(json_object_get(list, "tasks"));
		json_decref(list);
		rc = CLI_OK;
	}
	client_cleanup(&c);
	return rc;
}
