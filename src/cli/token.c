/* token.c — `gpunode token create`: a bearer token for a client, an agent
 * or another admin. The node keeps only its hash: this is the one time the
 * token is shown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char create_help[] =
	"Usage: gpunode token create --client NAME [OPTIONS]\n"
	"Creates a token and prints it (only the token). It is shown once: the node\n"
	"keeps only its hash. Needs an admin token.\n"
	"\n"
	"Options:\n"
	"  --client NAME  who the token is for; a client's tasks carry this name\n"
	"  --role ROLE    client (default): submits and sees its own tasks;\n"
	"                 agent: a GPU host's agent; admin: everything\n"
	"  --json         print {\"token\",\"client\",\"role\"}\n";

static void print_token(json_t *answer)
{
	const char *token = json_string_value(json_object_get(answer, "token"));
	printf("%s\n", token ? token : "");
}

static int token_create(int argc, char **argv)
{
	const char *client = NULL, *role = "client";
	bool json = false;
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--client", 0, CLI_OPT_STRING, &client, 0, 0},
		{"--role", 0, CLI_OPT_STRING, &role, 0, 0},
		{"--json", 0, CLI_OPT_FLAG, &json, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "token create", .help = create_help, .opts = opts, .conn = &conn,
				    .max_args = 0};
	struct cli_list args;
	int rc;
	if (!cli_parse(&cmd, argc, argv, &args, &rc))
		return rc;
	free(args.items);
	if (!client || !*client)
		return cli_usage_error("token create", "--client NAME is required");
	if (strcmp(role, "client") != 0 && strcmp(role, "admin") != 0 && strcmp(role, "agent") != 0)
		return cli_usage_error("token create", "--role: expected client, admin or agent, got '%s'", role);
	json_t *req = json_pack("{s:s, s:s}", "client", client, "role", role);
	rc = cli_call_and_print(&conn, "POST", "/v1/tokens", req, json, print_token);
	json_decref(req);
	return rc;
}

static const struct cli_verb token_subverbs[] = {
	{"create", token_create, "create a token for a client, agent or admin"},
	{NULL, NULL, NULL},
};

int cli_token(int argc, char **argv)
{
	int rc;
	if (cli_dispatch_subverb("token", token_subverbs, argc, argv, &rc))
		return rc;
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("Usage: gpunode token SUB-COMMAND [OPTIONS]\n\nSub-commands:\n");
		cli_print_verbs(stdout, token_subverbs);
		return CLI_OK;
	}
	if (argc < 2)
		return cli_usage_error("token", "missing sub-command (create)");
	return cli_usage_error("token", "unknown option '%s'", argv[1]);
}
