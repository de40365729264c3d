/* gpunode up — the default: the node and one local agent in one process.
 * The agent talks to the node over loopback HTTP, the same protocol a remote
 * agent uses, so what runs here is what runs across machines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "cli.h"
#include "gpu.h"
#include "node_server.h"
#include "role_opts.h"
#include "util.h"

static const char usage[] =
	"usage: gpunode up [--data DIR] [--listen ADDR:PORT] [--sim-gpus SPEC] [--host NAME] [--policy frag|bestfit]\n"
	"Runs the node and a local agent in one process (Ctrl-C stops both).\n"
	"  --data DIR          state: database, logs, admin.token (default $GPUNODE_DATA or /var/lib/gpunode)\n"
	"  --listen ADDR:PORT  default 127.0.0.1:7070\n"
	"  --sim-gpus SPEC     simulated GPUs, e.g. 8xH100-80GB or 2xA100-40GB,4xRTX4090-24GB\n"
	"                      (default when no real GPU is found: " GPU_SIM_DEFAULT ")\n"
	"  --host NAME         this host's name in the pool (default: the hostname)\n"
	"  --policy NAME       placement policy: frag (default) or bestfit\n"
	"  --host-grace SECS   a host silent this long is declared lost (default 10)\n"
	"  --kmsg PATH         kernel log to watch for Xid errors (default /dev/kmsg with real GPUs;\n"
	"                      a plain file works too: drills and tests append dmesg lines to it)\n"
	"  --boot-id-file PATH where the boot id is read (default /proc/sys/kernel/random/boot_id)\n"
	ROLE_EXECUTOR_USAGE
	"Then: gpunode submit --gpus 1 -- echo hello; gpunode tasks; gpunode logs ID\n";

int node_config_from_opts(const struct role_opts *o, struct node_config *cfg);

static int start_local_agent(const struct role_opts *o, const struct node_server *s, const struct gpu_found *found,
			     struct agent **out, struct err *e)
{
	struct agent_config ac = {.gpus = found->gpus, .n_gpus = found->n};
	role_agent_health(o, found, &ac);
	role_agent_executor(o, &ac);
	/* `up` is the one-machine, try-it-now role: image-less tasks must run
	 * out of the box, so it uses the process executor (one client only)
	 * unless told otherwise. `gpunode agent`, the provider's role, picks a
	 * container executor by itself. */
	if (!o->executor) {
		str_copy(ac.executor, sizeof ac.executor, "process");
		fprintf(stderr, "gpunode up: tasks run as plain processes for one client (--executor docker|oci for "
				"isolated containers)\n");
	}
	str_copy(ac.node_url, sizeof ac.node_url, s->url);
	str_copy(ac.token, sizeof ac.token, s->admin_token);
	str_copy(ac.host, sizeof ac.host, o->host);
	snprintf(ac.state_dir, sizeof ac.state_dir, "%s/agent", o->data);
	return agent_start(&ac, 5000, out, e);
}

int cli_up(int argc, char **argv)
{
	struct role_opts o;
	int rc = role_opts_parse("up", usage, argc, argv, ROLE_OPT_NODE | ROLE_OPT_AGENT, &o);
	if (rc)
		return rc < 0 ? CLI_OK : rc;
	struct node_config cfg;
	struct gpu_found found;
	struct err e;
	if (node_config_from_opts(&o, &cfg) < 0) {
		cli_error("up", "--data path too long");
		return CLI_USAGE;
	}
	if ((rc = role_find_gpus("up", &o, &found)) != 0)
		return rc;
	signals_block();
	struct node_server s;
	struct agent *agent = NULL;
	if (node_server_start(&s, &cfg, o.listen, &e) < 0) {
		cli_error("up", "%s", e.msg);
		free(found.gpus);
		return CLI_FAIL;
	}
	if (start_local_agent(&o, &s, &found, &agent, &e) < 0) {
		cli_error("up", "local agent: %s", e.msg);
		node_server_stop(&s);
		free(found.gpus);
		return CLI_FAIL;
	}
	fprintf(stderr, "gpunode up: node on %s, local agent on host %s with %d %sGPU(s) [%s], data %s\n", s.url,
		o.host, found.n, found.n && found.gpus[0].simulated ? "simulated " : "", found.detail, cfg.data_dir);
	fprintf(stderr, "gpunode up: try: gpunode submit --gpus 1 -- echo hello   (Ctrl-C stops)\n");
	signals_wait();
	fprintf(stderr, "gpunode up: stopping\n");
	node_server_begin_stop(&s);
	agent_stop(agent);
	node_server_stop(&s);
	free(found.gpus);
	return CLI_OK;
}
