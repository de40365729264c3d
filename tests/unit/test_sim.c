/* test_sim — `gpunode sim openb`: the trace readers and their errors, the
 * protocol's feasibility rules as the real scheduler applies them (model
 * constraints, sharing, gangs, CPU, memory, the pod limit), dropping, the
 * metric and its half-even rounding, the arrival sequence, and one run on the
 * real data when bench/data/openb is present. The node lists and sequences
 * here are hand-made. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "strbuf.h"
#include "util.h"

static FILE *text_file(const char *s)
{
	FILE *f = tmpfile();
	cr_assert_not_null(f);
	fputs(s, f);
	rewind(f);
	return f;
}

static void nodes_of(const char *csv, struct sim_nodes *n)
{
	struct err e = { 0 };
	FILE *f = text_file(csv);
	cr_assert_eq(sim_read_nodes_file(f, "nodes.csv", n, &e), 0, "%s", e.msg);
	fclose(f);
}

static void seq_of(const char *csv, struct sim_pods *p)
{
	struct err e = { 0 };
	FILE *f = text_file(csv);
	cr_assert_eq(sim_read_sequence_file(f, "seq.csv", p, &e), 0, "%s", e.msg);
	fclose(f);
}

/* Runs seq on nodes with policy; returns the placement file's text (caller frees). */
static char *run(const char *nodes_csv, const char *seq_csv, enum sched_policy policy, struct sim_result *r)
{
	struct sim_nodes n;
	struct sim_pods s;
	nodes_of(nodes_csv, &n);
	seq_of(seq_csv, &s);
	FILE *out = tmpfile();
	struct sim_openb_opts o = { .placements = out };
	sched_config_default(&o.cfg);
	o.cfg.policy = policy;
	struct err e = { 0 };
	cr_assert_eq(sim_openb_run(&n, &s, &o, r, &e), 0, "%s", e.msg);
	long len = ftell(out);
	rewind(out);
	char *text = xcalloc((size_t)len + 1, 1);
	cr_assert_eq(fread(text, 1, (size_t)len, out), (size_t)len);
	fclose(out);
	sim_nodes_free(&n);
	sim_pods_free(&s);
	return text;
}

static const char SEQ_HDR[] = "pod_idx,name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n";

static char *seq_text(const char *rows)
{
	char *s = xmalloc(strlen(SEQ_HDR) + strlen(rows) + 1);
	strcpy(s, SEQ_HDR);
	strcat(s, rows);
	return s;
}

static char *run_rows(const char *nodes_csv, const char *rows, enum sched_policy policy, struct sim_result *r)
{
	char *seq = seq_text(rows);
	char *out = run(nodes_csv, seq, policy, r);
	free(seq);
	return out;
}

/* ---- readers ---- */

Test(sim, reads_both_node_list_formats)
{
	struct sim_nodes a, b;
	nodes_of("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,96000,393216,8,G2\n", &a);
	nodes_of("node_idx,name,cpu_milli,memory_mib,num_gpu,model\r\n0,n0,64000,262144,2,P100\r\n"
		 "1,n1,96000,393216,8,G2\r\n",
		 &b);
	cr_assert_eq(a.n, 2);
	cr_assert_eq(b.n, 2);
	for (int i = 0; i < 2; i++) {
		cr_assert_str_eq(a.v[i].name, b.v[i].name);
		cr_assert_eq(a.v[i].cpu_milli, b.v[i].cpu_milli);
		cr_assert_eq(a.v[i].mem_mib, b.v[i].mem_mib);
		cr_assert_eq(a.v[i].gpus, b.v[i].gpus);
		cr_assert_str_eq(a.v[i].model, b.v[i].model);
	}
	cr_assert_eq(sim_capacity(&a), 10000);
	sim_nodes_free(&a);
	sim_nodes_free(&b);
}

static void expect_node_error(const char *csv, const char *want)
{
	struct sim_nodes n;
	struct err e = { 0 };
	FILE *f = text_file(csv);
	cr_assert_lt(sim_read_nodes_file(f, "nodes.csv", &n, &e), 0, "accepted: %s", csv);
	cr_assert_not_null(strstr(e.msg, want), "message '%s' lacks '%s'", e.msg, want);
	fclose(f);
}

