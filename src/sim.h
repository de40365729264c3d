/* sim.h — `gpunode sim`: the real scheduler (sched_place + pool_alloc on a
 * struct pool) driven by a trace instead of agents. No copy of the scheduler
 * lives here: the simulator builds the pool, feeds requests one by one and
 * keeps the books of the experiment.
 *
 * openb (the FGD paper's packing protocol,
 * ../shared/data/traces/openb/PROTOCOL.md): one host per node of the node
 * list, pods arrive one by one, never depart, are never retried; a pod that
 * fits nowhere is dropped. After every pod the simulator records arrived
 * (requested GPU milli so far, dropped pods included) and used (allocated
 * GPU milli) as percentages of capacity; the curve is the mean alloc% per
 * arrived% bucket, and bucket 100 is the headline number. */
#ifndef GPUNODE_SIM_H
#define GPUNODE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "sched.h"

#define SIM_NAME_MAX 64
#define SIM_MODEL_MAX 48
#define SIM_NODE_MAX_PODS 1000 /* a node holds fewer than 1,001 pods */
#define SIM_BUCKETS 131        /* arrived% 0..130 */

struct sim_node {
	char name[SIM_NAME_MAX];
	int64_t cpu_milli, mem_mib;
	int gpus;
	char model[SIM_MODEL_MAX];
};

struct sim_nodes {
	struct sim_node *v;
	int n;
};

struct sim_pod {
	int64_t idx; /* pod_idx of a sequence file; position for generated sequences */
	char name[SIM_NAME_MAX];
	int64_t cpu_milli, mem_mib;
	int num_gpu;   /* 0: CPU-only */
	int gpu_milli; /* per GPU, normalised: 0 for CPU-only, 1000 for num_gpu > 1 */
	char **models; /* allowed GPU models (gpu_spec split on '|'); n_models 0: any */
	int n_models;
};

struct sim_pods {
	struct sim_pod *v;
	size_t n, cap;
};

/* Readers. Errors name the file, the line and what is wrong. The node reader
 * takes both the trace's list (sn,cpu_milli,memory_mib,gpu,model) and
 * sequences/nodes.csv (node_idx,name,cpu_milli,memory_mib,num_gpu,model). */
int sim_read_nodes(const char *path, struct sim_nodes *out, struct err *e);
int sim_read_nodes_file(FILE *f, const char *name, struct sim_nodes *out, struct err *e);
/* An arrival sequence: pod_idx,name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec. */
int sim_read_sequence(const char *path, struct sim_pods *out, struct err *e);
int sim_read_sequence_file(FILE *f, const char *name, struct sim_pods *out, struct err *e);
/* A pod list: name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]. */
int sim_read_pods(const char *path, struct sim_pods *out, struct err *e);
int sim_read_pods_file(FILE *f, const char *name, struct sim_pods *out, struct err *e);

void sim_nodes_free(struct sim_nodes *n);
void sim_pods_free(struct sim_pods *p);

/* GPU milli a pod requests: num_gpu x gpu_milli. */
int64_t sim_pod_demand(const struct sim_pod *p);
/* Σ gpus x 1000 over the nodes. */
int64_t sim_capacity(const struct sim_nodes *n);

/* The arrival sequence of the protocol: the list sorted by name, shuffled
 * with seed, then pods drawn uniformly with replacement appended until the
 * next one would pass tune x capacity. Our own RNG (splitmix64), as the
 * protocol allows. out gets copies; idx is the position. */
void sim_arrival_sequence(const struct sim_pods *list, uint64_t seed, double tune, int64_t capacity,
			  struct sim_pods *out);

/* The workload's shapes for the frag policy: pods grouped by their whole
 * request (num_gpu, gpu_milli, cpu_milli, memory_mib, models), most frequent
 * first, as many as cover `coverage` of the pods, weighted by their share of
 * all pods (FGD's target workload and popularity). CPU-only pods are one
 * shape whatever their CPU: they can use no GPU milli on any node, so they
 * add the same amount to every candidate's increase, but they are part of
 * the popularity, and with FGD's rounded score that constant matters.
 * *out is malloc'd; shapes point into pods. */
size_t sim_workload_shapes(const struct sim_pods *pods, double coverage, struct sched_shape **out);

/* arrive% of the protocol: round(arrived x 100 / capacity), half to even. */
int sim_arrive_pct(int64_t arrived, int64_t capacity);
/* alloc% in hundredths of a percent: used x 10000 / capacity, half to even. */
int64_t sim_alloc_centi_pct(int64_t used, int64_t capacity);

struct sim_result {
	size_t pods, placed, dropped;
	int64_t capacity, arrived, used;
	/* per arrived% bucket: Σ alloc% (hundredths) and number of events */
	int64_t sum[SIM_BUCKETS], count[SIM_BUCKETS];
};

/* Bucket b of the protocol: the mean over events with arrive% == b, or, if
 * none, over b-1..b+1 (NAN if none there either). */
double sim_bucket(const struct sim_result *r, int b);

struct sim_openb_opts {
	struct sched_config cfg;            /* policy; shapes NULL: taken from shapes_from */
	const struct sim_pods *shapes_from; /* the workload whose shapes frag protects; NULL: the sequence */
	FILE *placements;                   /* NULL: none written */
};

/* Runs the sequence through sched_place + pool_alloc on a fresh pool of the
 * nodes, writing the placement file (pod_idx,node_idx,gpus) as it goes. */
int sim_openb_run(const struct sim_nodes *nodes, const struct sim_pods *seq, const struct sim_openb_opts *o,
		  struct sim_result *res, struct err *e);

#endif
