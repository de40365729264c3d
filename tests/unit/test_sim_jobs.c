/* test_sim_jobs — `gpunode sim philly|trace`: the Philly and generic CSV
 * readers (every bad line is an error naming the file and the line) and the
 * virtual-clock loop on hand-made traces whose FIFO, SJF and default-queue
 * schedules are worked out by hand in the comments. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_jobs.h"

static FILE *text_file(const char *s)
{
	FILE *f = tmpfile();
	cr_assert_not_null(f);
	fputs(s, f);
	rewind(f);
	return f;
}

static int read_trace(const char *csv, struct sim_jobs *j, struct err *e)
{
	FILE *f = text_file(csv);
	int rc = sim_read_trace_csv_file(f, "t.csv", j, e);
	fclose(f);
	return rc;
}

static int read_philly(const char *csv, struct sim_jobs *j, struct err *e)
{
	FILE *f = text_file(csv);
	int rc = sim_read_philly_file(f, "philly.csv", j, e);
	fclose(f);
	return rc;
}

/* ---- readers ---- */

Test(sim_jobs, philly_is_sorted_rebased_and_keyed_by_cluster)
{
	struct sim_jobs j;
	struct err e = { 0 };
	cr_assert_eq(read_philly("timestamp,duration,num_gpus,gpu_time,cluster\n"
				 "2017-10-09 07:01:55,66.0,1,66.0,vcA\n"
				 "2017-10-09 06:13:03,2951.5,8,23612.0,vcB\n"
				 "\n"
				 "2017-10-09 07:01:55,10,2,20,vcC\n",
				 &j, &e),
		     0, "%s", e.msg);
	cr_assert_eq(j.n, 3);
	cr_assert_eq(j.v[0].submit_ms, 0);
	cr_assert_eq(j.v[0].duration_ms, 2951500);
	cr_assert_eq(j.v[0].gpus, 8);
	cr_assert_str_eq(j.v[0].client, "vcB");
	cr_assert_eq(j.v[0].line, 3);
	/* 06:13:03 -> 07:01:55 is 2,932 s; equal times keep file order */
	cr_assert_eq(j.v[1].submit_ms, 2932000);
	cr_assert_str_eq(j.v[1].client, "vcA");
	cr_assert_eq(j.v[2].submit_ms, 2932000);
	cr_assert_str_eq(j.v[2].client, "vcC");
	cr_assert_eq(j.v[2].milli, 1000);
	sim_jobs_free(&j);
}

static void philly_bad(const char *line, const char *want)
{
	char csv[512];
	snprintf(csv, sizeof csv, "timestamp,duration,num_gpus,gpu_time,cluster\n"
				  "2017-10-09 07:01:55,66.0,1,66.0,vcA\n%s\n",
		 line);
	struct sim_jobs j;
	struct err e = { 0 };
	cr_assert_eq(read_philly(csv, &j, &e), -1, "accepted: %s", line);
	cr_assert(strstr(e.msg, "philly.csv:3: "), "no file:line in '%s'", e.msg);
	cr_assert(strstr(e.msg, want), "'%s' does not say '%s'", e.msg, want);
	cr_assert_null(j.v);
}

Test(sim_jobs, philly_bad_lines_name_file_line_and_field)
{
	philly_bad("2017-10-09 07:01,66.0,1,66.0,vcA", "timestamp");
	philly_bad("2017-13-09 07:01:55,66.0,1,66.0,vcA", "timestamp");
	philly_bad("2017-10-09 07:01:55,-1,1,66.0,vcA", "duration");
	philly_bad("2017-10-09 07:01:55,nan,1,66.0,vcA", "duration");
	philly_bad("2017-10-09 07:01:55,1e3,1,66.0,vcA", "duration");
	philly_bad("2017-10-09 07:01:55,66.0,0,66.0,vcA", "num_gpus");
	philly_bad("2017-10-09 07:01:55,66.0,2000,66.0,vcA", "num_gpus");
	philly_bad("2017-10-09 07:01:55,66.0,1,x,vcA", "gpu_time");
	philly_bad("2017-10-09 07:01:55,66.0,1,66.0,", "cluster is empty");
	philly_bad("2017-10-09 07:01:55,66.0,1,66.0", "expected 5 fields");
	philly_bad("2017-10-09 07:01:55,66.0,1,66.0,vcA,extra", "expected 5 fields");
}

