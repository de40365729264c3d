/* role_opts.h — options shared by the role verbs (up, serve, agent). */
#ifndef GPUNODE_ROLE_OPTS_H
#define GPUNODE_ROLE_OPTS_H

#include "agent.h"
#include "gpu.h"
#include "sched.h"

enum {
	ROLE_OPT_NODE = 1,  /* --data --listen --policy --host-grace */
	ROLE_OPT_AGENT = 2, /* --sim-gpus --host --state --kmsg --boot-id-file --executor --allow-shared-process */
	ROLE_OPT_REMOTE = 4 /* --node --token */
};

struct role_opts {
	char data[400];
	const char *listen;
	const char *sim_gpus; /* NULL: not given */
	char host[64];
	const char *state;
	const char *kmsg;         /* NULL: /dev/kmsg for real GPUs, none for simulated ones */
	const char *boot_id_file; /* NULL: the kernel's */
	const char *executor;     /* NULL: the agent picks */
	bool process_shared;      /* --allow-shared-process */
	const char *node_url;
	const char *token;
	enum sched_policy policy;
	int64_t host_grace_ms; /* 0: the node's default */
};

/* Parses argv for verb; mask says which option groups it takes. Returns 0,
 * CLI_USAGE on a bad option (message printed), or -1 after printing help. */
int role_opts_parse(const char *verb, const char *usage, int argc, char **argv, unsigned mask, struct role_opts *o);

/* The agent's GPUs: --sim-gpus, else real ones (NVML, nvidia-smi), else
 * the default simulated pool, announced as such. 0 or a CLI_ exit code. */
int role_find_gpus(const char *verb, const struct role_opts *o, struct gpu_found *found);
/* The agent's health settings (kernel log, boot id, NVML readings). */
void role_agent_health(const struct role_opts *o, const struct gpu_found *found, struct agent_config *ac);

/* The agent's executor settings (--executor, --allow-shared-process). */
void role_agent_executor(const struct role_opts *o, struct agent_config *ac);

/* The help lines of the executor options, for the verbs that run an agent. */
#define ROLE_EXECUTOR_USAGE                                                                                  \
	"  --executor NAME     docker, oci or process (default for `agent`: docker when its socket answers,\n" \
	"                      else oci when runc/crun is installed, else process; for `up`: process)\n"   \
	"  --allow-shared-process  let the process executor (no isolation) run more than one client's tasks\n"

#endif
