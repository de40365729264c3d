/* cli.c — what every verb shares: option parsing, connecting to the node,
 * error messages, JSON and table output, polling. A verb file only declares
 * its options, calls the API and formats the answer. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strbuf.h"
#include "task.h"
#include "util.h"

static const char conn_help[] =
	"Connection options:\n"
	"  --url URL      the node's API (default: $GPUNODE_URL, DATA/url, http://127.0.0.1:7070)\n"
	"  --token TOKEN  bearer token (default: $GPUNODE_TOKEN, then DATA/admin.token)\n"
	"  --data DIR     the local node's data dir (default: $GPUNODE_DATA, the last `gpunode up`)\n";

void cli_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "gpunode%s%s: ", verb && *verb ? " " : "", verb ? verb : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "gpunode %s: ", verb);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'gpunode %s --help'.\n", verb);
	va_end(ap);
	return CLI_USAGE;
}

int cli_fail(const char *verb, const struct err *e)
{
	const char *hint = "";
	if (e->code == ERR_UNAUTHORIZED)
		hint = " (give a token with --token or GPUNODE_TOKEN, or point --data at the node's data dir)";
	cli_error(verb, "%s%s", e->msg, hint);
	return CLI_FAIL;
}

void cli_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

/* --- options ------------------------------------------------------------ */

void cli_list_add(struct cli_list *l, const char *item)
{
	l->items = xrealloc(l->items, ((size_t)l->n + 1) * sizeof *l->items);
	l->items[l->n++] = item;
}

bool cli_conn_option(struct cli_conn *conn, int argc, char **argv, int *i)
{
	static const char *const names[] = {"--url", "--token", "--data"};
	const char **dests[] = {&conn->url, &conn->token, &conn->data};
	for (int k = 0; k < 3; k++) {
		size_t n = strlen(names[k]);
		const char *arg = argv[*i];
		if (strncmp(arg, names[k], n) != 0)
			continue;
		if (arg[n] == '=') {
			*dests[k] = arg + n + 1;
			return true;
		}
		/* A missing value is left to the caller's "needs a value" check:
		 * this consumes only "--url X" with X present. */
		if (arg[n] == '\0' && *i + 1 < argc) {
			*dests[k] = argv[++*i];
			return true;
		}
	}
	return false;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *arg, size_t name_len)
{
	for (const struct cli_opt *o = opts; o && o->name; o++) {
		if (strlen(o->name) == name_len && strncmp(o->name, arg, name_len) == 0)
			return o;
		if (o->short_name && name_len == 2 && arg[0] == '-' && arg[1] == o->short_name)
			return o;
	}
	return NULL;
}

static bool store_value(const struct cli_cmd *cmd, const struct cli_opt *o, const char *val, int *rc)
{
	switch (o->kind) {
	case CLI_OPT_FLAG:
		*(bool *)o->dest = true;
		return true;
	case CLI_OPT_STRING:
		*(const char **)o->dest = val;
		return true;
	case CLI_OPT_LIST:
		cli_list_add(o->dest, val);
		return true;
	case CLI_OPT_INT: {
		char *end;
		errno = 0;
		long long v = strtoll(val, &end, 10);
		if (errno || end == val || *end || v < o->min || v > o->max) {
			*rc = cli_usage_error(cmd->verb, "%s: expected an integer from %lld to %lld, got '%s'", o->name,
					      o->min, o->max, val);
			return false;
		}
		struct cli_int *dest = o->dest;
		dest->set = true;
		dest->value = v;
		return true;
	}
	}
	return false;
}

/* Handles the option at argv[*i]; false with *rc set on a usage error. */
static bool parse_option(const struct cli_cmd *cmd, int argc, char **argv, int *i, int *rc)
{
	const char *arg = argv[*i];
	if (cmd->conn && cli_conn_option(cmd->conn, argc, argv, i))
		return true;
	const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
	size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
	if (cmd->conn && (strcmp(arg, "--url") == 0 || strcmp(arg, "--token") == 0 || strcmp(arg, "--data") == 0)) {
		/* cli_conn_option consumed it unless its value is missing. */
		*rc = cli_usage_error(cmd->verb, "%s needs a value", arg);
		return false;
	}
	const struct cli_opt *o = find_opt(cmd->opts, arg, name_len);
	if (!o) {
		*rc = cli_usage_error(cmd->verb, "unknown option '%.*s'", (int)name_len, arg);
		return false;
	}
	if (o->kind == CLI_OPT_FLAG) {
		if (eq) {
			*rc = cli_usage_error(cmd->verb, "%s takes no value", o->name);
			return false;
		}
		return store_value(cmd, o, NULL, rc);
	}
	const char *val = eq ? eq + 1 : NULL;
	if (!val) {
		if (*i + 1 >= argc) {
			*rc = cli_usage_error(cmd->verb, "%.*s needs a value", (int)name_len, arg);
			return false;
		}
		val = argv[++*i];
	}
	return store_value(cmd, o, val, rc);
}

