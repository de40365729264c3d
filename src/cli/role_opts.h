/* role_opts.h — options shared by the role verbs (up, serve, agent). */
#ifndef GPUNODE_ROLE_OPTS_H
#define GPUNODE_ROLE_OPTS_H

#include "sched.h"

enum {
	ROLE_OPT_NODE = 1,  /* --data --listen --policy --host-grace */
	ROLE_OPT_AGENT = 2, /* --sim-gpus --host --state */
	ROLE_OPT_REMOTE = 4 /* --node --token */
};

struct role_opts {
	char data[400];
	const char *listen;
	const char *sim_gpus; /* NULL: not given */
	char host[64];
	const char *state;
	const char *node_url;
	const char *token;
	enum sched_policy policy;
	int64_t host_grace_ms; /* 0: the node's default */
};

/* Parses argv for verb; mask says which option groups it takes. Returns 0,
 * CLI_USAGE on a bad option (message printed), or -1 after printing help. */
int role_opts_parse(const char *verb, const char *usage, int argc, char **argv, unsigned mask, struct role_opts *o);

#endif
