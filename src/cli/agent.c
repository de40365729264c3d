/* gpunode agent — the agent alone, on a GPU host: dials out to the node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cli.h"
#include "gpu.h"
#include "node_server.h"
#include "role_opts.h"
#include "util.h"

static const char usage[] =
	"usage: gpunode agent --node URL [--token TOKEN] [--host NAME] [--state DIR] [--sim-gpus SPEC]\n"
	"Runs the agent of this GPU host; it only dials out to the node.\n"
	"  --node URL          the node, e.g. http://10.0.0.1:7070 (or $GPUNODE_URL)\n"
	"  --token TOKEN       an agent or admin token (or $GPUNODE_TOKEN)\n"
	"  --host NAME         this host's name in the pool (default: the hostname)\n"
	"  --state DIR         task logs and exit records (default $GPUNODE_DATA/agent)\n"
	"  --sim-gpus SPEC     simulated GPUs, e.g. 8xH100-80GB (default when no real GPU is found:\n"
	"                      " GPU_SIM_DEFAULT "; real ones are found through NVML, then nvidia-smi)\n"
	"  --kmsg PATH         kernel log to watch for Xid errors (default /dev/kmsg with real GPUs)\n"
	"  --boot-id-file PATH where the boot id is read (default /proc/sys/kernel/random/boot_id)\n"
	ROLE_EXECUTOR_USAGE;

int cli_agent(int argc, char **argv)
{
	struct role_opts o;
	int rc = role_opts_parse("agent", usage, argc, argv, ROLE_OPT_AGENT | ROLE_OPT_REMOTE, &o);
	if (rc)
		return rc < 0 ? CLI_OK : rc;
	struct agent_config ac = {0};
	const char *url = o.node_url ? o.node_url : getenv("GPUNODE_URL");
	const char *token = o.token ? o.token : getenv("GPUNODE_TOKEN");
	if (!url || !token) {
		cli_error("agent", "need --node URL and --token TOKEN (or GPUNODE_URL / GPUNODE_TOKEN)");
		return CLI_USAGE;
	}
	str_copy(ac.node_url, sizeof ac.node_url, url);
	str_copy(ac.token, sizeof ac.token, token);
	str_copy(ac.host, sizeof ac.host, o.host);
	if (o.state)
		str_copy(ac.state_dir, sizeof ac.state_dir, o.state);
	else
		snprintf(ac.state_dir, sizeof ac.state_dir, "%s/agent", o.data);
	struct err e;
	struct gpu_found found;
	if ((rc = role_find_gpus("agent", &o, &found)) != 0)
		return rc;
	ac.gpus = found.gpus;
	ac.n_gpus = found.n;
	role_agent_health(&o, &found, &ac);
	role_agent_executor(&o, &ac);
	signals_block();
	struct agent *a;
	if (agent_start(&ac, 60000, &a, &e) < 0) {
		cli_error("agent", "%s", e.msg);
		free(ac.gpus);
		return CLI_FAIL;
	}
	fprintf(stderr, "gpunode agent: host %s joined %s with %d GPU(s); Ctrl-C stops\n", ac.host, url, ac.n_gpus);
	signals_wait();
	agent_stop(a);
	free(ac.gpus);
	return CLI_OK;
}
