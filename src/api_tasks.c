/* api_tasks.c — /v1/tasks routes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "task_json.h"
#include "util.h"

#define LOG_CHUNK_MAX (1u << 20)

static void create_task(struct api_call *c)
{
	struct err e;
	json_t *body;
	if (api_body_json(c, &body, &e) < 0)
		return api_reply_error(c, &e);
	struct task *t = task_new();
	int rc = task_from_request(body, t, &e);
	json_decref(body);
	if (rc < 0) {
		task_free(t);
		return api_reply_error(c, &e);
	}
	struct task *copy;
	uint64_t ticket;
	if (node_submit(c->api->node, t, c->who.client, &copy, &ticket, &e) < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 201, task_to_json(copy));
	api_reply_after_commit(c, ticket); /* 201 only once it is durable */
	task_free(copy);
}

static int parse_filter(struct api_call *c, struct store_task_filter *f, struct err *e)
{
	const char *v;
	*f = (struct store_task_filter){.client = api_client_scope(c), .state = -1, .category = -1, .limit = 100};
	enum task_state st;
	enum task_category cat;
	if ((v = http_query(c->req, "state"))) {
		if (task_state_parse(v, &st) < 0)
			return err_set(e, ERR_INVALID, "state: unknown state \"%.32s\"", v);
		f->state = (int)st;
	}
	if ((v = http_query(c->req, "category"))) {
		if (task_category_parse(v, &cat) < 0)
			return err_set(e, ERR_INVALID, "category: unknown category \"%.32s\"", v);
		f->category = (int)cat;
	}
	if ((v = http_query(c->req, "client")) && *v) {
		if (c->who.role != AUTH_ADMIN && strcmp(v, c->who.client) != 0)
			return err_set(e, ERR_FORBIDDEN, "client: only the admin may list other clients' tasks");
		f->client = v;
	}
	if ((v = http_query(c->req, "limit"))) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end || end == v || n < 1 || n > 1000)
			return err_set(e, ERR_INVALID, "limit: must be 1..1000");
		f->limit = (int)n;
	}
	if ((v = http_query(c->req, "before"))) {
		if (!task_id_valid(v))
			return err_set(e, ERR_INVALID, "before: not a task id");
		f->before_id = v;
	}
	return 0;
}

static void list_tasks(struct api_call *c)
{
	struct err e;
	struct store_task_filter f;
	struct task **tasks;
	int n;
	if (parse_filter(c, &f, &e) < 0 || store_list_tasks(c->api->node->store, &f, &tasks, &n, &e) < 0)
		return api_reply_error(c, &e);
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		json_array_append_new(arr, task_to_json(tasks[i]));
	}
	json_t *next = n == f.limit && n > 0 ? json_string(tasks[n - 1]->id) : json_null();
	for (int i = 0; i < n; i++)
		task_free(tasks[i]);
	free(tasks);
	api_reply_json(c, 200, json_pack("{s:o, s:o}", "tasks", arr, "next", next));
}

static void get_task(struct api_call *c, const char *id)
{
	struct err e;
	struct task *t;
	if (node_get_task(c->api->node, id, api_client_scope(c), &t, &e) < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 200, task_to_json(t));
	task_free(t);
}

static void cancel_task(struct api_call *c, const char *id)
{
	struct err e;
	struct task *t;
	uint64_t ticket;
	if (node_cancel(c->api->node, id, api_client_scope(c), &t, &ticket, &e) < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 200, task_to_json(t));
	api_reply_after_commit(c, ticket);
	task_free(t);
}

static void task_history(struct api_call *c, const char *id)
{
	struct err e;
	struct task *t;
	struct task_event *ev;
	int n;
	if (node_get_task(c->api->node, id, api_client_scope(c), &t, &e) < 0)
		return api_reply_error(c, &e);
	task_free(t);
	if (store_task_history(c->api->node->store, id, &ev, &n, &e) < 0)
		return api_reply_error(c, &e);
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		char at[40];
		format_rfc3339_ms(ev[i].ts_ms, at, sizeof at);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s?}", "at", at, "from",
						     task_state_name(ev[i].from), "to", task_state_name(ev[i].to),
						     "detail", ev[i].detail));
	}
	store_free_events(ev, n);
	api_reply_json(c, 200, json_pack("{s:o}", "events", arr));
}

