/* gpunode serve — the node alone: API, queue, scheduler, store. Agents on GPU
 * hosts dial in with `gpunode agent --node URL`. */
#include <stdio.h>

#include "cli.h"
#include "node_server.h"
#include "role_opts.h"
#include "util.h"

static const char usage[] =
	"usage: gpunode serve [--data DIR] [--listen ADDR:PORT] [--policy frag|bestfit]\n"
	"Runs the node only (no local agent). Agents join with: gpunode agent --node URL --token TOKEN\n"
	"  --data DIR          state: database, logs, admin.token (default $GPUNODE_DATA or /var/lib/gpunode)\n"
	"  --listen ADDR:PORT  default 127.0.0.1:7070; 0.0.0.0:7070 to accept remote agents\n"
	"  --policy NAME       placement policy: frag (default, fragmentation-aware) or bestfit\n"
	"  --host-grace SECS   a host silent this long is declared lost and its tasks requeued (default 10)\n";

int node_config_from_opts(const struct role_opts *o, struct node_config *cfg);

int node_config_from_opts(const struct role_opts *o, struct node_config *cfg)
{
	node_config_default(cfg);
	if (!str_copy(cfg->data_dir, sizeof cfg->data_dir, o->data))
		return -1;
	cfg->sched.policy = o->policy;
	if (o->host_grace_ms)
		cfg->host_grace_ms = o->host_grace_ms;
	return 0;
}

int cli_serve(int argc, char **argv)
{
	struct role_opts o;
	int rc = role_opts_parse("serve", usage, argc, argv, ROLE_OPT_NODE, &o);
	if (rc)
		return rc < 0 ? CLI_OK : rc;
	struct node_config cfg;
	if (node_config_from_opts(&o, &cfg) < 0) {
		cli_error("serve", "--data path too long");
		return CLI_USAGE;
	}
	signals_block();
	struct node_server s;
	struct err e;
	if (node_server_start(&s, &cfg, o.listen, &e) < 0) {
		cli_error("serve", "%s", e.msg);
		return CLI_FAIL;
	}
	fprintf(stderr, "gpunode serve: node listening on %s (data %s, policy %s)\n", s.url, cfg.data_dir,
		sched_policy_name(cfg.sched.policy));
	fprintf(stderr, "gpunode serve: admin token in %s/admin.token; Ctrl-C stops\n", cfg.data_dir);
	signals_wait();
	fprintf(stderr, "gpunode serve: stopping\n");
	node_server_stop(&s);
	return CLI_OK;
}
