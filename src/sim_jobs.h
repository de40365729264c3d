/* sim_jobs.h — `gpunode sim philly` and `gpunode sim trace`: jobs that
 * arrive over time, wait in a queue, run for their duration and leave, on a
 * virtual clock.
 *
 * The clock jumps from event to event (an arrival, a job's end). At each
 * instant the simulator applies every end, then every arrival, then one
 * scheduling pass. For the node's own policy ("default") the pass is exactly
 * what the node's scheduler thread does: queue_order (priority, category,
 * aging, fair share, max wait) and sched_pass (placement with backfill and
 * reservations) on a struct pool, with the virtual time as `now`; placed
 * jobs are queue_remove'd and charged to their client, as node_assign_locked
 * does. Passing only at events is exact: between events the pool gains no
 * capacity, and a reservation can only hold capacity back, so a pass between
 * events would place nothing. The baselines put their own order in front of
 * the same placement code (sched_place + pool_alloc):
 *   fifo: arrival order, and the first job that does not fit blocks the
 *         ones behind it (no backfill: the textbook FIFO);
 *   sjf:  shortest known duration first (an oracle: the node never knows
 *         durations), and a job that does not fit is skipped.
 * A job wider than one host can never be placed (the node places gangs on
 * one host); it is marked unplaced at arrival and left out of JCT and wait
 * figures, and counted. */
#ifndef GPUNODE_SIM_JOBS_H
#define GPUNODE_SIM_JOBS_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "queue.h"
#include "sched.h"
#include "task.h"

#define SIM_JOB_MAX_GPUS 1024

struct sim_job {
	int64_t submit_ms; /* since the first submission of the trace */
	int64_t duration_ms;
	int gpus;          /* 1..SIM_JOB_MAX_GPUS */
	int milli;         /* per GPU: 1000, or a share of one GPU (gpus == 1) */
	int priority;
	enum task_category category;
	char client[TASK_CLIENT_MAX];
	long line;         /* line in the trace file: the job's id in the outputs */
};

struct sim_jobs {
	struct sim_job *v;
	size_t n, cap;
};

void sim_jobs_free(struct sim_jobs *j);
/* Appends a zeroed job (whole GPUs, batch category) for a reader to fill. */
struct sim_job *sim_jobs_push(struct sim_jobs *j);
/* Sorts by submission (stable: file order among equal times) and makes the
 * first submission time 0. The readers call it. */
void sim_jobs_sort_rebase(struct sim_jobs *j);

/* The Philly trace as the Pollux artifact flattened it:
 *   timestamp,duration,num_gpus,gpu_time,cluster
 * timestamp "YYYY-MM-DD HH:MM:SS" (UTC), duration in seconds, cluster (the
 * virtual cluster) becomes the client for fair share. Errors name the file,
 * the line and the field. */
int sim_read_philly(const char *path, struct sim_jobs *out, struct err *e);
int sim_read_philly_file(FILE *f, const char *name, struct sim_jobs *out, struct err *e);

/* The generic trace (docs/benchmarks.md): a header naming the columns, in
 * any order: submit_s, duration_s, gpus (required), client, priority,
 * category, milli (optional). */
int sim_read_trace_csv(const char *path, struct sim_jobs *out, struct err *e);
int sim_read_trace_csv_file(FILE *f, const char *name, struct sim_jobs *out, struct err *e);

enum sim_queue_mode { SIM_QUEUE_DEFAULT, SIM_QUEUE_FIFO, SIM_QUEUE_SJF, SIM_QUEUE_COUNT };
const char *sim_queue_mode_name(enum sim_queue_mode m);
int sim_queue_mode_parse(const char *name, enum sim_queue_mode *out);

struct sim_cluster {
	int hosts;
	int gpus_per_host; /* 1..TASK_MAX_GPUS */
};

struct sim_jobs_opts {
	struct sim_cluster cluster;
	enum sim_queue_mode mode;
	struct sched_config sched;  /* placement policy and backfill */
	struct queue_config queue;  /* the default mode's ordering */
	FILE *progress;             /* a line per 10 % of arrivals; NULL: quiet */
};

/* What happened to each job, in the order of sim_jobs. */
struct sim_outcome {
	int64_t start_ms, end_ms; /* -1: unplaced */
	int host;                 /* host position, -1: unplaced */
	uint32_t gpu_mask;        /* GPU indices on the host */
};

struct sim_summary {
	size_t jobs, placed, unplaced;
	int total_gpus;
	double avg_jct_s, avg_wait_s, p50_wait_s, p99_wait_s, max_wait_s;
	double gpu_util;      /* GPU-seconds run / (GPUs x makespan) */
	double makespan_s;    /* first submission to last end */
	uint64_t passes;      /* scheduling passes run (instants where one could place) */
	double sim_seconds;   /* wall time of the run */
	double sim_cpu_seconds; /* CPU time of the run: the figure that holds on a shared machine */
};

/* Replays jobs on the cluster; out gets one outcome per job (malloc'd). */
int sim_jobs_run(const struct sim_jobs *jobs, const struct sim_jobs_opts *o, struct sim_outcome **out,
		 struct sim_summary *sum, struct err *e);

/* The figures of a finished run (all but passes and the run's times). */
void sim_jobs_summarize(const struct sim_jobs *jobs, const struct sim_outcome *out, int total_gpus,
			struct sim_summary *sum);
/* The per-task CSV: job,client,submit_s,start_s,end_s,wait_s,host,gpus
 * (host and gpus "unplaced" for jobs that never ran). */
int sim_jobs_write_csv(FILE *f, const struct sim_jobs *jobs, const struct sim_outcome *out);

#endif