Test(sim, node_list_errors_name_the_line)
{
	expect_node_error("", "empty file");
	expect_node_error("name,cpu\nn0,1\n", "nodes.csv:1: expected the header");
	expect_node_error("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2\n", "nodes.csv:2: expected 5 fields");
	expect_node_error("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,x,1,1,T4\n",
			  "nodes.csv:3: cpu_milli: expected an integer");
	expect_node_error("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,17,P100\n", "gpu: expected an integer 0..16");
	expect_node_error("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,\n", "nodes.csv:2: model is empty");
	expect_node_error("node_idx,name,cpu_milli,memory_mib,num_gpu,model\n1,n0,1,1,1,T4\n",
			  "nodes.csv:2: node_idx 1 out of order");
	expect_node_error("sn,cpu_milli,memory_mib,gpu,model\n", "no nodes");
}

static void expect_seq_error(const char *rows, const char *want)
{
	char *csv = seq_text(rows);
	struct sim_pods p;
	struct err e = { 0 };
	FILE *f = text_file(csv);
	cr_assert_lt(sim_read_sequence_file(f, "seq.csv", &p, &e), 0, "accepted: %s", rows);
	cr_assert_not_null(strstr(e.msg, want), "message '%s' lacks '%s'", e.msg, want);
	fclose(f);
	free(csv);
}

Test(sim, sequence_errors_name_the_line)
{
	expect_seq_error("0,p0,1000,1024,1,500,\n1,p1,1000,1024,1,500\n", "seq.csv:3: expected 7 fields, got 6");
	expect_seq_error("0,p0,-5,1024,1,500,\n", "seq.csv:2: cpu_milli: expected an integer 0..");
	expect_seq_error("0,p0,1000,1024,1,1500,\n", "gpu_milli: expected an integer 0..1000, got '1500'");
	expect_seq_error("0,p0,1000,1024,1,0,\n", "one-GPU pod needs gpu_milli");
	expect_seq_error("0,,1000,1024,1,10,\n", "name is empty");

	struct sim_pods p;
	struct err e = { 0 };
	FILE *f = text_file("pod,name\n");
	cr_assert_lt(sim_read_sequence_file(f, "seq.csv", &p, &e), 0);
	cr_assert_not_null(strstr(e.msg, "seq.csv:1: expected the header"), "%s", e.msg);
	fclose(f);
	cr_assert_lt(sim_read_sequence("/nonexistent/seq.csv", &p, &e), 0);
	cr_assert_not_null(strstr(e.msg, "/nonexistent/seq.csv"), "%s", e.msg);
}

Test(sim, pod_list_normalises_and_splits_gpu_spec)
{
	struct sim_pods p;
	struct err e = { 0 };
	FILE *f = text_file("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase\n"
			    "b,1000,100,0,300,,LS,Running\n"
			    "a,2000,200,4,500,V100M16|V100M32|V100M32,LS,Running\n"
			    "c,3000,300,1,250,,BE,Failed\n");
	cr_assert_eq(sim_read_pods_file(f, "pods.csv", &p, &e), 0, "%s", e.msg);
	fclose(f);
	cr_assert_eq(p.n, 3);
	cr_assert_eq(p.v[0].gpu_milli, 0, "CPU-only pods demand no GPU");
	cr_assert_eq(sim_pod_demand(&p.v[0]), 0);
	cr_assert_eq(p.v[1].gpu_milli, 1000, "gangs take whole GPUs");
	cr_assert_eq(sim_pod_demand(&p.v[1]), 4000);
	cr_assert_eq(p.v[1].n_models, 2);
	cr_assert_str_eq(p.v[1].models[0], "V100M16");
	cr_assert_str_eq(p.v[1].models[1], "V100M32");
	cr_assert_eq(sim_pod_demand(&p.v[2]), 250);
	sim_pods_free(&p);

	f = text_file("name,cpu_milli,memory_mib,num_gpu\n");
	cr_assert_lt(sim_read_pods_file(f, "pods.csv", &p, &e), 0);
	cr_assert_not_null(strstr(e.msg, "pods.csv:1: expected a header starting"), "%s", e.msg);
	fclose(f);
}

/* ---- the metric ---- */

