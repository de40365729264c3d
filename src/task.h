/* task.h — the task record and its state machine. One screen holds the whole
 * model (beanstalkd's dat.h habit). A task knows nothing about HTTP, SQL or
 * placement; other modules read and fill these fields.
 *
 * Lifecycle:
 *   queued -> assigned -> running -> succeeded | failed | lost
 *   queued -> cancelled | expired
 *   assigned/running -> cancelled (node asks the agent to stop it)
 *   assigned/running -> queued      (requeue: GPU unhealthy, host lost; attempts+1)
 *   assigned/running -> lost        (host lost and no attempts left)
 * Terminal states never change again. */
#ifndef GPUNODE_TASK_H
#define GPUNODE_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define TASK_ID_LEN 20           /* 12 hex digits of ms time + 8 hex of sequence/random */
#define TASK_CLIENT_MAX 64
#define TASK_MAX_GPUS 16         /* gang size limit: one host never has more */
#define TASK_GPU_UUID_MAX 64
#define TASK_HOST_MAX 64
#define TASK_MILLI_FULL 1000

enum task_state {
	TASK_QUEUED,
	TASK_ASSIGNED,
	TASK_RUNNING,
	TASK_SUCCEEDED,
	TASK_FAILED,
	TASK_CANCELLED,
	TASK_EXPIRED,
	TASK_LOST,
	TASK_STATE_COUNT
};

enum task_category {
	TASK_CAT_INFERENCE,
	TASK_CAT_TRAINING,
	TASK_CAT_FINETUNE,
	TASK_CAT_BATCH,
	TASK_CAT_COUNT
};

/* What a task needs from the pool. gpus >= 1 whole GPUs on one host, or, when
 * gpus == 1, a share of one GPU in milli-GPU (1..1000; 1000 = the whole GPU).
 * cpu_milli and mem_mb are 0 when the task does not care; when set they are
 * both what placement counts against the host and the container's limits. */
struct task_resources {
	int gpus;
	int milli;
	int64_t min_vram_mb;
	int64_t cpu_milli;
	int64_t mem_mb;
	/* Max run time, then stopped with reason "timeout"; 0: none. A resource
	 * too: a Degraded GPU takes only tasks whose time is this short
	 * (GPU_DEGRADED_MAX_RUNTIME_MS). */
	int64_t timeout_ms;
	char **models; /* allowed GPU models ("H100-80GB"); n_models == 0: any */
	int n_models;
};

struct task {
	char id[TASK_ID_LEN + 1];
	char client[TASK_CLIENT_MAX];
	enum task_category category;
	int priority; /* -1000..1000, higher runs first; default 0 */
	struct task_resources res;
	char **argv;  /* command, argc >= 1 */
	int argc;
	char **env;   /* "KEY=VALUE" strings */
	int n_env;
	int64_t max_wait_ms; /* 0: wait forever */

	/* How it runs (containers; the process backend ignores all but timeout) */
	char *image;           /* "busybox:local"; NULL: the executor's choice (none for process) */
	int64_t pids_limit;    /* 0: the executor's default */
	bool network;          /* false: no network */
	bool readonly_rootfs;  /* read-only root filesystem, the scratch dir writable */
	bool reuse_warm;       /* may reuse its client's warm container for the same image */

	enum task_state state;
	int attempts;          /* starts counted when assigned */
	int exit_code;         /* valid when has_exit_code */
	bool has_exit_code;
	/* short code: "nonzero_exit", "cancelled", "expired", "lost", "start_failed", "oom", "timeout",
	 * "image_not_found" (task_failure_reason_known lists them) */
	char *failure_reason;
	char *failure_message; /* human sentence */
	double cpu_seconds;     /* usage of the last run, as its executor measured it */
	int64_t peak_mem_bytes;

	int64_t created_ms, queued_ms, assigned_ms, started_ms, ended_ms; /* 0: not yet */

	/* placement, valid in assigned/running */
	char host[TASK_HOST_MAX];
	int n_gpus_assigned;
	char gpu_uuids[TASK_MAX_GPUS][TASK_GPU_UUID_MAX];

	char executor[16];     /* backend that ran it: "process", "docker", "oci"; "" until started */

	/* in-memory bookkeeping owned by the node core (not stored) */
	uint64_t seq;     /* arrival order, ties in the queue break on it */
	void *queue_slot; /* owned by queue.c */
};

const char *task_state_name(enum task_state s);
int task_state_parse(const char *name, enum task_state *out);
const char *task_category_name(enum task_category c);
int task_category_parse(const char *name, enum task_category *out);

bool task_state_terminal(enum task_state s);
/* True when from -> to is a legal transition (see the diagram above). */
bool task_transition_legal(enum task_state from, enum task_state to);

/* Fills id with a new unique, time-sortable id (lowercase hex, TASK_ID_LEN). */
void task_id_new(char id[TASK_ID_LEN + 1]);
/* True when s looks like a task id (right length, lowercase hex). */
bool task_id_valid(const char *s);

/* Checks a freshly built task for values out of range; fills e. */
int task_validate(const struct task *t, struct err *e);

struct task *task_new(void);
/* Deep copy (argv, env, models, image, failure strings). */
struct task *task_clone(const struct task *t);
void task_free(struct task *t);
/* True when reason is one of the failure codes above. */
bool task_failure_reason_known(const char *reason);
/* True when s is a plausible image reference: 1..255 of [A-Za-z0-9._:/@-],
 * not starting with '-'. */
bool task_image_valid(const char *s);
/* Replaces failure_reason/message (copies both; NULL clears). */
void task_set_failure(struct task *t, const char *reason, const char *message);

#endif
