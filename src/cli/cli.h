/* cli.h — one small file per verb (crun/git style): each parses its options,
 * calls the library, prints. Exit codes: 0 ok, 1 failure, 2 usage. */
#ifndef GPUNODE_CLI_H
#define GPUNODE_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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
int cli_sim(int argc, char **argv);
int cli_image(int argc, char **argv);

/* Connection options every client verb accepts: --url, --token, --data. */
struct cli_conn {
	const char *url, *token, *data;
	const char *verb; /* names the command in cli_connect's messages; set by cli_parse */
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

/* The shape of most verbs: connect, one API call, then print the answer as
 * JSON (json true) or with print_human. req may be NULL. Returns the exit code. */
int cli_call_and_print(const struct cli_conn *conn, const char *method, const char *path, json_t *req, bool json,
		       void (*print_human)(json_t *answer));

/* Prints e as cli_error does, with a hint for the errors a person can fix
 * (no token...); returns CLI_FAIL. */
int cli_fail(const char *verb, const struct err *e);
/* Prints "gpunode VERB: message" and "Try 'gpunode VERB --help'." to stderr;
 * returns CLI_USAGE. */
int cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- option parsing, shared by every verb ------------------------------ */

enum cli_opt_kind {
	CLI_OPT_FLAG,   /* bool, no value */
	CLI_OPT_STRING, /* const char *, the last one wins */
	CLI_OPT_INT,    /* struct cli_int, range-checked */
	CLI_OPT_LIST,   /* struct cli_list, repeatable */
};

struct cli_int {
	bool set; /* given on the command line: only then is it sent, so the node's default applies */
	long long value;
};

struct cli_list {
	const char **items; /* point into argv; free(items) only */
	int n;
};

struct cli_opt {
	const char *name;  /* "--gpus" */
	char short_name;   /* 'f' for "-f", 0 for none */
	enum cli_opt_kind kind;
	void *dest;        /* bool *, const char **, struct cli_int *, struct cli_list * */
	long long min, max; /* CLI_OPT_INT range */
};

struct cli_cmd {
	const char *verb;           /* "submit", "gpus clear": names the command in messages */
	const char *help;           /* usage and options, printed by --help */
	const struct cli_opt *opts; /* terminated by an entry with name NULL; --help is implicit */
	struct cli_conn *conn;      /* non-NULL: accepts --url/--token/--data (their help is appended) */
	int min_args, max_args;     /* positional words; max_args -1: no limit */
	const char *args_name;      /* what they are, for "missing ID": "ID", "COMMAND" */
	bool args_end_options;      /* the first positional word ends the options: a command follows */
};

/* Parses argv[1..] ("--name value", "--name=value", "--" ends options).
 * Returns true with the positional words in *args (free(args->items)) to go
 * on; false with *rc set when the verb is done: --help printed (CLI_OK) or a
 * usage error printed (CLI_USAGE). */
bool cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_list *args, int *rc);
/* cli_parse, then cli_connect to cmd->conn: the start of every verb that
 * talks to the node. false: *rc is the exit code (usage, help, or failure). */
bool cli_parse_connect(const struct cli_cmd *cmd, int argc, char **argv, struct cli_list *args, struct client *c,
		       int *rc);
void cli_list_add(struct cli_list *l, const char *item);

/* Verbs with sub-verbs (`gpunode gpus clear UUID`), and main's verb table. */
struct cli_verb {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the verb's own name */
	const char *summary;               /* one line for the help listing */
};
/* If argv[1] is a word rather than an option, runs the sub-verb it names
 * (argv shifted by one) and returns true with *rc its exit code, or a usage
 * error for an unknown name. Returns false when argv[1] is absent or an
 * option: the verb's own action applies. verbs ends with a NULL name. */
bool cli_dispatch_subverb(const char *verb, const struct cli_verb *verbs, int argc, char **argv, int *rc);
/* "  name      summary" lines, for help texts. */
void cli_print_verbs(FILE *f, const struct cli_verb *verbs);

/* --- human output ------------------------------------------------------ */

/* A table with a header row; columns padded to the widest cell. */
struct cli_table {
	int ncols, nrows;
	const char *const *headers;
	char **cells; /* nrows * ncols, owned */
};
/* headers: NULL-terminated, must outlive the table. */
void cli_table_init(struct cli_table *t, const char *const *headers);
/* Adds a row of ncols strings (copied; NULL shows "-"). */
void cli_table_add(struct cli_table *t, ...);
void cli_table_print(const struct cli_table *t);
void cli_table_free(struct cli_table *t);

/* A field of a JSON object as text: strings as they are, numbers and
 * booleans printed into buf, arrays of scalars joined with spaces, "-" for
 * null or missing. The result lives in the object or in buf. */
const char *cli_json_text(json_t *obj, const char *key, char *buf, size_t cap);
/* A command array as a shell would read it back: words joined with spaces,
 * those with spaces or shell characters in single quotes. In buf. */
const char *cli_command_text(json_t *argv, char *buf, size_t cap);
/* Text with at most max characters: longer ones end in "...". In buf. */
const char *cli_truncate(const char *s, size_t max, char *buf, size_t cap);
/* "12s", "5m", "3h", "2d": time since an RFC 3339 timestamp; "-" if none. */
const char *cli_format_age(const char *rfc3339, char *buf, size_t cap);
/* "80 GiB" / "11.5 GiB" / "512 MiB" from MiB. */
const char *cli_format_mib(long long mib, char *buf, size_t cap);

/* "/v1/tasks/ID" + suffix ("", "/cancel", "/logs"...), the id escaped.
 * Caller frees. */
char *cli_task_path(const char *id, const char *suffix);

/* --- polling ----------------------------------------------------------- */

/* True when the task state named s never changes again. */
bool cli_state_terminal(const char *s);
/* Sleeps *delay_ms, then doubles it up to CLI_POLL_MAX_MS: a task that ends
 * fast is seen fast, and a long one costs few requests. */
#define CLI_POLL_START_MS 20
#define CLI_POLL_MAX_MS 500
void cli_poll_sleep(long *delay_ms);

#endif