Test(sim, arrive_pct_rounds_half_to_even)
{
	/* capacity 200: 1 % is 2 milli */
	cr_assert_eq(sim_arrive_pct(0, 200), 0);
	cr_assert_eq(sim_arrive_pct(1, 200), 0);  /* 0.5 -> 0 */
	cr_assert_eq(sim_arrive_pct(3, 200), 2);  /* 1.5 -> 2 */
	cr_assert_eq(sim_arrive_pct(5, 200), 2);  /* 2.5 -> 2 */
	cr_assert_eq(sim_arrive_pct(7, 200), 4);  /* 3.5 -> 4 */
	cr_assert_eq(sim_arrive_pct(4, 200), 2);
	/* the real capacity: 62,120 milli is 1 % */
	cr_assert_eq(sim_arrive_pct(6212000, 6212000), 100);
	cr_assert_eq(sim_arrive_pct(6212000 + 31060, 6212000), 100); /* 100.5 -> 100 */
	cr_assert_eq(sim_arrive_pct(6212000 + 31061, 6212000), 101);
	cr_assert_eq(sim_arrive_pct(6212000 - 31060, 6212000), 100); /* 99.5 -> 100 */
	cr_assert_eq(sim_alloc_centi_pct(1, 20000), 0);               /* 0.005 % -> 0.00 */
	cr_assert_eq(sim_alloc_centi_pct(3, 20000), 2);               /* 0.015 % -> 0.02 */
	cr_assert_eq(sim_alloc_centi_pct(1553, 6212000), 2);          /* 0.025 % -> 0.02 */
	cr_assert_eq(sim_alloc_centi_pct(4659, 6212000), 8);          /* 0.075 % -> 0.08 */
}

Test(sim, bucket_falls_back_to_neighbours)
{
	struct sim_result r;
	memset(&r, 0, sizeof r);
	r.sum[99] = 9000;
	r.count[99] = 1;
	r.sum[101] = 9400 + 9600;
	r.count[101] = 2;
	cr_assert_float_eq(sim_bucket(&r, 99), 90.0, 1e-9);
	cr_assert_float_eq(sim_bucket(&r, 100), (90.0 + 94.0 + 96.0) / 3, 1e-9);
	cr_assert(isnan(sim_bucket(&r, 50)));
	cr_assert(isnan(sim_bucket(&r, 131)));
}

/* ---- feasibility and dropping, through the real scheduler ---- */

/* Node 0: 2 x T4, 8 CPUs, 16 GiB; node 1: 4 x V100M16, 32 CPUs, 64 GiB. */
static const char NODES[] = "sn,cpu_milli,memory_mib,gpu,model\n"
			    "n0,8000,16384,2,T4\n"
			    "n1,32000,65536,4,V100M16\n";

Test(sim, model_constraint_is_honoured)
{
	struct sim_result r;
	char *out = run_rows(NODES,
			     "0,a,1000,1024,1,1000,T4\n"
			     "1,b,1000,1024,2,1000,V100M16|V100M32\n"
			     "2,c,1000,1024,1,500,A10\n",
			     SCHED_POLICY_BESTFIT, &r);
	cr_assert_str_eq(out, "pod_idx,node_idx,gpus\n0,0,0\n1,1,0-1\n2,-1,\n");
	cr_assert_eq(r.placed, 2);
	cr_assert_eq(r.dropped, 1);
	cr_assert_eq(r.used, 3000);
	cr_assert_eq(r.arrived, 3500, "dropped pods count as arrived");
	free(out);
}

Test(sim, gangs_need_completely_free_gpus)
{
	struct sim_result r;
	/* a share on each V100 of n1 leaves no whole GPU there; the 2-GPU gang
	 * then fits only on n0 (whose two GPUs are free) and a second is dropped */
	char *out = run_rows(NODES,
			     "0,s0,100,100,1,100,V100M16\n"
			     "1,s1,100,100,1,900,V100M16\n"
			     "2,s2,100,100,1,900,V100M16\n"
			     "3,s3,100,100,1,900,V100M16\n"
			     "4,s4,100,100,1,900,V100M16\n"
			     "5,g0,100,100,2,1000,\n"
			     "6,g1,100,100,2,1000,\n",
			     SCHED_POLICY_BESTFIT, &r);
	cr_assert_not_null(strstr(out, "\n5,0,0-1\n6,-1,\n"), "%s", out);
	cr_assert_eq(r.dropped, 1);
	free(out);
}

Test(sim, a_share_needs_one_gpu_with_enough_left)
{
	struct sim_result r;
	/* n0 only (T4): 600 + 600 fill one GPU each; 500 fits nowhere (400 left on each) */
	char *out = run_rows("sn,cpu_milli,memory_mib,gpu,model\nn0,8000,16384,2,T4\n",
			     "0,a,100,100,1,600,\n"
			     "1,b,100,100,1,600,\n"
			     "2,c,100,100,1,500,\n"
			     "3,d,100,100,1,400,\n",
			     SCHED_POLICY_BESTFIT, &r);
	cr_assert_str_eq(out, "pod_idx,node_idx,gpus\n0,0,0\n1,0,1\n2,-1,\n3,0,0\n");
	cr_assert_eq(r.used, 1600);
	free(out);
	/* the same under the default policy: what is feasible does not depend on it */
	out = run_rows("sn,cpu_milli,memory_mib,gpu,model\nn0,8000,16384,2,T4\n",
		       "0,a,100,100,1,600,\n1,b,100,100,1,600,\n2,c,100,100,1,500,\n", SCHED_POLICY_FRAG, &r);
	cr_assert_not_null(strstr(out, "\n2,-1,\n"), "%s", out);
	free(out);
}

