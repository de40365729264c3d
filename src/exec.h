/* exec.h — how an agent runs a task. Every backend (process now; Docker
 * Engine API and OCI runtime next) implements the same small vtable, so the
 * agent's loop never knows which one runs a task. */
#ifndef GPUNODE_EXEC_H
#define GPUNODE_EXEC_H

#include <stdint.h>

#include "err.h"
#include "task.h"

struct exec_spec {
	const char *task_id;
	const char *host;     /* the agent's host name: with task_id, names this run */
	char *const *argv;
	int argc;
	char *const *env; /* the task's own KEY=VALUE entries */
	int n_env;
	const char (*gpu_uuids)[TASK_GPU_UUID_MAX];
	int n_gpus;
	int milli;
	const char *workdir;  /* the task's scratch dir, created by the agent */
	const char *log_path; /* stdout and stderr go here */
};

struct exec_exit {
	char task_id[TASK_ID_LEN + 1];
	int exit_code;       /* 128 + signal when killed by a signal */
	int signal;          /* 0 when it exited normally */
	double cpu_seconds;  /* user + system */
	int64_t max_rss_kb;
};

struct exec_backend {
	const char *name;
	/* Starts the task; returns once it runs (or failed to start). */
	int (*start)(struct exec_backend *b, const struct exec_spec *s, struct err *e);
	/* Asks a task to stop: SIGTERM now, SIGKILL once grace_ms passed (the
	 * backend's wait_exit enforces the deadline). Unknown id: -1. */
	int (*stop)(struct exec_backend *b, const char *task_id, int grace_ms);
	/* Waits up to timeout_ms for one task to exit: 1 with out filled, 0 on
	 * timeout. Called from one thread only. */
	int (*wait_exit)(struct exec_backend *b, int timeout_ms, struct exec_exit *out);
	/* How many tasks it runs now. */
	int (*running)(struct exec_backend *b);
	/* Stops everything (SIGKILL) and frees the backend. */
	void (*destroy)(struct exec_backend *b);
};

/* Development backend: a child process in its own process group and working
 * directory, with exactly the assigned GPUs named in CUDA_VISIBLE_DEVICES and
 * NVIDIA_VISIBLE_DEVICES. Not isolated: for single-tenant development only. */
struct exec_backend *exec_process_new(struct err *e);

#endif
