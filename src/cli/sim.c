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
#include "sim_jobs.h"

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

/* ---- philly and trace: jobs over time on a virtual clock ---- */

#define SIM_JOBS_OPTIONS_HELP \
	"  --hosts N          hosts in the cluster (default %d)\n" \
	"  --gpus-per-host G  GPUs per host, 1..16 (default 8)\n" \
	"  --queue Q          default (the node's queue: priority, aging, fair share, backfill),\n" \
	"                     fifo (arrival order, the head blocks), sjf (shortest known duration\n" \
	"                     first: an oracle bound)\n" \
	"  --policy P         placement: frag | bestfit (default: the node's default, frag)\n" \
	"  --aging-period S   default queue: one priority point per S seconds waited (node default 10)\n" \
	"  --aging-max N      default queue: aging stops at N points (node default 60; 0: no limit)\n" \
	"  --small-job-points N  default queue: N / whole GPUs priority points (node default 8; 0: off)\n" \
	"  --reserve-after S  backfill: a blocked job reserves a host after S seconds (node default 60;\n" \
	"                     -1: never)\n" \
	"  --out FILE         per-task CSV: job,client,submit_s,start_s,end_s,wait_s,host,gpus\n" \
	"                     ('unplaced' for jobs wider than a host)\n" \
	"  --json             print the summary as JSON\n" \
	"  --quiet            no progress lines on stderr\n"

/* Philly's placeable load (jobs of <= 8 GPUs) averages 550-600 busy GPUs
 * in its busiest weeks: 80 hosts x 8 GPUs = 640 GPUs keep up week over week
 * while queues form at every burst (docs/benchmarks.md has other sizes). */
#define SIM_PHILLY_HOSTS 80
#define SIM_TRACE_HOSTS 16

static const char philly_help_fmt[] =
	"Usage: gpunode sim philly --trace FILE [OPTIONS]\n"
	"Replays the Philly trace (Microsoft, 2017; timestamp,duration,num_gpus,gpu_time,cluster)\n"
	"with its arrival times and durations through the node's queue and scheduler on a\n"
	"virtual clock. The virtual cluster of each job is its client for fair share.\n"
	"Jobs wider than one host are never placed (the node places a gang on one host).\n"
	"\n"
	"Options:\n"
	"  --trace FILE       philly.csv or philly.csv.gz\n" SIM_JOBS_OPTIONS_HELP;

static const char trace_help_fmt[] =
	"Usage: gpunode sim trace --csv FILE [OPTIONS]\n"
	"Replays a generic job trace through the node's queue and scheduler on a virtual clock.\n"
	"The CSV's header names its columns, in any order: submit_s, duration_s, gpus (required;\n"
	"seconds may have decimals), client, priority (-1000..1000), category (inference,\n"
	"training, finetune, batch), milli (a share of one GPU, 1..1000, with gpus 1).\n"
	"\n"
	"Options:\n"
	"  --csv FILE         the trace (FILE.gz is gunzipped)\n" SIM_JOBS_OPTIONS_HELP;

struct sim_jobs_args {
	const char *file, *queue, *policy, *out;
	struct cli_int hosts, gpus_per_host, aging_s, aging_max, small_points, reserve_s;
	bool json, quiet;
};

static int sim_jobs_check(const char *verb, const struct sim_jobs_args *a, const char *file_opt,
			  int default_hosts, struct sim_jobs_opts *o)
{
	if (!a->file)
		return cli_usage_error(verb, "%s is required", file_opt);
	memset(o, 0, sizeof *o);
	sched_config_default(&o->sched);
	queue_config_default(&o->queue);
	o->cluster.hosts = a->hosts.set ? (int)a->hosts.value : default_hosts;
	o->cluster.gpus_per_host = a->gpus_per_host.set ? (int)a->gpus_per_host.value : 8;
	o->mode = SIM_QUEUE_DEFAULT;
	if (a->queue && sim_queue_mode_parse(a->queue, &o->mode) < 0)
		return cli_usage_error(verb, "--queue: expected default, fifo or sjf, got '%s'", a->queue);
	if (a->policy && sched_policy_parse(a->policy, &o->sched.policy) < 0)
		return cli_usage_error(verb, "--policy: expected frag or bestfit, got '%s'", a->policy);
	if (a->aging_s.set)
		o->queue.aging_period_ms = a->aging_s.value * 1000;
	if (a->aging_max.set)
		o->queue.aging_max_points = a->aging_max.value;
	if (a->small_points.set)
		o->queue.small_job_points = (int)a->small_points.value;
	if (a->reserve_s.set)
		o->sched.reserve_after_ms = a->reserve_s.value < 0 ? -1 : a->reserve_s.value * 1000;
	o->progress = a->quiet ? NULL : stderr;
	return CLI_OK;
}