Test(sim_jobs, philly_header_and_empty_files_are_refused)
{
	struct sim_jobs j;
	struct err e = { 0 };
	cr_assert_eq(read_philly("", &j, &e), -1);
	cr_assert(strstr(e.msg, "philly.csv: empty file"), "%s", e.msg);
	cr_assert_eq(read_philly("submit,duration\n1,2\n", &j, &e), -1);
	cr_assert(strstr(e.msg, "philly.csv:1: expected the header"), "%s", e.msg);
	cr_assert_eq(read_philly("timestamp,duration,num_gpus,gpu_time,cluster\n", &j, &e), -1);
	cr_assert(strstr(e.msg, "no jobs"), "%s", e.msg);
}

Test(sim_jobs, trace_csv_columns_in_any_order_with_defaults)
{
	struct sim_jobs j;
	struct err e = { 0 };
	cr_assert_eq(read_trace("gpus,client,duration_s,submit_s,priority,category,milli\n"
				"1,alice,0.25,5.5,-3,inference,250\n"
				"4,bob,100,2,7,training,1000\n",
				&j, &e),
		     0, "%s", e.msg);
	cr_assert_eq(j.n, 2);
	cr_assert_str_eq(j.v[0].client, "bob");
	cr_assert_eq(j.v[0].submit_ms, 0);
	cr_assert_eq(j.v[0].gpus, 4);
	cr_assert_eq(j.v[0].priority, 7);
	cr_assert_eq(j.v[0].category, TASK_CAT_TRAINING);
	cr_assert_eq(j.v[1].submit_ms, 3500);
	cr_assert_eq(j.v[1].duration_ms, 250);
	cr_assert_eq(j.v[1].milli, 250);
	cr_assert_eq(j.v[1].priority, -3);
	sim_jobs_free(&j);

	cr_assert_eq(read_trace("submit_s,duration_s,gpus\n0,1,2\n", &j, &e), 0, "%s", e.msg);
	cr_assert_str_eq(j.v[0].client, "default");
	cr_assert_eq(j.v[0].category, TASK_CAT_BATCH);
	cr_assert_eq(j.v[0].milli, 1000);
	sim_jobs_free(&j);
}

static void trace_bad(const char *csv, const char *want)
{
	struct sim_jobs j;
	struct err e = { 0 };
	cr_assert_eq(read_trace(csv, &j, &e), -1, "accepted: %s", csv);
	cr_assert(strstr(e.msg, want), "'%s' does not say '%s'", e.msg, want);
	cr_assert_null(j.v);
}

Test(sim_jobs, trace_csv_bad_input_names_file_and_line)
{
	trace_bad("submit_s,duration_s\n0,1\n", "t.csv:1: the header lacks the required column 'gpus'");
	trace_bad("submit_s,duration_s,gpus,colour\n0,1,1,red\n", "t.csv:1: unknown column 'colour'");
	trace_bad("submit_s,duration_s,gpus,gpus\n0,1,1,1\n", "t.csv:1: column 'gpus' appears twice");
	trace_bad("submit_s,duration_s,gpus\n0,1,1\n0,1\n", "t.csv:3: expected 3 fields");
	trace_bad("submit_s,duration_s,gpus\n0,1,1\n-5,1,1\n", "t.csv:3: submit_s");
	trace_bad("submit_s,duration_s,gpus\n0,1,1\n0,,1\n", "t.csv:3: duration_s");
	trace_bad("submit_s,duration_s,gpus\n0,1,one\n", "t.csv:2: gpus");
	trace_bad("submit_s,duration_s,gpus,priority\n0,1,1,5000\n", "t.csv:2: priority");
	trace_bad("submit_s,duration_s,gpus,category\n0,1,1,gaming\n", "t.csv:2: category");
	trace_bad("submit_s,duration_s,gpus,milli\n0,1,2,500\n", "t.csv:2: milli 500: a share of a GPU needs gpus 1");
	trace_bad("submit_s,duration_s,gpus,client\n0,1,1,\n", "t.csv:2: client is empty");
	trace_bad("", "t.csv: empty file");
}

