/* cancel.c — `gpunode cancel ID...`: cancel tasks; a queued one never runs,
 * a running one is stopped by its agent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
	"Usage: gpunode cancel ID... [OPTIONS]\n"
	"Cancels tasks. Goes on past a task that cannot be cancelled (already ended,\n"
	"unknown) and exits 1 if any could not be.\n"
	"\n"
	"Options:\n"
	"  --json  print a JSON array of the cancelled task objects\n";

int cli_cancel(int argc, char **argv)
{
	bool json = false;
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--json", 0, CLI_OPT_FLAG, &json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "cancel", .help = help, .opts = opts, .conn = &conn,
				    .min_args = 1, .max_args = -1, .args_name = "ID"};
	struct cli_list ids;
	struct client c;
	int rc;
	if (!cli_parse_connect(&cmd, argc, argv, &ids, &c, &rc))
		return rc;
	json_t *done = json_array();
	rc = CLI_OK;
	for (int i = 0; i < ids.n; i++) {
		char *path = cli_task_path(ids.items[i], "/cancel");
		json_t *task;
		struct err e = {0};
		if (client_json(&c, "POST", path, NULL, &task, &e) < 0) {
			/* Name the task, unless the node's message already does. */
			bool named = strstr(e.msg, ids.items[i]) != NULL;
			cli_error("cancel", "%s%s%s", named ? "" : ids.items[i], named ? "" : ": ", e.msg);
			rc = CLI_FAIL;
		} else {
			if (!json)
				printf("%s %s\n", ids.items[i], json_string_value(json_object_get(task, "state")));
			json_array_append_new(done, task);
		}
		free(path);
	}
	if (json)
		cli_print_json(done);
	json_decref(done);
	free(ids.items);
	client_cleanup(&c);
	return rc;
}