Test(sim, cpu_and_memory_limit_every_pod)
{
	struct sim_result r;
	char *out = run_rows(NODES,
			     "0,big,30000,1024,0,0,\n"    /* CPU-only: only n1 has 30 CPUs */
			     "1,cpu,4000,1024,1,1000,\n"  /* n1 has 2 CPUs left: n0 */
			     "2,mem,1000,65000,1,1000,\n" /* no node has 65000 MiB left */
			     "3,cpu2,5000,1024,0,0,\n",   /* n0 has 4 CPUs left, n1 2: dropped */
			     SCHED_POLICY_BESTFIT, &r);
	cr_assert_str_eq(out, "pod_idx,node_idx,gpus\n0,1,\n1,0,0\n2,-1,\n3,-1,\n");
	cr_assert_eq(r.placed, 2);
	cr_assert_eq(r.dropped, 2);
	cr_assert_eq(r.used, 1000);
	free(out);
}

Test(sim, a_node_holds_at_most_1000_pods)
{
	struct strbuf sb = { 0 };
	for (int i = 0; i < SIM_NODE_MAX_PODS + 2; i++)
		strbuf_printf(&sb, "%d,p%d,1,1,0,0,\n", i, i);
	struct sim_result r;
	char *out = run_rows("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,1,T4\n", sb.buf, SCHED_POLICY_FRAG, &r);
	cr_assert_eq(r.placed, SIM_NODE_MAX_PODS + 1, "fewer than 1,001 pods: the 1,001st still fits");
	cr_assert_eq(r.dropped, 1);
	cr_assert_not_null(strstr(out, "\n1001,-1,\n"));
	free(out);
	strbuf_free(&sb);
}

Test(sim, curve_follows_the_metric)
{
	struct sim_result r;
	/* capacity 2,000 (n0): a 1000 (50 %), a dropped 1000 needing A10 (100 %
	 * arrived, 50 % used), a 1000 (150 %: beyond the curve) */
	char *out = run_rows("sn,cpu_milli,memory_mib,gpu,model\nn0,8000,16384,2,T4\n",
			     "0,a,0,0,0,0,\n"
			     "1,b,100,100,1,1000,\n"
			     "2,c,100,100,1,1000,A10\n"
			     "3,d,100,100,1,1000,\n",
			     SCHED_POLICY_BESTFIT, &r);
	free(out);
	cr_assert_eq(r.count[0], 1);
	cr_assert_eq(r.sum[0], 0);
	cr_assert_eq(r.count[50], 1);
	cr_assert_eq(r.sum[50], 5000);
	cr_assert_eq(r.count[100], 1);
	cr_assert_float_eq(sim_bucket(&r, 100), 50.0, 1e-9);
	cr_assert_eq(r.pods, 4);
	cr_assert_eq(r.used, 2000);
}

/* ---- the arrival sequence ---- */

Test(sim, arrival_sequence_is_seeded_and_tuned_to_target)
{
	struct sim_pods list = { 0 };
	struct err e = { 0 };
	FILE *f = text_file("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
			    "p3,1,1,1,300\np1,1,1,1,1000\np2,1,1,0,0\np0,1,1,2,1000\n");
	cr_assert_eq(sim_read_pods_file(f, "pods.csv", &list, &e), 0, "%s", e.msg);
	fclose(f);
	struct sim_pods a, b, c;
	sim_arrival_sequence(&list, 42, 1.3, 10000, &a);
	sim_arrival_sequence(&list, 42, 1.3, 10000, &b);
	sim_arrival_sequence(&list, 43, 1.3, 10000, &c);
	cr_assert_eq(a.n, b.n);
	int64_t total = 0;
	for (size_t i = 0; i < a.n; i++) {
		cr_assert_str_eq(a.v[i].name, b.v[i].name, "same seed, same sequence");
		cr_assert_eq(a.v[i].idx, (int64_t)i);
		total += sim_pod_demand(&a.v[i]);
	}
	cr_assert_leq(total, 13000);
	cr_assert_gt(total, 13000 - 2000, "stops only when the next pod would pass the target");
	/* the first four are the list itself, shuffled */
	int seen = 0;
	for (size_t i = 0; i < 4; i++)
		seen |= 1 << (a.v[i].name[1] - '0');
	cr_assert_eq(seen, 0xf);
	bool differ = a.n != c.n;
	for (size_t i = 0; i < a.n && i < c.n && !differ; i++)
		differ = strcmp(a.v[i].name, c.v[i].name) != 0;
	cr_assert(differ, "another seed, another sequence");
	sim_pods_free(&a);
	sim_pods_free(&b);
	sim_pods_free(&c);
	sim_pods_free(&list);
}

