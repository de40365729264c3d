/* exec_docker_impl.h — the Docker backend's inside, shared by its files:
 * exec_docker.c (vtable, deadlines, usage), exec_docker_run.c (create,
 * start, the watcher thread), exec_docker_warm.c (per-client warm
 * containers), exec_docker_adopt.c (finding runs again after a restart). */
#ifndef GPUNODE_EXEC_DOCKER_IMPL_H
#define GPUNODE_EXEC_DOCKER_IMPL_H

#include <pthread.h>

#include "docker_api.h"
#include "exec_docker.h"

#define DOCKER_ID_MAX 80

struct docker_warm;

/* One task run: its container (or, warm, an exec in a warm container). */
struct docker_run {
	char task_id[TASK_ID_LEN + 1];
	char container[DOCKER_ID_MAX];
	char exec_id[DOCKER_ID_MAX]; /* warm runs only */
	char log_path[700];
	struct docker_warm *warm;    /* NULL: its own container */
	long long skip_bytes;        /* adopted: output already in the log */
	int64_t timeout_at_ns, kill_at_ns; /* 0: none */
	int grace_ms;
	bool timed_out, killed;
	bool ended, delivered;       /* watcher done; exit handed out */
	bool has_thread;
	pthread_t watcher;
	struct exec_usage usage;     /* sampled while it runs */
	long long cpu_base_ns;       /* warm: the container's CPU before this task */
	long long oom_base;          /* warm: the container's OOM kills before this task */
	struct exec_exit exit;
	struct docker_backend *b;
	struct docker_run *next;
};

/* An idle-able container kept for one client's next task. */
struct docker_warm {
	char container[DOCKER_ID_MAX];
	char key[1024];        /* client, image, limits, network, devices */
	char scratch[700];     /* its scratch dir on the host */
	bool busy, discard;    /* discard: a task was stopped in it, never reuse */
	int64_t idle_since_ms;
	struct docker_warm *next;
};

struct docker_backend {
	struct exec_backend base;
	char socket[256];
	char host[TASK_HOST_MAX];
	char state_dir[512];
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* a watcher ended a run */
	struct docker_run *runs;
	struct docker_warm *warms;
	unsigned warm_seq;
};

/* The container name of a task's run on host: "gpunode-HOST-ID". */
void docker_container_name(const char *host, const char *suffix, char *out, size_t cap);

/* Creates and starts a container for s; fills id. reason as exec.h. */
int docker_create_start(struct docker_backend *b, const struct exec_spec *s, const char *scratch, bool warm,
			char *id, size_t cap, char *reason, struct err *e);
/* Force-removes a container (and its anonymous volumes); errors ignored. */
void docker_remove(struct docker_backend *b, const char *container);
/* Signals a run (its container, or a warm run's process). */
void docker_run_signal(struct docker_backend *b, struct docker_run *r, const char *signal);
/* Copies r's output into its log until it ends, then reads its exit: the
 * watcher's whole work, also run inline for a container found exited. */
void docker_run_follow_to_end(struct docker_run *r);
/* Starts the watcher thread of r (added to b->runs by the caller). */
void docker_run_watch(struct docker_run *r);

/* Runs s in the client's warm container (made when none is idle); fills r. */
int docker_warm_start(struct docker_backend *b, const struct exec_spec *s, struct docker_run *r, char *reason,
		      struct err *e);
/* A warm run ended: the container idles again (scratch wiped) or, when its
 * task was stopped, goes away. Lock held. */
void docker_warm_release(struct docker_backend *b, struct docker_run *r);
/* Removes warm containers idle past EXEC_DOCKER_WARM_IDLE_MS (all when
 * everything: destroy). Lock held. */
void docker_warm_expire(struct docker_backend *b, bool everything);

/* The cgroup counters of a container: CPU ns and peak memory; -1 when the
 * cgroup is not there (not running). Also the OOM-kill count (cgroup v1
 * memory.oom_control, v2 memory.events). */
int docker_cgroup_read(const char *container, long long *cpu_ns, long long *peak_bytes, long long *oom_kills);
/* Resets the peak memory counter (warm containers, between tasks). */
void docker_cgroup_reset_peak(const char *container);

int docker_adopt(struct exec_backend *eb, const char *host, struct exec_adopt *runs, int n, struct err *e);

#endif
