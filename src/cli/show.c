/* show.c — `gpunode show ID`: one task, every field; with --history, the
 * state changes that explain how it got there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
	"Usage: gpunode show ID [OPTIONS]\n"
	"Shows one task.\n"
	"\n"
	"Options:\n"
	"  --history  also show the task's state changes\n"
	"  --json     print the API's task object (with --history, plus an \"events\" list)\n";

/* "KEY=VALUE KEY2=VALUE2", or "-" when empty. */
static const char *env_text(json_t *env, char *buf, size_t cap)
{
	if (!json_is_object(env) || json_object_size(env) == 0)
		return "-";
	size_t used = 0;
	buf[0] = '\0';
	const char *key;
	json_t *v;
	json_object_foreach(env, key, v) {
		const char *val = json_string_value(v);
		int n = snprintf(buf + used, cap - used, "%s%s=%s", used ? " " : "", key, val ? val : "");
		if (n < 0 || (size_t)n >= cap - used)
			break;
		used += (size_t)n;
	}
	return buf;
}

/* Every field of the task object as "key: value", in the API's order. */
static void print_fields(json_t *task)
{
	size_t width = 0;
	const char *key;
	json_t *v;
	json_object_foreach(task, key, v)
		if (strlen(key) > width)
			width = strlen(key);
	json_object_foreach(task, key, v) {
		char buf[4096];
		const char *text = strcmp(key, "env") == 0 ? env_text(v, buf, sizeof buf)
				   : strcmp(key, "command") == 0 ? cli_command_text(v, buf, sizeof buf)
								  : cli_json_text(task, key, buf, sizeof buf);
		printf("%s:%*s %s\n", key, (int)(width - strlen(key)), "", text);
	}
}

static void print_history(json_t *events)
{
	static const char *const headers[] = {"AT", "FROM", "TO", "DETAIL", NULL};
	struct cli_table t;
	cli_table_init(&t, headers);
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		cli_table_add(&t, json_string_value(json_object_get(ev, "at")),
			      json_string_value(json_object_get(ev, "from")),
			      json_string_value(json_object_get(ev, "to")),
			      json_string_value(json_object_get(ev, "detail")));
	}
	printf("\nhistory:\n");
	cli_table_print(&t);
	cli_table_free(&t);
}

int cli_show(int argc, char **argv)
{
	bool history = false, json = false;
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--history", 0, CLI_OPT_FLAG, &history, 0, 0},
		{"--json", 0, CLI_OPT_FLAG, &json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "show", .help = help, .opts = opts, .conn = &conn,
				    .min_args = 1, .max_args = 1, .args_name = "ID"};
	struct cli_list args;
	struct client c;
	int rc;
	if (!cli_parse_connect(&cmd, argc, argv, &args, &c, &rc))
		return rc;
	struct err e = {0};
	json_t *task = NULL, *hist = NULL;
	char *path = cli_task_path(args.items[0], "");
	char *hist_path = cli_task_path(args.items[0], "/history");
	if (client_json(&c, "GET", path, NULL, &task, &e) < 0 ||
	    (history && client_json(&c, "GET", hist_path, NULL, &hist, &e) < 0)) {
		rc = cli_fail("show", &e);
		goto out;
	}
	json_t *events = json_object_get(hist, "events");
	if (json) {
		if (history)
			json_object_set_new(task, "events", events ? json_incref(events) : json_array());
		cli_print_json(task);
	} else {
		print_fields(task);
		if (history)
			print_history(events);
	}
	rc = CLI_OK;
out:
	json_decref(task);
	json_decref(hist);
	free(path);
	free(hist_path);
	free(args.items);
	client_cleanup(&c);
	return rc;
}
