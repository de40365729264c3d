/* exec.h — how an agent runs a task. Every backend (process, Docker Engine
 * API, OCI runtime) implements the same small vtable, so the agent's loop
 * never knows which one runs a task.
 *
 * A run's life through the vtable:
 *   prepare  make what the run needs ready (pull the image, unpack a rootfs);
 *            may take long, is called without any agent lock held
 *   start    create and start it; returns once it runs or failed to start
 *   logs     not a call: every backend streams the run's stdout and stderr
 *            into spec->log_path while it runs, so `gpunode logs -f` follows
 *            one file whatever the backend
 *   wait_exit  hands out one ended run (exit code, failure reason, usage)
 *   stop     SIGTERM now, SIGKILL once the grace passed
 *   usage    the run's resource use so far
 *   cleanup  removes what the run left behind (container, bundle) once its
 *            exit was delivered
 *   adopt    after an agent restart: finds the runs of this host by their
 *            labels, takes the running ones back, reports the exited ones,
 *            removes the orphans
 * A backend that cannot do one of these (the process backend cannot re-adopt
 * a child of a dead agent) says so through the result, never by crashing. */
#ifndef GPUNODE_EXEC_H
#define GPUNODE_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "gpu_devnodes.h"
#include "task.h"

/* Failure reasons a backend can name (task.h lists the node's own). */
#define EXEC_REASON_OOM "oom"
#define EXEC_REASON_TIMEOUT "timeout"
#define EXEC_REASON_IMAGE_NOT_FOUND "image_not_found"
#define EXEC_REASON_START_FAILED "start_failed"

#define EXEC_REASON_MAX 32
#define EXEC_MESSAGE_MAX 256

struct exec_spec {
	const char *task_id;
	const char *host;     /* the agent's host name: with task_id, names this run */
	const char *client;   /* who submitted it: warm containers are never shared across clients */
	char *const *argv;
	int argc;
	char *const *env; /* the task's own KEY=VALUE entries */
	int n_env;
	const char (*gpu_uuids)[TASK_GPU_UUID_MAX];
	int n_gpus;
	int milli;
	const char *workdir;  /* the task's scratch dir, created by the agent (absolute path) */
	const char *log_path; /* stdout and stderr go here */

	/* Containers (the process backend ignores these, see exec_process_new). */
	const char *image;      /* "busybox:local"; NULL or "": none given */
	int64_t memory_bytes;   /* 0: no limit */
	int64_t cpu_milli;      /* 1000 = one core; 0: no limit */
	int64_t pids_limit;     /* 0: the backend's default (EXEC_PIDS_DEFAULT) */
	bool network;           /* false: no network at all (loopback only) */
	bool readonly_rootfs;   /* the scratch dir stays writable */
	bool reuse_warm;        /* may run in (and leave behind) this client's warm container */
	int64_t timeout_ms;     /* the run is stopped (grace, then kill) after this long; 0: never */
	int stop_grace_ms;      /* grace used by the timeout */

	/* GPU devices, one entry per node the task may open (gpu_devnodes.h):
	 * simulated GPUs give their stand-in nodes; real GPUs give /dev/nvidiaN
	 * plus the control nodes, and real_gpus tells the Docker backend to ask
	 * for them through the nvidia driver (DeviceRequests with the UUIDs). */
	const struct gpu_devnode *devnodes;
	int n_devnodes;
	bool real_gpus;
};

#define EXEC_PIDS_DEFAULT 4096

struct exec_usage {
	double cpu_seconds;     /* user + system */
	int64_t peak_mem_bytes; /* the highest memory use seen */
};

struct exec_exit {
	char task_id[TASK_ID_LEN + 1];
	int exit_code;       /* 128 + signal when killed by a signal */
	int signal;          /* 0 when it exited normally */
	struct exec_usage usage;
	/* "" when the command's own exit code tells the story; else one of
	 * EXEC_REASON_* with a sentence in failure_message. */
	char failure_reason[EXEC_REASON_MAX];
	char failure_message[EXEC_MESSAGE_MAX];
};

