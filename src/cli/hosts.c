/* hosts.c — `gpunode hosts`: the pool's hosts, one line each. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static const char help[] =
	"Usage: gpunode hosts [OPTIONS]\n"
	"Lists the hosts in the pool: whether their agent is online, when it was\n"
	"last heard from, and the milli-GPU capacity in use (1000m = one GPU).\n"
	"\n"
	"Options:\n"
	"  --json  print the API's {\"hosts\":[...]}\n";

static void print_hosts(json_t *answer)
{
	static const char *const headers[] = {"HOST", "ONLINE", "LAST SEEN", "GPUS", "ALLOC", NULL};
	struct cli_table t;
	cli_table_init(&t, headers);
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(answer, "hosts"), i, h) {
		char seen[32], gpus[24], alloc[64];
		char age[16];
		const char *last = json_string_value(json_object_get(h, "last_seen"));
		if (last)
			snprintf(seen, sizeof seen, "%s ago", cli_format_age(last, age, sizeof age));
		/* "gpus" is a count; a list of GPUs is counted too. */
		json_t *g = json_object_get(h, "gpus");
		snprintf(gpus, sizeof gpus, "%zu", json_is_array(g) ? json_array_size(g) : (size_t)json_integer_value(g));
		snprintf(alloc, sizeof alloc, "%" JSON_INTEGER_FORMAT "m/%" JSON_INTEGER_FORMAT "m",
			 json_integer_value(json_object_get(h, "milli_allocated")),
			 json_integer_value(json_object_get(h, "milli_capacity")));
		cli_table_add(&t, json_string_value(json_object_get(h, "id")),
			      json_is_true(json_object_get(h, "online")) ? "yes" : "no", last ? seen : NULL, gpus, alloc);
	}
	cli_table_print(&t);
	cli_table_free(&t);
}

int cli_hosts(int argc, char **argv)
{
	bool json = false;
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--json", 0, CLI_OPT_FLAG, &json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "hosts", .help = help, .opts = opts, .conn = &conn, .max_args = 0};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	free(args.items);
	return cli_call_and_print(&conn, "GET", "/v1/hosts", NULL, json, print_hosts);
}
