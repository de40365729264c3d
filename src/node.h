/* node.h — the node core: the one owner of the scheduling state (pool,
 * queue, the active tasks) under one coarse lock, as in Redis. The API
 * threads call in; the scheduler thread places; every change is written to
 * the store in the same order it happens in memory, and nothing leaves the
 * node (an HTTP answer, a command to an agent) before its write is committed.
 *
 * Only non-terminal tasks live in memory. Reads of any task go to the store,
 * which is never behind anything the node has acknowledged. */
#ifndef GPUNODE_NODE_H
#define GPUNODE_NODE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "pool.h"
#include "queue.h"
#include "sched.h"
#include "store.h"
#include "strmap.h"
#include "task.h"

struct node_config {
	char data_dir[512];
	struct sched_config sched;
	struct queue_config queue;
	int64_t heartbeat_interval_ms; /* told to agents; default 1,000 */
	int64_t host_grace_ms;         /* silent this long: host lost; default 10,000 */
	int max_attempts;              /* assignments before a lost task stays lost; default 3 */
};

void node_config_default(struct node_config *c);

struct active_task;   /* node.c: a task plus its placement bookkeeping */
struct host_link;     /* node_agents.c: one agent's command outbox */

struct node_counters {
	uint64_t submitted, placed, requeued, expired, cancelled, finished, sched_passes, sched_full_passes;
};

struct node {
	struct node_config cfg;
	pthread_mutex_t mu;      /* the one lock over everything below */
	pthread_cond_t sched_cv; /* wakes the scheduler thread */
	bool sched_dirty;        /* something changed since the last pass */
	bool stopping;

	struct store *store;
	struct pool *pool;
	struct queue *queue;
	struct strmap active;        /* task id -> struct active_task */
	struct host_link *links;     /* list, one per registered host */
	uint64_t next_seq;           /* task arrival order */

	/* Arrival passes (node_sched.c): ids queued since the last pass, and
	 * what the last full pass established about the rest of the queue. */
	char (*arrivals)[TASK_ID_LEN + 1];
	size_t n_arrivals, cap_arrivals;
	uint64_t known_pool_version;
	int known_reserved;
	int64_t last_full_pass_ms;
	int64_t next_full_pass_ns;   /* pacing of full passes (mono clock) */
	int64_t last_pass_ns;        /* when the last pass ran: arrival passes are rate limited */

	/* Drained GPUs (DATA/gpu-drains) of hosts not registered since the
	 * node started: applied when their host registers (node_gpu.c). */
	char (*drains_pending)[TASK_GPU_UUID_MAX];
	size_t n_drains_pending;
	/* Called (lock held) when a command needs no store write, so parked
	 * long polls learn about it without waiting for the next commit. */
	void (*commands_hook)(void *arg);
	void *commands_hook_arg;

	struct node_counters counters;
	pthread_t sched_thread;
	bool sched_started;
};

/* Opens the store in cfg.data_dir, loads the active tasks back into memory,
 * starts the scheduler thread. */
int node_open(const struct node_config *cfg, struct node **out, struct err *e);
/* Stops the scheduler, wakes every long poll, closes the store. */
void node_close(struct node *n);

/* --- client operations (any thread) --- */
/* Takes ownership of t (validated by the caller), stamps id, client and
 * times, queues it, and enqueues its store write: *ticket is the write to
 * wait for before acknowledging. *copy is a snapshot for the answer (caller
 * frees). */
int node_submit(struct node *n, struct task *t, const char *client, struct task **copy, uint64_t *ticket,
		struct err *e);
/* Cancels a task (client NULL: admin, any task); *ticket as for submit. */
int node_cancel(struct node *n, const char *id, const char *client, struct task **copy, uint64_t *ticket,
		struct err *e);
/* Reads a task from the store; client NULL: admin. A task of another client
 * is ERR_NOT_FOUND (its existence is not revealed). */
int node_get_task(struct node *n, const char *id, const char *client, struct task **out, struct err *e);

/* --- agent operations (node_agents.c) --- */
/* Registers (or re-registers) a host: its GPUs join the pool, and the tasks
 * the node had placed there are reconciled with what the agent still holds
 * (req["tasks"]). Answers {"host","heartbeat_interval_ms","commands_after","stop":[ids]}. */
int node_agent_register(struct node *n, json_t *req, json_t **resp, struct err *e);
int node_agent_heartbeat(struct node *n, const char *host, struct err *e);
/* Commands with seq > after whose writes are committed: {"commands":[...]}.
 * (The long poll waits in the HTTP layer until node_agent_commands_ready.) */
int node_agent_commands(struct node *n, const char *host, uint64_t after, json_t **resp, struct err *e);
/* True when a long poll for host should answer now: a command is ready, the
 * host is no longer registered, or the node is stopping. */
bool node_agent_commands_ready(struct node *n, const char *host, uint64_t after);
/* Applies a batch of {task_id, event, ...} reports; *ticket is the store
 * write to wait for before acknowledging (0: nothing written). */