/* One run the agent held before it restarted, as adopt found it. */
enum exec_adopt_state {
	EXEC_ADOPT_GONE,    /* nothing of it left (or the backend cannot take it back: killed) */
	EXEC_ADOPT_RUNNING, /* running, watched again: its exit comes through wait_exit */
	EXEC_ADOPT_EXITED,  /* ended while the agent was away: exit filled */
};

struct exec_adopt {
	char task_id[TASK_ID_LEN + 1];
	const char *log_path;  /* where its output continues (appended after what is there) */
	enum exec_adopt_state state;
	struct exec_exit exit;
};

struct exec_backend {
	const char *name;
	/* Makes the run's image ready. Errors carry the failure reason in
	 * reason (room for EXEC_REASON_MAX): image_not_found, start_failed. */
	int (*prepare)(struct exec_backend *b, const struct exec_spec *s, char *reason, struct err *e);
	/* Starts the task; returns once it runs (or failed to start, reason
	 * filled as for prepare). */
	int (*start)(struct exec_backend *b, const struct exec_spec *s, char *reason, struct err *e);
	/* Asks a task to stop: SIGTERM now, SIGKILL once grace_ms passed (the
	 * backend's wait_exit enforces the deadline). Unknown id: -1. */
	int (*stop)(struct exec_backend *b, const char *task_id, int grace_ms);
	/* Waits up to timeout_ms for one task to exit: 1 with out filled, 0 on
	 * timeout. Enforces stop graces and task timeouts. One thread only. */
	int (*wait_exit)(struct exec_backend *b, int timeout_ms, struct exec_exit *out);
	/* The usage of a running task so far; -1 when it is not running here. */
	int (*usage)(struct exec_backend *b, const char *task_id, struct exec_usage *out);
	/* Removes what an ended run left (its container); idempotent. */
	void (*cleanup)(struct exec_backend *b, const char *task_id);
	/* After a restart: fills state (and exit) of each of runs[0..n), and
	 * removes every other run labelled for host (orphans). */
	int (*adopt)(struct exec_backend *b, const char *host, struct exec_adopt *runs, int n, struct err *e);
	/* How many tasks it runs now. */
	int (*running)(struct exec_backend *b);
	/* Stops everything it runs (SIGKILL) and frees the backend. */
	void (*destroy)(struct exec_backend *b);
};

/* Development backend: a child process in its own process group and working
 * directory, with exactly the assigned GPUs named in CUDA_VISIBLE_DEVICES and
 * NVIDIA_VISIBLE_DEVICES. Not isolated: for single-tenant development only.
 * It ignores image and limits, but honours timeout_ms. */
struct exec_backend *exec_process_new(struct err *e);

/* The environment a task sees, shared by every backend: base entries first
 * (PATH, HOME), the task's own next, then the GPU and gpunode variables last
 * so a task cannot override which GPUs it sees. NULL-terminated; free with
 * exec_env_free. */
char **exec_env_build(const struct exec_spec *s, const char *path, const char *home, int *n_out);
void exec_env_free(char **env);

/* Warm containers (docker and oci backends): the key a task may reuse a
 * warm container by. The client comes first, so two clients never share one;
 * then everything the container was made with (image, limits, network,
 * read-only root, GPU device nodes). */
void exec_warm_key(const struct exec_spec *s, char *key, size_t cap);
/* Empties a warm container's scratch dir between runs; the dir itself stays
 * (it is mounted). Symlinks in it are removed, never followed. */
void exec_wipe_scratch(const char *dir);

/* Fills x as a failure of the given reason with a formatted message. */
void exec_exit_set_failure(struct exec_exit *x, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One wait of a wait_exit loop: polls fds[0..n-1] (pidfds) and fds[n] (a
 * wake-up eventfd, drained when it fired) until one is readable, deadline_ms
 * (< 0: none) or end_ns (mono clock). 0 once end_ns has passed, else 1. */
struct pollfd;
int exec_poll_round(struct pollfd *fds, int n, int64_t end_ns, int deadline_ms);

#endif
