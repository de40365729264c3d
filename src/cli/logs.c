/* logs.c — `gpunode logs ID [-f]`: the task's output, byte for byte. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "strbuf.h"

static const char help[] =
	"Usage: gpunode logs ID [OPTIONS]\n"
	"Writes the task's log (its stdout and stderr) to stdout as raw bytes.\n"
	"\n"
	"Options:\n"
	"  -f, --follow  keep writing new output until the task has ended\n";

/* Logs can be long and the node may take a while to read them from disk. */
#define LOGS_TIMEOUT_MS 60000L

/* One GET of the bytes from *offset; advances *offset. *state gets the
 * task's state when the node sent it. Returns the bytes written, or -1. */
static long long fetch_chunk(struct client *c, const char *id, long long *offset, char *state, size_t state_cap,
			     struct err *e)
{
	char *base = cli_task_path(id, "/logs");
	struct strbuf path = {0};
	char off[24];
	snprintf(off, sizeof off, "%lld", *offset);
	strbuf_printf(&path, "%s", base);
	client_query_add(&path, "offset", off);
	free(base);
	struct client_response r;
	int rc = client_request(c, "GET", path.buf, NULL, 0, NULL, LOGS_TIMEOUT_MS, &r, e);
	strbuf_free(&path);
	if (rc < 0)
		return -1;
	if (r.status >= 400) {
		client_error_from_response(&r, e);
		client_response_free(&r);
		return -1;
	}
	if (r.len > 0 && fwrite(r.body, 1, r.len, stdout) != r.len) {
		client_response_free(&r);
		return err_set(e, ERR_INTERNAL, "cannot write to stdout");
	}
	fflush(stdout);
	/* X-Log-Offset is the truth (the node may skip bytes it no longer
	 * keeps); counting the bytes is the fallback. */
	*offset = r.log_offset >= 0 ? r.log_offset : *offset + (long long)r.len;
	snprintf(state, state_cap, "%s", r.task_state);
	long long n = (long long)r.len;
	client_response_free(&r);
	return n;
}

int cli_logs(int argc, char **argv)
{
	bool follow = false;
	struct cli_conn conn = {0};
	const struct cli_opt opts[] = {
		{"--follow", 'f', CLI_OPT_FLAG, &follow, 0, 0},
		{0},
	};
	const struct cli_cmd cmd = {.verb = "logs", .help = help, .opts = opts, .conn = &conn,
				    .min_args = 1, .max_args = 1, .args_name = "ID"};
	struct cli_list args;
	struct client c;
	int rc;
	if (!cli_parse_connect(&cmd, argc, argv, &args, &c, &rc))
		return rc;
	struct err e = {0};
	long long offset = 0;
	long delay = CLI_POLL_START_MS;
	char state[sizeof ((struct client_response *)0)->task_state];
	rc = CLI_OK;
	for (;;) {
		long long n = fetch_chunk(&c, args.items[0], &offset, state, sizeof state, &e);
		if (n < 0) {
			rc = cli_fail("logs", &e);
			break;
		}
		/* Read until a read comes back empty (the node may answer in
		 * chunks). Following, stop only once the task has ended AND a read
		 * came back empty: the last bytes may arrive after the state turned
		 * terminal. A node that sends no state cannot be followed. */
		if (n > 0) {
			delay = CLI_POLL_START_MS;
			continue;
		}
		if (!follow || cli_state_terminal(state) || !state[0])
			break;
		cli_poll_sleep(&delay);
	}
	free(args.items);
	client_cleanup(&c);
	return rc;
}