bool cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_list *args, int *rc)
{
	memset(args, 0, sizeof *args);
	if (cmd->conn)
		cmd->conn->verb = cmd->verb;
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (options_done || arg[0] != '-' || arg[1] == '\0') { /* "-" alone is a word */
			cli_list_add(args, arg);
			options_done = options_done || cmd->args_end_options;
		} else if (strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(cmd->help, stdout);
			if (cmd->conn)
				fprintf(stdout, "\n%s", conn_help);
			*rc = CLI_OK;
			goto done;
		} else if (!parse_option(cmd, argc, argv, &i, rc)) {
			goto done;
		}
	}
	if (args->n < cmd->min_args) {
		*rc = cli_usage_error(cmd->verb, "missing %s", cmd->args_name ? cmd->args_name : "arguments");
		goto done;
	}
	if (cmd->max_args >= 0 && args->n > cmd->max_args) {
		*rc = cli_usage_error(cmd->verb, "unexpected argument '%s'", args->items[cmd->max_args]);
		goto done;
	}
	return true;
done:
	free(args->items);
	memset(args, 0, sizeof *args);
	return false;
}

bool cli_dispatch_subverb(const char *verb, const struct cli_verb *verbs, int argc, char **argv, int *rc)
{
	if (argc < 2 || argv[1][0] == '-')
		return false;
	for (const struct cli_verb *v = verbs; v->name; v++)
		if (strcmp(v->name, argv[1]) == 0) {
			*rc = v->run(argc - 1, argv + 1);
			return true;
		}
	*rc = cli_usage_error(verb, "unknown sub-command '%s'", argv[1]);
	return true;
}

void cli_print_verbs(FILE *f, const struct cli_verb *verbs)
{
	for (const struct cli_verb *v = verbs; v->name; v++)
		fprintf(f, "  %-10s %s\n", v->name, v->summary);
}

bool cli_parse_connect(const struct cli_cmd *cmd, int argc, char **argv, struct cli_list *args, struct client *c,
		       int *rc)
{
	if (!cli_parse(cmd, argc, argv, args, rc))
		return false;
	if (cli_connect(cmd->conn, c) < 0) {
		free(args->items);
		*rc = CLI_FAIL;
		return false;
	}
	return true;
}

int cli_connect(const struct cli_conn *conn, struct client *c)
{
	char url[CLIENT_URL_MAX], token[CLIENT_TOKEN_MAX];
	struct err e = {0};
	memset(c, 0, sizeof *c); /* client_cleanup is safe on it whatever fails */
	if (client_resolve(conn->url, conn->token, conn->data, url, sizeof url, token, sizeof token, &e) < 0 ||
	    client_init(c, url, token, &e) < 0) {
		cli_fail(conn->verb, &e);
		client_cleanup(c);
		return -1;
	}
	return 0;
}

int cli_call_and_print(const struct cli_conn *conn, const char *method, const char *path, json_t *req, bool json,
		       void (*print_human)(json_t *answer))
{
	struct client c;
	if (cli_connect(conn, &c) < 0)
		return CLI_FAIL;
	struct err e = {0};
	json_t *answer;
	int rc = CLI_OK;
	if (client_json(&c, method, path, req, &answer, &e) < 0) {
		rc = cli_fail(conn->verb, &e);
	} else {
		if (json)
			cli_print_json(answer);
		else
			print_human(answer);
		json_decref(answer);
	}
	client_cleanup(&c);
	return rc;
}

/* --- tables and values ---------------------------------------------------- */

void cli_table_init(struct cli_table *t, const char *const *headers)
{
	memset(t, 0, sizeof *t);
	t->headers = headers;
	while (headers[t->ncols])
		t->ncols++;
}

void cli_table_add(struct cli_table *t, ...)
{
	t->cells = xrealloc(t->cells, (size_t)(t->nrows + 1) * (size_t)t->ncols * sizeof *t->cells);
	va_list ap;
	va_start(ap, t);
	for (int c = 0; c < t->ncols; c++) {
		const char *s = va_arg(ap, const char *);
		t->cells[t->nrows * t->ncols + c] = xstrdup(s ? s : "-");
	}
	va_end(ap);
	t->nrows++;
}

static void print_row(const struct cli_table *t, const int *width, const char *const *row)
{
	for (int c = 0; c < t->ncols; c++) {
		if (c == t->ncols - 1) /* no trailing blanks after the last column */
			printf("%s\n", row[c]);
		else
			printf("%-*s  ", width[c], row[c]);
	}
}