/* ---- the virtual clock ---- */

struct run {
	struct sim_jobs jobs;
	struct sim_outcome *out;
	struct sim_summary sum;
};

static void run_trace(const char *csv, int hosts, int gpus, enum sim_queue_mode mode,
		      void (*tweak)(struct sim_jobs_opts *), struct run *r)
{
	struct err e = { 0 };
	cr_assert_eq(read_trace(csv, &r->jobs, &e), 0, "%s", e.msg);
	struct sim_jobs_opts o = { .cluster = { hosts, gpus }, .mode = mode };
	sched_config_default(&o.sched);
	queue_config_default(&o.queue);
	if (tweak)
		tweak(&o);
	cr_assert_eq(sim_jobs_run(&r->jobs, &o, &r->out, &r->sum, &e), 0, "%s", e.msg);
}

static void run_free(struct run *r)
{
	free(r->out);
	sim_jobs_free(&r->jobs);
}

static void assert_starts(const struct run *r, const int64_t *start_s)
{
	for (size_t i = 0; i < r->jobs.n; i++)
		cr_assert_eq(r->out[i].start_ms, start_s[i] * 1000, "job %zu started at %lld ms, expected %lld s", i,
			     (long long)r->out[i].start_ms, (long long)start_s[i]);
}

/* One host of 2 GPUs. A (2 GPUs, 100 s) runs from 0; B (1 GPU, 10 s), C (2
 * GPUs, 50 s) and D (1 GPU, 1 s) queue behind it. */
static const char two_gpu_trace[] = "submit_s,duration_s,gpus\n"
				    "0,100,2\n" /* A */
				    "1,10,1\n"  /* B */
				    "2,50,2\n"  /* C */
				    "3,1,1\n";  /* D */

/* FIFO: at 100 B starts, C does not fit and blocks D; C starts when B ends
 * (110), D when C ends (160). JCT 100 + 109 + 158 + 158 = 525. */
Test(sim_jobs, fifo_head_blocks_the_jobs_behind_it)
{
	struct run r;
	run_trace(two_gpu_trace, 1, 2, SIM_QUEUE_FIFO, NULL, &r);
	assert_starts(&r, (const int64_t[]){ 0, 100, 110, 160 });
	cr_assert_float_eq(r.sum.avg_jct_s, 525.0 / 4, 1e-9);
	cr_assert_float_eq(r.sum.makespan_s, 161, 1e-9);
	cr_assert_float_eq(r.sum.max_wait_s, 157, 1e-9);
	/* GPU-seconds 200 + 10 + 100 + 1 on 2 GPUs over 161 s */
	cr_assert_float_eq(r.sum.gpu_util, 311.0 / (2 * 161), 1e-9);
	cr_assert_eq(r.out[0].gpu_mask, 3u);
	run_free(&r);
}

/* SJF: at 100 the order is D (1 s), B (10 s), C (50 s): D and B start, C
 * waits for both GPUs (110). JCT 100 + 109 + 158 + 98 = 465. */
Test(sim_jobs, sjf_runs_the_shortest_that_fits)
{
	struct run r;
	run_trace(two_gpu_trace, 1, 2, SIM_QUEUE_SJF, NULL, &r);
	assert_starts(&r, (const int64_t[]){ 0, 100, 110, 100 });
	cr_assert_float_eq(r.sum.avg_jct_s, 465.0 / 4, 1e-9);
	run_free(&r);
}

/* The node's queue: at 100 the order is B, D (1 GPU: 8 points of job size),
 * C (2 GPUs: 4). B and D start; C starts when B ends (110). */
Test(sim_jobs, default_runs_the_smaller_job_first)
{
	struct run r;
	run_trace(two_gpu_trace, 1, 2, SIM_QUEUE_DEFAULT, NULL, &r);
	assert_starts(&r, (const int64_t[]){ 0, 100, 110, 100 });
	run_free(&r);
}

static void no_job_size(struct sim_jobs_opts *o)
{
	o->queue.small_job_points = 0;
}

