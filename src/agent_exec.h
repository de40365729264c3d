/* agent_exec.h — the agent's side of executors: which backend runs this
 * host's tasks, and how a start command becomes an exec_spec. Kept apart
 * from agent.c so the agent's threads never depend on a backend's details. */
#ifndef GPUNODE_AGENT_EXEC_H
#define GPUNODE_AGENT_EXEC_H

#include <jansson.h>

#include "agent.h"
#include "exec.h"

/* Opens the backend cfg->executor names; "" picks: docker when its socket
 * answers, else oci when runc or crun is installed, else process. Logs which
 * one and why. For a container backend, creates the GPUs' stand-in device
 * nodes under state_dir/dev. */
struct exec_backend *agent_exec_open(const struct agent_config *cfg, struct err *e);

/* True when backend b may run a task of client now: the process backend
 * isolates nothing, so it runs one client's tasks only (the first it saw),
 * unless cfg->process_shared. *first_client keeps that client. */
bool agent_exec_admits(const struct exec_backend *b, const struct agent_config *cfg, char *first_client,
		       size_t cap, const char *client, struct err *e);

/* A start command turned into an exec_spec; strings are borrowed from the
 * command's JSON, which must outlive it. */
struct agent_start_spec {
	struct exec_spec s;
	char **argv, **env;
	char (*uuids)[TASK_GPU_UUID_MAX];
	struct gpu_devnode devnodes[GPU_DEVNODES_MAX];
};

/* Fills rs from the "task" object of a start command; workdir and log_path
 * are the task's own paths. Container backends get the device nodes of the
 * assigned GPUs. ERR_INVALID for a command the agent cannot run. */
int agent_start_spec_fill(struct agent_start_spec *rs, json_t *spec, const struct agent_config *cfg,
			  const struct exec_backend *b, const char *workdir, const char *log_path, struct err *e);
void agent_start_spec_free(struct agent_start_spec *rs);

#endif
