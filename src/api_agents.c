/* api_agents.c — /v1/agents routes: what agents call. Agents only ever dial
 * out to the node; these are the only routes they need. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "util.h"

#define LONG_POLL_MAX_MS 60000

static void agent_register(struct api_call *c)
{
	struct err e;
	json_t *body, *resp;
	if (api_body_json(c, &body, &e) < 0)
		return api_reply_error(c, &e);
	int rc = node_agent_register(c->api->node, body, &resp, &e);
	json_decref(body);
	if (rc < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 200, resp);
}

static void agent_heartbeat(struct api_call *c, const char *host)
{
	struct err e;
	if (node_agent_heartbeat(c->api->node, host, &e) < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 200, json_object());
}

static int query_int(struct api_call *c, const char *key, long long lo, long long hi, long long dflt, long long *out,
		     struct err *e)
{
	const char *v = http_query(c->req, key);
	*out = dflt;
	if (!v)
		return 0;
	char *end;
	*out = strtoll(v, &end, 10);
	if (*end || end == v || *out < lo || *out > hi)
		return err_set(e, ERR_INVALID, "%s: must be an integer %lld..%lld", key, lo, hi);
	return 0;
}

/* A long poll parks the connection (no thread waits) until a command for
 * the host is durable, the host is no longer registered, or wait_ms passes. */
struct poll_wait {
	struct node *node;
	char host[TASK_HOST_MAX];
	uint64_t after;
};

static bool poll_ready(void *arg)
{
	struct poll_wait *w = arg;
	return node_agent_commands_ready(w->node, w->host, w->after);
}

static void poll_finish(void *arg, struct http_response *resp)
{
	struct poll_wait *w = arg;
	struct err e;
	json_t *cmds;
	if (node_agent_commands(w->node, w->host, w->after, &cmds, &e) < 0)
		api_response_error(resp, &e);
	else
		api_response_json(resp, 200, cmds);
	free(w);
}

static void agent_commands(struct api_call *c, const char *host)
{
	struct err e;
	long long after, wait_ms;
	if (query_int(c, "after", 0, INT64_MAX, 0, &after, &e) < 0 ||
	    query_int(c, "wait_ms", 0, LONG_POLL_MAX_MS, 25000, &wait_ms, &e) < 0)
		return api_reply_error(c, &e);
	if (node_agent_heartbeat(c->api->node, host, &e) < 0) /* polling is a sign of life */
		return api_reply_error(c, &e);
	struct poll_wait *w = xcalloc(1, sizeof *w);
	w->node = c->api->node;
	str_copy(w->host, sizeof w->host, host);
	w->after = (uint64_t)after;
	c->resp->ready = poll_ready;
	c->resp->finish = poll_finish;
	c->resp->wait_arg = w;
	c->resp->deadline_ms = now_ms() + wait_ms;
}

static void agent_reports(struct api_call *c, const char *host)
{
	struct err e;
	json_t *body;
	if (api_body_json(c, &body, &e) < 0)
		return api_reply_error(c, &e);
	uint64_t ticket = 0;
	int rc = node_agent_reports(c->api->node, host, json_object_get(body, "reports"), &ticket, &e);
	json_decref(body);
	if (rc < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 200, json_object());
	api_reply_after_commit(c, ticket); /* the agent may forget a report once we answer */
}

/* GPU health and readings; an Unhealthy GPU's tasks are requeued before
 * the answer, so the agent's next poll already has the kill commands. */
static void agent_gpus(struct api_call *c, const char *host)
{
	struct err e;
	json_t *body;
	if (api_body_json(c, &body, &e) < 0)
		return api_reply_error(c, &e);
	uint64_t ticket = 0;
	int rc = node_agent_gpu_report(c->api->node, host, body, &ticket, &e);
	json_decref(body);
	if (rc < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 200, json_object());
	api_reply_after_commit(c, ticket);
}

/* Writes the chunk at its offset, so a resent chunk lands in the same place
 * and the log stays exact. */
static void agent_log_chunk(struct api_call *c, const char *task_id)
{
	struct err e;
	long long offset;
	if (!task_id_valid(task_id))
		return api_reply_errorf(c, ERR_INVALID, "bad task id");
	if (c->req->body_too_large)
		return api_reply_errorf(c, ERR_TOO_LARGE, "log chunk over %u bytes", HTTP_BODY_MAX);
	if (query_int(c, "offset", 0, INT64_MAX, 0, &offset, &e) < 0)
		return api_reply_error(c, &e);
	char path[700];
	snprintf(path, sizeof path, "%s/logs/%s.log", c->api->data_dir, task_id);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return api_reply_errorf(c, ERR_INTERNAL, "cannot open log: %s", strerror(errno));
	ssize_t w = pwrite(fd, c->req->body, c->req->body_len, offset);
	close(fd);
	if (w != (ssize_t)c->req->body_len)
		return api_reply_errorf(c, ERR_INTERNAL, "cannot write log: %s", strerror(errno));
	api_reply_json(c, 200, json_object());
}

static void route_host(struct api_call *c, const char *host, const char *sub)
{
	const char *m = c->req->method;
	if (strcmp(sub, "heartbeat") == 0 && strcmp(m, "POST") == 0)
		agent_heartbeat(c, host);
	else if (strcmp(sub, "commands") == 0 && strcmp(m, "GET") == 0)
		agent_commands(c, host);
	else if (strcmp(sub, "reports") == 0 && strcmp(m, "POST") == 0)
		agent_reports(c, host);
	else if (strcmp(sub, "gpus") == 0 && strcmp(m, "POST") == 0)
		agent_gpus(c, host);
	else if (strncmp(sub, "logs/", 5) == 0 && strcmp(m, "PUT") == 0)
		agent_log_chunk(c, sub + 5);
	else
		api_reply_errorf(c, ERR_NOT_FOUND, "no route %s /v1/agents/%s/%.60s", m, host, sub);
}

bool api_route_agents(struct api_call *c, const char *path)
{
	if (strncmp(path, "/v1/agents/", 11) != 0)
		return false;
	if (c->who.role != AUTH_AGENT && c->who.role != AUTH_ADMIN) {
		api_reply_errorf(c, ERR_FORBIDDEN, "agent routes need an agent or admin token");
		return true;
	}
	const char *rest = path + 11;
	if (strcmp(rest, "register") == 0) {
		if (strcmp(c->req->method, "POST") == 0)
			agent_register(c);
		else
			api_reply_method_not_allowed(c);
		return true;
	}
	const char *slash = strchr(rest, '/');
	char host[TASK_HOST_MAX];
	size_t len = slash ? (size_t)(slash - rest) : 0;
	if (!slash || len == 0 || len >= sizeof host) {
		api_reply_errorf(c, ERR_NOT_FOUND, "no route %s %.100s", c->req->method, path);
		return true;
	}
	memcpy(host, rest, len);
	host[len] = '\0';
	route_host(c, host, slash + 1);
	return true;
}
