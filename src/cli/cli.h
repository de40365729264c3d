/* cli.h — one small file per verb (crun/git style): each parses its options,
 * calls the library, prints. Exit codes: 0 ok, 1 failure, 2 usage. */
#ifndef GPUNODE_CLI_H
#define GPUNODE_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "client.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

int cli_up(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_agent(int argc, char **argv);
int cli_submit(int argc, char **argv);
int cli_tasks(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_cancel(int argc, char **argv);
int cli_logs(int argc, char **argv);
int cli_gpus(int argc, char **argv);
int cli_hosts(int argc, char **argv);
int cli_token(int argc, char **argv);

/* Connection options every client verb accepts: --url, --token, --data. */
struct cli_conn {
	const char *url, *token, *data;
};
/* If argv[*i] is a connection option, consumes it (and its value) and
 * returns true. Accepts "--url X" and "--url=X". */
bool cli_conn_option(struct cli_conn *conn, int argc, char **argv, int *i);
/* Resolves the node and opens a client; prints the error and returns -1 on failure. */
int cli_connect(const struct cli_conn *conn, struct client *c);

/* Prints "gpunode VERB: message" to stderr. */
void cli_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Pretty-prints JSON to stdout (for --json), newline-terminated. */
void cli_print_json(json_t *v);

#endif
