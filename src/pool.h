/* pool.h — hosts and their GPUs, with whole and fractional (milli-GPU)
 * capacity. The pool only keeps books: it never talks to hardware (gpu.c
 * does) and never decides placement (sched.c does). Not thread-safe: the
 * node core owns it under its one lock. */
#ifndef GPUNODE_POOL_H
#define GPUNODE_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "task.h"

enum gpu_health { GPU_HEALTHY, GPU_DEGRADED, GPU_UNHEALTHY };

#define GPU_REASON_MAX 160
#define GPU_XID_KINDS 8 /* distinct Xids counted per GPU for /metrics */

/* What the GPU's agent last said about it. The node only shows and exports
 * these; `health` (below) is what placement acts on. Readings < 0: unknown. */
struct gpu_status {
	char reason[GPU_REASON_MAX]; /* plain words; "" when healthy */
	char action[24];             /* "none", "reboot_host", "hardware_inspection", "check_application" */
	int64_t since_ms;            /* when health last changed (agent clock) */
	int util_pct;
	int64_t mem_used_mb;
	int temp_c;
	double power_w;
	struct {
		int xid;
		int64_t count;
	} xids[GPU_XID_KINDS];
	int n_xids;
};

struct host;

struct gpu {
	char uuid[TASK_GPU_UUID_MAX];
	int index;              /* index on its host (nvidia-smi order) */
	char model[48];         /* "H100-80GB", "A100-40GB", "RTX4090-24GB" */
	int64_t vram_mb;
	char arch[16];          /* "sm_90" */
	int nvlink_group;       /* GPUs with the same group talk over NVLink; -1 unknown */
	bool simulated;
	int milli_alloc;        /* 0..1000 */
	char pci_bus_id[32];    /* "00000000:1B:00.0"; simulated GPUs get made-up ones */
	enum gpu_health health; /* from the agent's health reports */
	bool draining;          /* operator drain: no new placements */
	unsigned clear_gen;     /* operator clears sent to the agent; stale reports are ignored */
	struct gpu_status status;
	struct host *host;      /* back pointer, set by the pool */
};

struct host {
	char id[TASK_HOST_MAX];
	struct gpu *gpus;       /* owned, n_gpus entries, index order */
	int n_gpus;
	int64_t cpu_milli, cpu_milli_alloc; /* 0 capacity: not tracked */
	int64_t mem_mb, mem_mb_alloc;       /* 0 capacity: not tracked */
	bool online;            /* agent heartbeating */
	int64_t last_seen_ms;
	int pos;                /* position in pool->hosts */
	void *sched_slot;       /* owned by sched.c (indexes); NULL until it sets one */
};

/* Where one task goes: a host and the GPUs on it, each charged `milli`. */
struct placement {
	struct host *host;
	int n;
	int gpu_idx[TASK_MAX_GPUS];
	int milli; /* per GPU: 1000 for whole GPUs, the share for fractional tasks */
};

struct pool {
	struct host **hosts;
	int n_hosts, cap_hosts;
	void *index;            /* owned by pool.c (uuid and host id lookup) */
	uint64_t version;       /* bumped on every change; lets sched cache */
};

struct pool *pool_new(void);
void pool_free(struct pool *p);

/* Adds a host, or replaces the GPU list of an existing one. On replace, the
 * allocation, health and draining of GPUs whose uuid stays are kept (an agent
 * re-registering after a restart must not lose the books). gpus is copied. */
struct host *pool_upsert_host(struct pool *p, const char *id, const struct gpu *gpus, int n,
			      int64_t cpu_milli, int64_t mem_mb);
struct host *pool_find_host(const struct pool *p, const char *id);
struct gpu *pool_find_gpu(const struct pool *p, const char *uuid);

/* True when the placement still fits (capacity, health, online). */
bool pool_fits(const struct pool *p, const struct placement *pl, const struct task_resources *r);
/* Charges / refunds a placement. pool_alloc returns -1 (and changes nothing)
 * when it no longer fits. */
int pool_alloc(struct pool *p, const struct placement *pl, const struct task_resources *r);
void pool_release(struct pool *p, const struct placement *pl, const struct task_resources *r);
/* Rebuilds a placement from a task's host and gpu_uuids (after a restart). */
int pool_placement_of(const struct pool *p, const struct task *t, struct placement *out);

/* Marks host online/offline or a GPU's health/draining; bumps version. */
void pool_set_online(struct pool *p, struct host *h, bool online);
void pool_set_gpu_health(struct pool *p, struct gpu *g, enum gpu_health h);
void pool_set_gpu_draining(struct pool *p, struct gpu *g, bool draining);

/* What one GPU of a placement for r is charged: the share for a fractional
 * task (gpus == 1, milli < 1000), 1000 for whole GPUs, 0 for gpus == 0
 * (a CPU-only task, as in the openb traces that gpunode sim replays). */
int pool_task_milli(const struct task_resources *r);
/* True when new work may go on g: healthy, not draining, host online. */
bool pool_gpu_usable(const struct gpu *g);
/* A Degraded GPU finishes what it runs and takes only short work: tasks
 * with a time limit of at most this (a short task is soon off it again). */
#define GPU_DEGRADED_MAX_RUNTIME_MS (15 * 60 * 1000)
/* True when r declares a time limit of at most GPU_DEGRADED_MAX_RUNTIME_MS. */
bool pool_task_short(const struct task_resources *r);
/* Not unhealthy, not draining, host online: the scheduler indexes it
 * (whether a given task may use it is pool_gpu_takes). */
bool pool_gpu_schedulable(const struct gpu *g);
/* True when the task r may start on g: usable, or Degraded and r short. */
bool pool_gpu_takes(const struct gpu *g, const struct task_resources *r);

struct pool_totals {
	int hosts, hosts_online, gpus, gpus_healthy;
	int64_t milli_capacity, milli_allocated; /* over online, healthy GPUs */
};
void pool_totals(const struct pool *p, struct pool_totals *out);

const char *gpu_health_name(enum gpu_health h);

#endif