int node_agent_reports(struct node *n, const char *host, json_t *reports, uint64_t *ticket, struct err *e);

/* --- GPU health (node_gpu.c) --- */
/* Applies an agent's {"gpus":[{uuid, health, reason, action, clear_gen,
 * readings...}]}: Unhealthy GPUs are evacuated. *ticket as for reports. */
int node_agent_gpu_report(struct node *n, const char *host, json_t *req, uint64_t *ticket, struct err *e);
/* Parses one GPU's health fields (register and report bodies). */
int node_gpu_parse_status(json_t *g, const char *where, enum gpu_health *health, struct gpu_status *st,
			  unsigned *clear_gen, struct err *e);
/* Sets g's health; when Unhealthy, requeues its tasks and tells the agent
 * to kill them. Returns the last store ticket or 0. */
uint64_t node_gpu_set_health_locked(struct node *n, struct gpu *g, enum gpu_health health);
/* Operator verbs; *resp is the GPU's JSON (or the drill's receipt). */
int node_gpu_drain(struct node *n, const char *uuid, bool drain, json_t **resp, struct err *e);
int node_gpu_clear(struct node *n, const char *uuid, json_t **resp, struct err *e);
int node_gpu_inject_fault(struct node *n, const char *uuid, int xid, json_t **resp, struct err *e);
/* Drains survive restarts: loaded at open, applied as hosts register. */
int node_gpu_load_drains(struct node *n, struct err *e);
void node_gpu_apply_drains_locked(struct node *n, struct host *h);
json_t *node_gpu_json_locked(const struct gpu *g);

/* --- reads for the API (take the lock briefly) --- */
json_t *node_gpus_json(struct node *n);
json_t *node_hosts_json(struct node *n);
/* The node's metrics in Prometheus text format (metrics.c); caller frees. */
char *node_metrics_text(struct node *n, size_t *len);

/* --- used between node.c and node_agents.c (lock held) --- */
struct active_task *node_active_find(struct node *n, const char *id);
/* The one place an active task's state changes: an illegal transition (see
 * task.h) is a bug, refused and logged, never written. */
bool node_move_locked(struct task *t, enum task_state to);
/* Releases a task's GPUs, sets its final state, writes it, drops it from
 * memory; returns the store ticket. */
uint64_t node_finish_locked(struct node *n, struct active_task *a, enum task_state to, const char *reason,
			    const char *message, const char *detail);
/* Puts an assigned/running task back in the queue (attempt counted at its next
 * placement) or, past max_attempts, marks it lost. Returns the store ticket. */
uint64_t node_requeue_locked(struct node *n, struct active_task *a, const char *why);
/* Agent outboxes (node_agents.c). */
struct host_link *node_link_find(struct node *n, const char *host, bool create);
/* Commands become visible to the agent once their store write (ticket) has
 * committed: nothing leaves the node before it is durable. */
uint64_t node_link_push_start(struct node *n, struct host_link *l, const struct task *t, uint64_t ticket);
uint64_t node_link_push_stop(struct node *n, struct host_link *l, const char *task_id, uint64_t ticket);
/* A stop without the grace period: the task's GPU failed, nothing to save. */
uint64_t node_link_push_stop_now(struct node *n, struct host_link *l, const char *task_id, uint64_t ticket);
/* Any other command object (stolen); ticket 0: visible at once. */
uint64_t node_link_push_cmd(struct node *n, struct host_link *l, json_t *cmd, uint64_t ticket);
bool node_link_registered(const struct host_link *l);
/* The registered link of host (and marks it seen), or an error saying why not. */
struct host_link *node_registered_link(struct node *n, const char *host, struct err *e);
/* Marks silent hosts lost and requeues their tasks. Returns the last ticket or 0. */
uint64_t node_check_hosts_locked(struct node *n, int64_t now);
void node_links_free(struct node *n);


struct task *node_active_task(struct active_task *a);
/* Active tasks placed on host (assigned or running); out may be NULL to count. */
size_t node_active_on_host(struct node *n, const char *host, struct active_task **out, size_t cap);
/* After a restart: books an active task's placement again when its agent
 * claims it; requeues it when its GPUs are gone. Returns a ticket or 0. */
uint64_t node_claim_placement_locked(struct node *n, struct active_task *a);

/* Sets stopping and wakes every waiter (long polls, the scheduler), so the
 * HTTP server can stop before node_close. */
void node_shutdown_begin(struct node *n);

/* The scheduler thread (node_sched.c). */
void *node_sched_main(void *arg);
/* Records a task newly queued (submitted or requeued) for the next pass. */
void node_note_arrival_locked(struct node *n, const struct task *t);
/* Books a placement decision: the task becomes assigned (attempt counted)
 * and a start command goes to its host's outbox. Returns the store ticket. */
uint64_t node_assign_locked(struct node *n, const struct sched_decision *d, int64_t now);

/* Wakes the scheduler thread (lock held). */
void node_kick_locked(struct node *n);

#endif
