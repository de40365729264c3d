/* gpus.c — `gpunode gpus`: the pool's GPUs, one line each. Sub-verbs that
 * act on one GPU (clear, drain, inject-fault) go in the table below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
	"Usage: gpunode gpus [OPTIONS]\n"
	"Lists the GPUs of every host in the pool. Simulated GPUs show \"(sim)\"\n"
	"after the model; ALLOC is the milli-GPU share in use (1000m = the whole GPU).\n"
	"\n"
	"Options:\n"
	"  --json  print the API's {\"gpus\":[...]}\n";

/* `gpunode gpus SUBVERB ...`; none yet. */
static const struct cli_verb gpus_subverbs[] = {
	{NULL, NULL, NULL},
};

static void print_gpus(json_t *answer)
{
	static const char *const headers[] = {"HOST", "IDX", "UUID", "MODEL", "VRAM", "ALLOC", "HEALTH", NULL};
	struct cli_table t;
	cli_table_init(&t, headers);
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(answer, "gpus"), i, g) {
		char idx[24], model[128], vram[32], alloc[32], health[64];
		const char *name = json_string_value(json_object_get(g, "model"));
		snprintf(model, sizeof model, "%s%s", name ? name : "-",
			 json_is_true(json_object_get(g, "simulated")) ? " (sim)" : "");
		snprintf(alloc, sizeof alloc, "%" JSON_INTEGER_FORMAT "m",
			 json_integer_value(json_object_get(g, "milli_allocated")));
		const char *h = json_string_value(json_object_get(g, "health"));
		snprintf(health, sizeof health, "%s%s", h ? h : "-",
			 json_is_true(json_object_get(g, "draining")) ? ",draining" : "");
		cli_table_add(&t, json_string_value(json_object_get(g, "host")),
			      cli_json_text(g, "index", idx, sizeof idx), json_string_value(json_object_get(g, "uuid")),
			      model, cli_format_mib(json_integer_value(json_object_get(g, "vram_mb")), vram, sizeof vram),
			      alloc, health);
	}
	cli_table_print(&t);
	cli_table_free(&t);
}

int cli_gpus(int argc, char **argv)
{
	int rc;
	if (cli_dispatch_subverb("gpus", gpus_subverbs, argc, argv, &rc))
		return rc;
	bool json = false;
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--json", 0, CLI_OPT_FLAG, &json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "gpus", .help = help, .opts = opts, .conn = &conn, .max_args = 0};
	struct cli_list args;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	free(args.items);
	return cli_call_and_print(&conn, "GET", "/v1/gpus", NULL, json, print_gpus);
}
