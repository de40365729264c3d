#include "role_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "util.h"

static const char *value_of(const char *verb, int argc, char **argv, int *i, const char *name)
{
	size_t len = strlen(name);
	if (strncmp(argv[*i], name, len) == 0 && argv[*i][len] == '=')
		return argv[*i] + len + 1;
	if (strcmp(argv[*i], name) != 0)
		return NULL;
	if (*i + 1 >= argc) {
		cli_error(verb, "%s needs a value", name);
		return "";
	}
	return argv[++*i];
}

/* Returns 1 when argv[*i] was one of the options in mask. */
static int take_option(const char *verb, int argc, char **argv, int *i, unsigned mask, struct role_opts *o)
{
	const char *v;
	if ((mask & ROLE_OPT_NODE) && (v = value_of(verb, argc, argv, i, "--data"))) {
		str_copy(o->data, sizeof o->data, v);
	} else if ((mask & ROLE_OPT_NODE) && (v = value_of(verb, argc, argv, i, "--listen"))) {
		o->listen = v;
	} else if ((mask & ROLE_OPT_NODE) && (v = value_of(verb, argc, argv, i, "--policy"))) {
		if (sched_policy_parse(v, &o->policy) < 0) {
			cli_error(verb, "--policy %s: want frag or bestfit", v);
			return -1;
		}
	} else if ((mask & ROLE_OPT_NODE) && (v = value_of(verb, argc, argv, i, "--host-grace"))) {
		char *end;
		double secs = strtod(v, &end);
		if (*end || end == v || secs < 0.5 || secs > 3600) {
			cli_error(verb, "--host-grace %s: want seconds, 0.5..3600", v);
			return -1;
		}
		o->host_grace_ms = (int64_t)(secs * 1000);
	} else if ((mask & ROLE_OPT_AGENT) && (v = value_of(verb, argc, argv, i, "--sim-gpus"))) {
		o->sim_gpus = v;
	} else if ((mask & ROLE_OPT_AGENT) && (v = value_of(verb, argc, argv, i, "--host"))) {
		str_copy(o->host, sizeof o->host, v);
	} else if ((mask & ROLE_OPT_AGENT) && (v = value_of(verb, argc, argv, i, "--state"))) {
		o->state = v;
	} else if ((mask & ROLE_OPT_AGENT) && (v = value_of(verb, argc, argv, i, "--kmsg"))) {
		o->kmsg = v;
	} else if ((mask & ROLE_OPT_AGENT) && (v = value_of(verb, argc, argv, i, "--boot-id-file"))) {
		o->boot_id_file = v;
	} else if ((mask & ROLE_OPT_AGENT) && (v = value_of(verb, argc, argv, i, "--executor"))) {
		if (strcmp(v, "docker") && strcmp(v, "oci") && strcmp(v, "process")) {
			cli_error(verb, "--executor %s: want docker, oci or process", v);
			return -1;
		}
		o->executor = v;
	} else if ((mask & ROLE_OPT_AGENT) && strcmp(argv[*i], "--allow-shared-process") == 0) {
		o->process_shared = true;
		return 1;
	} else if ((mask & ROLE_OPT_REMOTE) && (v = value_of(verb, argc, argv, i, "--node"))) {
		o->node_url = v;
	} else if ((mask & ROLE_OPT_REMOTE) && (v = value_of(verb, argc, argv, i, "--token"))) {
		o->token = v;
	} else {
		return 0;
	}
	return v && *v ? 1 : -1;
}

int role_opts_parse(const char *verb, const char *usage, int argc, char **argv, unsigned mask, struct role_opts *o)
{
	memset(o, 0, sizeof *o);
	client_default_data_dir(o->data, sizeof o->data);
	o->listen = "127.0.0.1:7070";
	o->policy = SCHED_POLICY_FRAG;
	if (gethostname(o->host, sizeof o->host) < 0 || !o->host[0])
		str_copy(o->host, sizeof o->host, "local");
	o->host[strcspn(o->host, ".")] = '\0';
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return -1;
		}
		int r = take_option(verb, argc, argv, &i, mask, o);
		if (r < 0)
			return CLI_USAGE;
		if (r == 0) {
			cli_error(verb, "unknown option %s (see gpunode %s --help)", argv[i], verb);
			return CLI_USAGE;
		}
	}
	return 0;
}

int role_find_gpus(const char *verb, const struct role_opts *o, struct gpu_found *found)
{
	struct err e;
	if (gpu_discover(o->sim_gpus, o->host, found, &e) == 0) {
		if (!found->gpus[0].simulated || o->sim_gpus)
			fprintf(stderr, "gpunode %s: %d GPU(s) found through %s (%s)\n", verb, found->n, found->source,
				found->detail);
		return 0;
	}
	if (o->sim_gpus) {
		cli_error(verb, "%s", e.msg);
		return CLI_USAGE;
	}
	/* Never pass simulated GPUs off as real: say so in the first line. */
	fprintf(stderr, "gpunode %s: %s; using a SIMULATED pool of %s (set --sim-gpus to change it)\n", verb, e.msg,
		GPU_SIM_DEFAULT);
	if (gpu_discover(GPU_SIM_DEFAULT, o->host, found, &e) < 0) {
		cli_error(verb, "%s", e.msg);
		return CLI_FAIL;
	}
	return 0;
}

void role_agent_health(const struct role_opts *o, const struct gpu_found *found, struct agent_config *ac)
{
	bool real = found->n > 0 && !found->gpus[0].simulated;
	/* Real GPUs: the kernel's log. Simulated ones: only a file given for
	 * drills; reading the host's real log for them would map nothing. */
	ac->kmsg_path = o->kmsg ? o->kmsg : real ? "/dev/kmsg" : NULL;
	ac->boot_id_path = o->boot_id_file;
	ac->readings = !real ? GPU_READINGS_NONE : strcmp(found->source, "nvml") == 0 ? GPU_READINGS_NVML : GPU_READINGS_SMI;
}

void role_agent_executor(const struct role_opts *o, struct agent_config *ac)
{
	str_copy(ac->executor, sizeof ac->executor, o->executor ? o->executor : "");
	ac->process_shared = o->process_shared;
}