Test(sim, workload_shapes_cover_the_pods)
{
	struct sim_pods p;
	seq_of("pod_idx,name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
	       "0,a,1,1,1,500,\n1,b,1,1,1,500,\n2,c,1,1,1,500,\n3,d,1,1,2,1000,\n4,e,1,1,0,0,\n",
	       &p);
	struct sched_shape *s;
	size_t n = sim_workload_shapes(&p, 0.95, &s);
	/* weights are shares of all pods, CPU-only ones included (one shape) */
	cr_assert_eq(n, 3);
	cr_assert_eq(s[0].res.milli, 500);
	cr_assert_float_eq(s[0].weight, 0.6, 1e-9);
	cr_assert_eq(s[1].res.gpus, 0);
	cr_assert_float_eq(s[1].weight, 0.2, 1e-9);
	cr_assert_eq(s[2].res.gpus, 2);
	free(s);
	n = sim_workload_shapes(&p, 0.5, &s);
	cr_assert_eq(n, 1);
	free(s);
	sim_pods_free(&p);

	/* a shape is the whole request: the same GPU share with more CPU is another shape */
	seq_of("pod_idx,name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
	       "0,a,1000,1,1,500,\n1,b,1000,1,1,500,\n2,c,8000,1,1,500,\n",
	       &p);
	n = sim_workload_shapes(&p, 1.0, &s);
	cr_assert_eq(n, 2);
	cr_assert_eq(s[0].res.cpu_milli, 1000);
	cr_assert_eq(s[1].res.cpu_milli, 8000);
	free(s);
	sim_pods_free(&p);
}

/* ---- the real data (bench/data/openb), when present: a few seconds ---- */

static FILE *open_gz(const char *rel)
{
	static const char *const roots[] = { "", "../", "../../", NULL };
	char path[512], cmd[600];
	for (int i = 0; roots[i]; i++) {
		snprintf(path, sizeof path, "%sbench/data/openb/%s", roots[i], rel);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		fclose(f);
		snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
		return popen(cmd, "r");
	}
	return NULL;
}

/* The time limit only catches a hang: this run takes 10-60 s (ASan, a loaded host). */
Test(sim, real_openb_default_seed42_bestfit, .timeout = 300)
{
	FILE *fn = open_gz("nodes.csv.gz"), *fs = open_gz("default_seed42.csv.gz");
	if (!fn || !fs) {
		if (fn)
			pclose(fn);
		if (fs)
			pclose(fs);
		cr_skip_test("bench/data/openb not found");
	}
	struct sim_nodes n;
	struct sim_pods s;
	struct err e = { 0 };
	cr_assert_eq(sim_read_nodes_file(fn, "nodes.csv", &n, &e), 0, "%s", e.msg);
	cr_assert_eq(sim_read_sequence_file(fs, "default_seed42.csv", &s, &e), 0, "%s", e.msg);
	pclose(fn);
	pclose(fs);
	cr_assert_eq(n.n, 1213);
	cr_assert_eq(sim_capacity(&n), 6212000);
	struct sim_openb_opts o = { 0 };
	sched_config_default(&o.cfg);
	o.cfg.policy = SCHED_POLICY_BESTFIT;
	struct sim_result r;
	cr_assert_eq(sim_openb_run(&n, &s, &o, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.pods, s.n);
	cr_assert_eq(r.placed + r.dropped, s.n);
	/* before the cluster fills, nothing is dropped: alloc% == arrive% */
	cr_assert_float_eq(sim_bucket(&r, 10), 10.0, 0.1);
	double b100 = sim_bucket(&r, 100);
	cr_assert(fabs(b100 - 92.94) < 1.0, "bucket 100 = %.2f, published BestFit seed 42: 92.94", b100);
	sim_nodes_free(&n);
	sim_pods_free(&s);
}
