/* sim.c — `gpunode sim openb`: replay an openb arrival sequence through the
 * real scheduler (src/sim_openb.c) and print the allocation curve. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "sim.h"

static const char sim_help[] =
	"Usage: gpunode sim SUB-COMMAND [OPTIONS]\n"
	"Replays a trace through the node's own scheduler on a virtual cluster.\n"
	"\n"
	"Sub-commands:\n";

static const char openb_help[] =
	"Usage: gpunode sim openb --nodes FILE (--sequence FILE | --pods FILE --seed N [--tune 1.3])\n"
	"                         --placements OUT [--policy frag|bestfit] [--json]\n"
	"The openb packing experiment (protocol of the FGD paper, ATC'23): pods arrive one\n"
	"by one, never leave, and a pod that fits nowhere is dropped. Prints the GPU\n"
	"allocation (% of capacity) at arrived = 0..130 % of capacity; bucket 100 is the\n"
	"headline number. The frag policy protects room for the workload's most common\n"
	"pod shapes (95 % of GPU pods), counted in the pod list (--pods) or the sequence,\n"
	"as FGD does.\n"
	"\n"
	"Options:\n"
	"  --nodes FILE       node list: openb_node_list_gpu_node.csv or sequences/nodes.csv\n"
	"  --sequence FILE    arrival sequence (pod_idx,name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec)\n"
	"  --pods FILE        pod list (openb_pod_list_*.csv): sorted by name, shuffled with --seed,\n"
	"                     then tuned up to --tune x GPU capacity (own RNG)\n"
	"  --seed N           shuffle seed for --pods\n"
	"  --tune X           arrival target as a multiple of GPU capacity (default 1.3)\n"
	"  --placements OUT   one line per pod: pod_idx,node_idx,gpus ('-'-separated; node -1: dropped)\n"
	"  --policy P         frag | bestfit (default: the node's default, frag)\n"
	"  --json             print a JSON summary with the whole curve\n";

struct sim_openb_args {
	const char *nodes, *sequence, *pods, *tune, *placements, *policy;
	struct cli_int seed;
	bool json;
};

static int sim_check_args(const struct sim_openb_args *a, enum sched_policy *policy, double *tune)
{
	if (!a->nodes)
		return cli_usage_error("sim openb", "--nodes is required");
	if (!a->placements)
		return cli_usage_error("sim openb", "--placements is required");
	if (!a->sequence == !a->pods)
		return cli_usage_error("sim openb", "give exactly one of --sequence and --pods");
	if (a->pods && !a->seed.set)
		return cli_usage_error("sim openb", "--pods needs --seed");
	if (a->sequence && (a->seed.set || a->tune))
		return cli_usage_error("sim openb", "--seed and --tune go with --pods, not --sequence");
	struct sched_config def;
	sched_config_default(&def);
	*policy = def.policy;
	if (a->policy && sched_policy_parse(a->policy, policy) < 0)
		return cli_usage_error("sim openb", "--policy: expected frag or bestfit, got '%s'", a->policy);
	*tune = 1.3;
	if (a->tune) {
		char *end;
		errno = 0;
		*tune = strtod(a->tune, &end);
		if (errno || *end || !(*tune > 0 && *tune <= 10))
			return cli_usage_error("sim openb", "--tune: expected a number in (0, 10], got '%s'", a->tune);
	}
	return CLI_OK;
}

static void sim_print_human(const struct sim_result *r, enum sched_policy policy)
{
	printf("policy %s: %zu pods, %zu placed, %zu dropped; capacity %lld GPU-milli\n", sched_policy_name(policy),
	       r->pods, r->placed, r->dropped, (long long)r->capacity);
	printf("arrived%%  alloc%%\n");
	for (int b = 0; b < SIM_BUCKETS; b++) {
		double v = sim_bucket(r, b);
		if (!isnan(v))
			printf("%8d  %6.2f\n", b, v);
	}
	printf("alloc%% at arrived 100%%: %.2f\n", sim_bucket(r, 100));
}

static void sim_print_json(const struct sim_result *r, enum sched_policy policy, const char *source, double seconds)
{
	json_t *curve = json_array();
	for (int b = 0; b < SIM_BUCKETS; b++) {
		double v = sim_bucket(r, b);
		json_array_append_new(curve, isnan(v) ? json_null() : json_real(round(v * 100) / 100));
	}
	double b100 = sim_bucket(r, 100);
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:f, s:o}", "policy",
			      sched_policy_name(policy), "source", source, "pods", (json_int_t)r->pods, "placed",
			      (json_int_t)r->placed, "dropped", (json_int_t)r->dropped, "capacity_milli",
			      (json_int_t)r->capacity, "arrived_milli", (json_int_t)r->arrived, "used_milli",
			      (json_int_t)r->used, "alloc_pct_at_100", isnan(b100) ? json_null() : json_real(b100), "seconds",
			      seconds, "curve", curve);
	cli_print_json(o);
	json_decref(o);
}

static int sim_openb(int argc, char **argv)
{
	struct sim_openb_args a = { 0 };
	const struct cli_opt opts[] = {
		{"--nodes", 0, CLI_OPT_STRING, &a.nodes, 0, 0},
		{"--sequence", 0, CLI_OPT_STRING, &a.sequence, 0, 0},
		{"--pods", 0, CLI_OPT_STRING, &a.pods, 0, 0},
		{"--seed", 0, CLI_OPT_INT, &a.seed, 0, INT64_MAX},
		{"--tune", 0, CLI_OPT_STRING, &a.tune, 0, 0},
		{"--placements", 0, CLI_OPT_STRING, &a.placements, 0, 0},
		{"--policy", 0, CLI_OPT_STRING, &a.policy, 0, 0},
		{"--json", 0, CLI_OPT_FLAG, &a.json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "sim openb", .help = openb_help, .opts = opts, .max_args = 0};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	free(args.items);
	enum sched_policy policy = SCHED_POLICY_FRAG;
	double tune = 1.3;
	if ((rc = sim_check_args(&a, &policy, &tune)) != CLI_OK)
		return rc;

	struct err e = { 0 };
	struct sim_nodes nodes = { 0 };
	struct sim_pods list = { 0 }, seq = { 0 };
	FILE *out = NULL;
	rc = CLI_FAIL;
	if (sim_read_nodes(a.nodes, &nodes, &e) < 0)
		goto fail;
	if (a.sequence) {
		if (sim_read_sequence(a.sequence, &seq, &e) < 0)
			goto fail;
	} else {
		if (sim_read_pods(a.pods, &list, &e) < 0)
			goto fail;
		sim_arrival_sequence(&list, (uint64_t)a.seed.value, tune, sim_capacity(&nodes), &seq);
	}
	out = fopen(a.placements, "w");
	if (!out) {
		err_set(&e, ERR_INVALID, "%s: %s", a.placements, strerror(errno));
		goto fail;
	}
	struct sim_openb_opts o = { .shapes_from = a.pods ? &list : NULL, .placements = out };
	sched_config_default(&o.cfg);
	o.cfg.policy = policy;
	struct sim_result r;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sim_openb_run(&nodes, &seq, &o, &r, &e) < 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (fclose(out) != 0) {
		out = NULL;
		err_set(&e, ERR_INVALID, "%s: %s", a.placements, strerror(errno));
		goto fail;
	}
	out = NULL;
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (a.json)
		sim_print_json(&r, policy, a.sequence ? a.sequence : a.pods, secs);
	else
		sim_print_human(&r, policy);
	rc = CLI_OK;
	goto done;
fail:
	cli_error("sim openb", "%s", e.msg);
done:
	if (out)
		fclose(out);
	sim_nodes_free(&nodes);
	sim_pods_free(&list);
	sim_pods_free(&seq);
	return rc;
}

static const struct cli_verb sim_subverbs[] = {
	{"openb", sim_openb, "packing on the Alibaba openb trace (FGD paper protocol)"},
	{NULL, NULL, NULL},
};

int cli_sim(int argc, char **argv)
{
	int rc;
	if (cli_dispatch_subverb("sim", sim_subverbs, argc, argv, &rc))
		return rc;
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(sim_help, stdout);
		cli_print_verbs(stdout, sim_subverbs);
		return CLI_OK;
	}
	fputs(sim_help, stderr);
	cli_print_verbs(stderr, sim_subverbs);
	return CLI_USAGE;
}
