/* main.c — `gpunode VERB ...`: picks the verb and runs it. Each verb lives
 * in src/cli/VERB.c and returns the exit code (0 ok, 1 failure, 2 usage). */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef GPUNODE_VERSION
#define GPUNODE_VERSION "0.1.0"
#endif

static const struct cli_verb verbs[] = {
	{"up", cli_up, "run a node and a local agent in one process (the default setup)"},
	{"serve", cli_serve, "run the node alone (agents connect to it)"},
	{"agent", cli_agent, "run the agent of a GPU host, connected to a node"},
	{"submit", cli_submit, "queue a task; prints its id"},
	{"tasks", cli_tasks, "list tasks"},
	{"show", cli_show, "show one task (--history: its state changes)"},
	{"cancel", cli_cancel, "cancel tasks"},
	{"logs", cli_logs, "print a task's output (-f: follow it)"},
	{"gpus", cli_gpus, "list the pool's GPUs"},
	{"hosts", cli_hosts, "list the pool's hosts"},
	{"token", cli_token, "create API tokens"},
	{"sim", cli_sim, "replay a trace through the scheduler (sim openb: packing)"},
	{"image", cli_image, "the oci executor's local images: import, ls, rm"},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: gpunode VERB [OPTIONS] [ARGS...]\n"
		   "A node of a decentralized GPU cloud, and its command-line client.\n"
		   "\n"
		   "Verbs:\n");
	cli_print_verbs(f, verbs);
	fprintf(f, "\n"
		   "`gpunode VERB --help` describes a verb. Read commands take --json.\n"
		   "Exit codes: 0 ok, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	const char *verb = argv[1];
	if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
		if (strcmp(verb, "help") == 0 && argc > 2) {
			/* `gpunode help VERB` = `gpunode VERB --help` */
			char *help_argv[] = {argv[2], "--help", NULL};
			for (const struct cli_verb *v = verbs; v->name; v++)
				if (strcmp(v->name, argv[2]) == 0)
					return v->run(2, help_argv);
			fprintf(stderr, "gpunode: unknown verb '%s'\n", argv[2]);
			return CLI_USAGE;
		}
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(verb, "--version") == 0 || strcmp(verb, "version") == 0) {
		printf("gpunode %s\n", GPUNODE_VERSION);
		return CLI_OK;
	}
	for (const struct cli_verb *v = verbs; v->name; v++) {
		if (strcmp(v->name, verb) != 0)
			continue;
		/* Once, before any thread exists: curl_global_init is not thread-safe. */
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			fputs("gpunode: cannot initialise libcurl\n", stderr);
			return CLI_FAIL;
		}
		int rc = v->run(argc - 1, argv + 1);
		fflush(stdout);
		curl_global_cleanup();
		return rc;
	}
	fprintf(stderr, "gpunode: unknown verb '%s'\n\n", verb);
	usage(stderr);
	return CLI_USAGE;
}