/* Reads up to LOG_CHUNK_MAX bytes of a task's log from offset. A task with
 * no output yet has no file: that is an empty log, not an error. */
static int read_log(const char *path, long long offset, char **buf, size_t *len, struct err *e)
{
	*buf = xmalloc(LOG_CHUNK_MAX + 1);
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		free(*buf);
		return err_set(e, ERR_INTERNAL, "cannot read log: %s", strerror(errno));
	}
	ssize_t r = pread(fd, *buf, LOG_CHUNK_MAX, offset);
	close(fd);
	if (r < 0) {
		free(*buf);
		return err_set(e, ERR_INTERNAL, "cannot read log: %s", strerror(errno));
	}
	*len = (size_t)r;
	return 0;
}

static void task_logs(struct api_call *c, const char *id)
{
	struct err e;
	struct task *t;
	if (node_get_task(c->api->node, id, api_client_scope(c), &t, &e) < 0)
		return api_reply_error(c, &e);
	long long offset = 0;
	const char *v = http_query(c->req, "offset");
	if (v) {
		char *end;
		offset = strtoll(v, &end, 10);
		if (*end || end == v || offset < 0) {
			task_free(t);
			return api_reply_errorf(c, ERR_INVALID, "offset: must be a non-negative integer");
		}
	}
	char path[700], next[32];
	snprintf(path, sizeof path, "%s/logs/%s.log", c->api->data_dir, id);
	char *buf;
	size_t len;
	if (read_log(path, offset, &buf, &len, &e) < 0) {
		task_free(t);
		return api_reply_error(c, &e);
	}
	c->resp->status = 200;
	c->resp->body = buf;
	c->resp->len = len;
	c->resp->content_type = "text/plain; charset=utf-8";
	snprintf(next, sizeof next, "%lld", offset + (long long)len);
	http_response_header(c->resp, "X-Log-Offset", next);
	http_response_header(c->resp, "X-Task-State", task_state_name(t->state));
	task_free(t);
}

/* Splits "/v1/tasks/{id}[/{sub}]". */
static bool split_task_path(const char *rest, char *id, size_t cap, const char **sub)
{
	const char *slash = strchr(rest, '/');
	size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
	if (len == 0 || len >= cap)
		return false;
	memcpy(id, rest, len);
	id[len] = '\0';
	*sub = slash ? slash + 1 : "";
	return true;
}

bool api_route_tasks(struct api_call *c, const char *path)
{
	const char *m = c->req->method;
	if (strcmp(path, "/v1/tasks") == 0) {
		if (strcmp(m, "POST") == 0)
			create_task(c);
		else if (strcmp(m, "GET") == 0)
			list_tasks(c);
		else
			api_reply_method_not_allowed(c);
		return true;
	}
	if (strncmp(path, "/v1/tasks/", 10) != 0)
		return false;
	char id[64];
	const char *sub;
	if (!split_task_path(path + 10, id, sizeof id, &sub) || !task_id_valid(id)) {
		api_reply_errorf(c, ERR_INVALID, "bad task id in %.100s: want %d lowercase hex digits", path,
				 TASK_ID_LEN);
		return true;
	}
	bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
	if (!*sub && get)
		get_task(c, id);
	else if (strcmp(sub, "cancel") == 0 && post)
		cancel_task(c, id);
	else if (strcmp(sub, "history") == 0 && get)
		task_history(c, id);
	else if (strcmp(sub, "logs") == 0 && get)
		task_logs(c, id);
	else if (!*sub || !strcmp(sub, "cancel") || !strcmp(sub, "history") || !strcmp(sub, "logs"))
		api_reply_method_not_allowed(c);
	else
		api_reply_errorf(c, ERR_NOT_FOUND, "no route %s %.100s", m, path);
	return true;
}
