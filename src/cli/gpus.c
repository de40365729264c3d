/* gpus.c — `gpunode gpus`: the pool's GPUs with their health, one line
 * each, and the operator's verbs on one GPU: drain, undrain, clear,
 * inject-fault. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
	"Usage: gpunode gpus [OPTIONS]\n"
	"       gpunode gpus drain|undrain|clear GPU [OPTIONS]\n"
	"       gpunode gpus inject-fault GPU XID [OPTIONS]\n"
	"Lists the GPUs of every host in the pool with their health. Simulated GPUs\n"
	"show \"(sim)\" after the model; ALLOC is the milli-GPU share in use (1000m =\n"
	"the whole GPU). HEALTH is healthy, degraded (finishes its work, takes only\n"
	"short tasks) or unhealthy (no work; its tasks were moved); REASON says why and\n"
	"ACTION what to do (reboot_host, hardware_inspection, check_application,\n"
	"check_cooling).\n"
	"\n"
	"Sub-commands (GPU is its UUID, as listed):\n"
	"  drain GPU             no new work on it; what runs finishes (kept across node restarts)\n"
	"  undrain GPU           takes work again\n"
	"  clear GPU             forget an unhealthy/degraded state after a repair (the agent\n"
	"                        clears it by itself when the host reboots)\n"
	"  inject-fault GPU XID  fault drill: the GPU's agent logs an NVIDIA Xid for it, as\n"
	"                        the driver would (to its --kmsg file, or straight to the\n"
	"                        parser for simulated GPUs), and everything reacts for real\n"
	"\n"
	"Options:\n"
	"  --json  print the API's JSON\n";

static void health_cell(json_t *g, char *buf, size_t cap)
{
	const char *h = json_string_value(json_object_get(g, "health"));
	snprintf(buf, cap, "%s%s", h ? h : "-", json_is_true(json_object_get(g, "draining")) ? ",draining" : "");
}

static void print_gpus(json_t *answer)
{
	static const char *const headers[] = {"HOST", "IDX", "UUID", "MODEL", "VRAM", "ALLOC", "HEALTH", "ACTION",
					      "REASON", NULL};
	struct cli_table t;
	cli_table_init(&t, headers);
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(answer, "gpus"), i, g) {
		char idx[24], model[128], vram[32], alloc[32], health[64];
		const char *name = json_string_value(json_object_get(g, "model"));
		const char *reason = json_string_value(json_object_get(g, "reason"));
		const char *action = json_string_value(json_object_get(g, "action"));
		snprintf(model, sizeof model, "%s%s", name ? name : "-",
			 json_is_true(json_object_get(g, "simulated")) ? " (sim)" : "");
		snprintf(alloc, sizeof alloc, "%" JSON_INTEGER_FORMAT "m",
			 json_integer_value(json_object_get(g, "milli_allocated")));
		health_cell(g, health, sizeof health);
		cli_table_add(&t, json_string_value(json_object_get(g, "host")),
			      cli_json_text(g, "index", idx, sizeof idx), json_string_value(json_object_get(g, "uuid")),
			      model, cli_format_mib(json_integer_value(json_object_get(g, "vram_mb")), vram, sizeof vram),
			      alloc, health, action && strcmp(action, "none") != 0 ? action : "-", reason ? reason : "-");
	}
	cli_table_print(&t);
	cli_table_free(&t);
}

static void print_one(json_t *g)
{
	char health[64];
	health_cell(g, health, sizeof health);
	const char *reason = json_string_value(json_object_get(g, "reason"));
	printf("%s %s%s%s\n", json_string_value(json_object_get(g, "uuid")), health, reason ? ": " : "",
	       reason ? reason : "");
}

static void print_drill(json_t *r)
{
	printf("Xid %" JSON_INTEGER_FORMAT " sent to the agent of host %s for %s; watch it with: gpunode gpus\n",
	       json_integer_value(json_object_get(r, "xid")), json_string_value(json_object_get(r, "host")),
	       json_string_value(json_object_get(r, "gpu")));
}

/* `gpunode gpus VERB GPU [XID]`: argv[0] is the sub-verb. */
static int gpu_verb(int argc, char **argv)
{
	const char *verb = argv[0];
	bool inject = strcmp(verb, "inject-fault") == 0, json = false;
	char name[32];
	snprintf(name, sizeof name, "gpus %s", verb);
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--json", 0, CLI_OPT_FLAG, &json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = name, .help = help, .opts = opts, .conn = &conn, .min_args = inject ? 2 : 1,
				    .max_args = inject ? 2 : 1, .args_name = inject ? "GPU XID" : "GPU"};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	json_t *body = NULL;
	if (inject) {
		char *end;
		long xid = strtol(args.items[1], &end, 10);
		if (*end || end == args.items[1] || xid < 1 || xid > 1000) {
			cli_error(name, "XID %s: want an NVIDIA Xid number, 1..1000 (e.g. 79: fallen off the bus)",
				  args.items[1]);
			free(args.items);
			return CLI_USAGE;
		}
		body = json_pack("{s:i}", "xid", (int)xid);
	}
	char path[200];
	snprintf(path, sizeof path, "/v1/gpus/%.100s/%s", args.items[0], verb);
	free(args.items);
	rc = cli_call_and_print(&conn, "POST", path, body, json, inject ? print_drill : print_one);
	json_decref(body);
	return rc;
}

static const struct cli_verb gpus_subverbs[] = {
	{"drain", gpu_verb, "no new work on a GPU; what runs finishes"},
	{"undrain", gpu_verb, "a drained GPU takes work again"},
	{"clear", gpu_verb, "forget a GPU's unhealthy/degraded state after a repair"},
	{"inject-fault", gpu_verb, "fault drill: log an Xid for a GPU"},
	{NULL, NULL, NULL},
};

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