void cli_table_print(const struct cli_table *t)
{
	int *width = xcalloc((size_t)t->ncols, sizeof *width);
	for (int c = 0; c < t->ncols; c++) {
		width[c] = (int)strlen(t->headers[c]);
		for (int r = 0; r < t->nrows; r++) {
			int w = (int)strlen(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	print_row(t, width, t->headers);
	for (int r = 0; r < t->nrows; r++)
		print_row(t, width, (const char *const *)&t->cells[r * t->ncols]);
	free(width);
}

void cli_table_free(struct cli_table *t)
{
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

/* A scalar as text into buf; NULL for null, objects and arrays. */
static const char *scalar_text(json_t *v, char *buf, size_t cap)
{
	switch (json_typeof(v)) {
	case JSON_STRING: return json_string_value(v);
	case JSON_INTEGER: snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); return buf;
	case JSON_REAL: snprintf(buf, cap, "%g", json_real_value(v)); return buf;
	case JSON_TRUE: return "true";
	case JSON_FALSE: return "false";
	default: return NULL;
	}
}

const char *cli_json_text(json_t *obj, const char *key, char *buf, size_t cap)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return "-";
	if (json_is_array(v)) {
		if (json_array_size(v) == 0)
			return "-";
		size_t used = 0;
		buf[0] = '\0';
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item) {
			char one[64];
			const char *s = scalar_text(item, one, sizeof one);
			int n = snprintf(buf + used, cap - used, "%s%s", i ? " " : "", s ? s : "?");
			if (n < 0 || (size_t)n >= cap - used)
				break; /* truncated: the caller shows what fits */
			used += (size_t)n;
		}
		return buf;
	}
	const char *s = scalar_text(v, buf, cap);
	if (s)
		return s;
	char *dump = json_dumps(v, JSON_COMPACT); /* objects: as compact JSON */
	str_copy(buf, cap, dump ? dump : "?");
	free(dump);
	return buf;
}

const char *cli_command_text(json_t *argv, char *buf, size_t cap)
{
	if (!json_is_array(argv) || json_array_size(argv) == 0)
		return "-";
	struct strbuf b = {0};
	size_t i;
	json_t *w;
	json_array_foreach(argv, i, w) {
		const char *word = json_string_value(w);
		word = word ? word : "";
		if (i)
			strbuf_append(&b, " ", 1);
		if (*word && strspn(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
				     strlen(word)) {
			strbuf_append(&b, word, strlen(word));
			continue;
		}
		strbuf_append(&b, "'", 1);
		for (const char *p = word; *p; p++) {
			if (*p == '\'')
				strbuf_append(&b, "'\\''", 4); /* close, escaped quote, reopen */
			else
				strbuf_append(&b, p, 1);
		}
		strbuf_append(&b, "'", 1);
	}
	char *text = strbuf_take(&b, NULL);
	str_copy(buf, cap, text);
	free(text);
	return buf;
}

const char *cli_truncate(const char *s, size_t max, char *buf, size_t cap)
{
	if (strlen(s) <= max || max < 4) {
		str_copy(buf, cap, s);
		return buf;
	}
	snprintf(buf, cap, "%.*s...", (int)(max - 3), s);
	return buf;
}

/* "2026-11-23T19:40:01.123Z" -> ms since the epoch. */
static bool parse_rfc3339_ms(const char *s, int64_t *out)
{
	struct tm tm = {0};
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return false;
	int64_t ms = 0;
	if (*rest == '.') {
		int digits = 0;
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			if (digits++ < 3)
				ms = ms * 10 + (*rest - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	*out = (int64_t)timegm(&tm) * 1000 + ms;
	return true;
}

const char *cli_format_age(const char *rfc3339, char *buf, size_t cap)
{
	int64_t then;
	if (!rfc3339 || !parse_rfc3339_ms(rfc3339, &then))
		return "-";
	int64_t s = (now_ms() - then) / 1000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, cap, "%llds", (long long)s);
	else if (s < 2 * 3600)
		snprintf(buf, cap, "%lldm", (long long)s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, cap, "%lldh", (long long)s / 3600);
	else
		snprintf(buf, cap, "%lldd", (long long)s / 86400);
	return buf;
}

const char *cli_format_mib(long long mib, char *buf, size_t cap)
{
	if (mib < 1024)
		snprintf(buf, cap, "%lld MiB", mib);
	else if (mib % 1024 == 0)
		snprintf(buf, cap, "%lld GiB", mib / 1024);
	else
		snprintf(buf, cap, "%.1f GiB", (double)mib / 1024);
	return buf;
}

char *cli_task_path(const char *id, const char *suffix)
{
	struct strbuf b = {0};
	strbuf_printf(&b, "/v1/tasks/");
	/* Escaped so an argument like "x/cancel" or "x?y" cannot reach another route. */
	client_path_escape(&b, id);
	strbuf_printf(&b, "%s", suffix);
	return strbuf_take(&b, NULL);
}

/* --- polling ---------------------------------------------------------------- */

bool cli_state_terminal(const char *s)
{
	enum task_state st;
	return s && task_state_parse(s, &st) == 0 && task_state_terminal(st);
}

void cli_poll_sleep(long *delay_ms)
{
	struct timespec ts = {.tv_sec = *delay_ms / 1000, .tv_nsec = (*delay_ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
	*delay_ms = *delay_ms * 2 > CLI_POLL_MAX_MS ? CLI_POLL_MAX_MS : *delay_ms * 2;
}