/* Without job size the order at 100 is B, C, D (by age). B starts; C does
 * not fit and has waited 98 s >= reserve_after (60 s), so it reserves the
 * host and D may not backfill: the same schedule as FIFO. */
Test(sim_jobs, default_reservation_holds_the_host_for_the_blocked_gang)
{
	struct run r;
	run_trace(two_gpu_trace, 1, 2, SIM_QUEUE_DEFAULT, no_job_size, &r);
	assert_starts(&r, (const int64_t[]){ 0, 100, 110, 160 });
	run_free(&r);
}

static void no_reservation(struct sim_jobs_opts *o)
{
	o->sched.reserve_after_ms = -1;
	o->queue.small_job_points = 0;
}

/* Without the reservation D backfills at 100 beside B and C still starts at
 * 110: backfill that delays no one. */
Test(sim_jobs, default_backfills_without_reservation)
{
	struct run r;
	run_trace(two_gpu_trace, 1, 2, SIM_QUEUE_DEFAULT, no_reservation, &r);
	assert_starts(&r, (const int64_t[]){ 0, 100, 110, 100 });
	run_free(&r);
}

/* Fair share under a backlog: client a queues 6 jobs at 0, b one job at 1 s,
 * on 2 GPUs, 1,000 s each. At 1,000 both have aged past the cap (60 points):
 * equal, so fair share alternates: a3 then b. With unbounded aging a's
 * older jobs all rank first and b starts only at 3,000. */
static const char backlog_trace[] = "submit_s,duration_s,gpus,client\n"
				    "0,1000,1,a\n0,1000,1,a\n0,1000,1,a\n0,1000,1,a\n0,1000,1,a\n0,1000,1,a\n"
				    "1,1000,1,b\n";

Test(sim_jobs, capped_aging_lets_fair_share_decide_under_a_backlog)
{
	struct run r;
	run_trace(backlog_trace, 1, 2, SIM_QUEUE_DEFAULT, NULL, &r);
	cr_assert_eq(r.out[6].start_ms, 1000000, "b started at %lld", (long long)r.out[6].start_ms);
	run_free(&r);
}

static void unbounded_aging(struct sim_jobs_opts *o)
{
	o->queue.aging_max_points = 0;
}

Test(sim_jobs, unbounded_aging_is_fifo_across_clients)
{
	struct run r;
	run_trace(backlog_trace, 1, 2, SIM_QUEUE_DEFAULT, unbounded_aging, &r);
	cr_assert_eq(r.out[6].start_ms, 3000000, "b started at %lld", (long long)r.out[6].start_ms);
	run_free(&r);
}

/* A job wider than any host is never placed, and counted apart. */
Test(sim_jobs, jobs_wider_than_a_host_stay_unplaced)
{
	struct run r;
	run_trace("submit_s,duration_s,gpus\n0,10,16\n0,10,8\n", 2, 8, SIM_QUEUE_DEFAULT, NULL, &r);
	cr_assert_eq(r.sum.placed, 1);
	cr_assert_eq(r.sum.unplaced, 1);
	cr_assert_eq(r.out[0].host, -1);
	cr_assert_eq(r.out[1].start_ms, 0);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cr_assert_eq(sim_jobs_write_csv(f, &r.jobs, r.out), 0);
	fclose(f);
	cr_assert_str_eq(text, "job,client,submit_s,start_s,end_s,wait_s,host,gpus\n"
			       "2,default,0.000,,,,unplaced,unplaced\n"
			       "3,default,0.000,0.000,10.000,0.000,0,0-1-2-3-4-5-6-7\n");
	free(text);
	run_free(&r);
}

Test(sim_jobs, a_cluster_without_gpus_is_refused)
{
	struct sim_jobs j = { 0 };
	struct sim_outcome *out = NULL;
	struct sim_summary s;
	struct err e = { 0 };
	struct sim_jobs_opts o = { .cluster = { 0, 8 } };
	cr_assert_eq(sim_jobs_run(&j, &o, &out, &s, &e), -1);
	cr_assert(strstr(e.msg, "cluster"), "%s", e.msg);
	o.cluster = (struct sim_cluster){ 4, 17 };
	cr_assert_eq(sim_jobs_run(&j, &o, &out, &s, &e), -1);
}