static void sim_jobs_print(const struct sim_jobs_opts *o, const struct sim_summary *s, const char *source, bool json)
{
	if (!json) {
		printf("queue %s, policy %s, %d hosts x %d GPUs: %zu jobs, %zu placed, %zu unplaced\n",
		       sim_queue_mode_name(o->mode), sched_policy_name(o->sched.policy), o->cluster.hosts,
		       o->cluster.gpus_per_host, s->jobs, s->placed, s->unplaced);
		printf("avg JCT %.0f s, queue wait avg %.0f s, p50 %.0f s, p99 %.0f s, max %.0f s\n", s->avg_jct_s,
		       s->avg_wait_s, s->p50_wait_s, s->p99_wait_s, s->max_wait_s);
		printf("GPU utilization %.1f %%, makespan %.0f s, %llu passes, simulated in %.2f s (%.2f s CPU)\n",
		       s->gpu_util * 100, s->makespan_s, (unsigned long long)s->passes, s->sim_seconds,
		       s->sim_cpu_seconds);
		return;
	}
	json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:f, s:f}",
			      "source", source, "queue", sim_queue_mode_name(o->mode), "policy",
			      sched_policy_name(o->sched.policy), "hosts", o->cluster.hosts, "gpus_per_host",
			      o->cluster.gpus_per_host, "gpus", s->total_gpus, "jobs", (json_int_t)s->jobs, "placed",
			      (json_int_t)s->placed, "unplaced", (json_int_t)s->unplaced, "avg_jct_s", s->avg_jct_s,
			      "avg_wait_s", s->avg_wait_s, "p50_wait_s", s->p50_wait_s, "p99_wait_s", s->p99_wait_s,
			      "max_wait_s", s->max_wait_s, "gpu_util", s->gpu_util, "makespan_s", s->makespan_s,
			      "passes", (json_int_t)s->passes, "sim_seconds", s->sim_seconds, "sim_cpu_seconds",
			      s->sim_cpu_seconds);
	cli_print_json(j);
	json_decref(j);
}

static int sim_jobs_write_out(const char *path, const struct sim_jobs *jobs, const struct sim_outcome *out,
			      struct err *e)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return err_set(e, ERR_INVALID, "%s: %s", path, strerror(errno));
	int rc = sim_jobs_write_csv(f, jobs, out);
	if (fclose(f) != 0 || rc < 0)
		return err_set(e, ERR_INVALID, "%s: write failed: %s", path, strerror(errno));
	return 0;
}

typedef int (*sim_reader)(const char *path, struct sim_jobs *out, struct err *e);

/* The shared body of `sim philly` and `sim trace`: they differ in the file
 * option, the reader and the default cluster. */
static int sim_jobs_verb(int argc, char **argv, const char *verb, const char *help_fmt, const char *file_opt,
			 sim_reader read, int default_hosts)
{
	struct sim_jobs_args a = { 0 };
	const struct cli_opt opts[] = {
		{file_opt, 0, CLI_OPT_STRING, &a.file, 0, 0},
		{"--hosts", 0, CLI_OPT_INT, &a.hosts, 1, 100000},
		{"--gpus-per-host", 0, CLI_OPT_INT, &a.gpus_per_host, 1, TASK_MAX_GPUS},
		{"--queue", 0, CLI_OPT_STRING, &a.queue, 0, 0},
		{"--policy", 0, CLI_OPT_STRING, &a.policy, 0, 0},
		{"--aging-period", 0, CLI_OPT_INT, &a.aging_s, 0, 86400 * 365},
		{"--aging-max", 0, CLI_OPT_INT, &a.aging_max, 0, 1000000},
		{"--small-job-points", 0, CLI_OPT_INT, &a.small_points, 0, 1000},
		{"--reserve-after", 0, CLI_OPT_INT, &a.reserve_s, -1, 86400 * 365},
		{"--out", 0, CLI_OPT_STRING, &a.out, 0, 0},
		{"--json", 0, CLI_OPT_FLAG, &a.json, 0, 0},
		{"--quiet", 0, CLI_OPT_FLAG, &a.quiet, 0, 0},
		{0},
	};
	char help[4096];
	snprintf(help, sizeof help, help_fmt, default_hosts);
	const struct cli_cmd cmd = {.verb = verb, .help = help, .opts = opts, .max_args = 0};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	free(args.items);
	struct sim_jobs_opts o;
	if ((rc = sim_jobs_check(verb, &a, file_opt, default_hosts, &o)) != CLI_OK)
		return rc;
	struct err e = { 0 };
	struct sim_jobs jobs = { 0 };
	struct sim_outcome *out = NULL;
	struct sim_summary sum;
	rc = CLI_FAIL;
	if (read(a.file, &jobs, &e) == 0 && sim_jobs_run(&jobs, &o, &out, &sum, &e) == 0 &&
	    (!a.out || sim_jobs_write_out(a.out, &jobs, out, &e) == 0)) {
		sim_jobs_print(&o, &sum, a.file, a.json);
		rc = CLI_OK;
	} else {
		cli_error(verb, "%s", e.msg);
	}
	free(out);
	sim_jobs_free(&jobs);
	return rc;
}

static int sim_philly(int argc, char **argv)
{
	return sim_jobs_verb(argc, argv, "sim philly", philly_help_fmt, "--trace", sim_read_philly, SIM_PHILLY_HOSTS);
}

static int sim_trace(int argc, char **argv)
{
	return sim_jobs_verb(argc, argv, "sim trace", trace_help_fmt, "--csv", sim_read_trace_csv, SIM_TRACE_HOSTS);
}

static const struct cli_verb sim_subverbs[] = {
	{"openb", sim_openb, "packing on the Alibaba openb trace (FGD paper protocol)"},
	{"philly", sim_philly, "waiting and completion times on the Philly trace (virtual clock)"},
	{"trace", sim_trace, "a generic job trace (CSV) on a virtual clock"},
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
