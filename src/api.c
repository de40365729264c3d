#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void api_reply_json(struct api_call *c, unsigned status, json_t *body)
{
	api_response_json(c->resp, status, body);
}

void api_response_json(struct http_response *r, unsigned status, json_t *body)
{
	free(r->body);
	r->status = status;
	r->body = json_dumps(body, JSON_COMPACT);
	r->len = r->body ? strlen(r->body) : 0;
	r->content_type = "application/json";
	json_decref(body);
}

void api_response_error(struct http_response *r, const struct err *e)
{
	api_response_json(r, err_http_status(e->code),
			  json_pack("{s:{s:s, s:s}}", "error", "code", err_code_name(e->code), "message", e->msg));
}

void api_reply_error(struct api_call *c, const struct err *e)
{
	api_response_error(c->resp, e);
}

/* --- acknowledging after a commit, without a thread waiting for it --- */

struct commit_wait {
	struct store *store;
	uint64_t ticket;
};

static bool commit_ready(void *arg)
{
	struct commit_wait *w = arg;
	return store_decided(w->store) >= w->ticket;
}

/* The write is decided: answer as prepared if it committed, else with the
 * store's error (the client must not believe a write that is not durable). */
static void commit_finish(void *arg, struct http_response *resp)
{
	struct commit_wait *w = arg;
	struct err e;
	if (store_wait(w->store, w->ticket, &e) < 0)
		api_response_error(resp, &e);
	free(w);
}

void api_reply_after_commit(struct api_call *c, uint64_t ticket)
{
	if (!ticket)
		return;
	struct commit_wait *w = xmalloc(sizeof *w);
	*w = (struct commit_wait){c->api->node->store, ticket};
	c->resp->ready = commit_ready;
	c->resp->finish = commit_finish;
	c->resp->wait_arg = w;
}

void api_reply_errorf(struct api_call *c, enum err_code code, const char *fmt, ...)
{
	struct err e = {.code = code};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	api_reply_error(c, &e);
}

void api_reply_method_not_allowed(struct api_call *c)
{
	char msg[160];
	snprintf(msg, sizeof msg, "method %s not allowed on %.100s", c->req->method, c->req->path);
	api_reply_json(c, 405, json_pack("{s:{s:s, s:s}}", "error", "code", "method_not_allowed", "message", msg));
}

int api_body_json(struct api_call *c, json_t **out, struct err *e)
{
	if (c->req->body_too_large)
		return err_set(e, ERR_TOO_LARGE, "request body over %u bytes", HTTP_BODY_MAX);
	if (c->req->body_len == 0)
		return err_set(e, ERR_INVALID, "request body is empty; want a JSON object");
	json_error_t je;
	*out = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!*out)
		return err_set(e, ERR_INVALID, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		return err_set(e, ERR_INVALID, "request body must be a JSON object");
	}
	return 0;
}

const char *api_client_scope(const struct api_call *c)
{
	return c->who.role == AUTH_ADMIN ? NULL : c->who.client;
}

static int authenticate(struct api_call *c, struct err *e)
{
	const char *h = http_header(c->req, "Authorization");
	const char *token = NULL;
	if (h && strncmp(h, "Bearer ", 7) == 0)
		token = h + 7;
	return auth_lookup(c->api->node->store, token, &c->who, e);
}

static void route_tokens(struct api_call *c)
{
	if (strcmp(c->req->method, "POST") != 0)
		return api_reply_method_not_allowed(c);
	if (c->who.role != AUTH_ADMIN)
		return api_reply_errorf(c, ERR_FORBIDDEN, "only the admin token can create tokens");
	struct err e;
	json_t *body;
	if (api_body_json(c, &body, &e) < 0)
		return api_reply_error(c, &e);
	const char *client = NULL, *role_name = "client";
	json_error_t je;
	enum auth_role role;
	char token[AUTH_TOKEN_LEN + 1];
	if (json_unpack_ex(body, &je, JSON_STRICT, "{s:s, s?s}", "client", &client, "role", &role_name) < 0) {
		err_set(&e, ERR_INVALID, "%s", je.text);
	} else if (!*client || strlen(client) >= 64) {
		err_set(&e, ERR_INVALID, "client: 1..63 characters");
	} else if (auth_role_parse(role_name, &role) < 0) {
		err_set(&e, ERR_INVALID, "role: must be client, agent or admin");
	} else if (auth_create(c->api->node->store, client, role, token, sizeof token, &e) == 0) {
		api_reply_json(c, 201,
			       json_pack("{s:s, s:s, s:s}", "token", token, "client", client, "role", role_name));
		json_decref(body);
		return;
	}
	json_decref(body);
	api_reply_error(c, &e);
}

static void route_metrics(struct api_call *c)
{
	if (c->who.role == AUTH_CLIENT)
		return api_reply_errorf(c, ERR_FORBIDDEN, "metrics need the admin or an agent token");
	size_t len;
	char *text = node_metrics_text(c->api->node, &len);
	c->resp->status = 200;
	c->resp->content_type = "text/plain; version=0.0.4";
	/* The HTTP counters live here, not in the node. */
	char extra[512];
	int n = snprintf(extra, sizeof extra,
			 "# HELP gpunode_http_requests_total HTTP requests answered, by status class.\n"
			 "# TYPE gpunode_http_requests_total counter\n");
	for (int k = 2; k <= 5; k++)
		n += snprintf(extra + n, sizeof extra - (size_t)n, "gpunode_http_requests_total{class=\"%dxx\"} %llu\n",
			      k, (unsigned long long)http_server_answered(c->req->server, (unsigned)k));
	c->resp->body = xrealloc(text, len + (size_t)n + 1);
	memcpy(c->resp->body + len, extra, (size_t)n + 1);
	c->resp->len = len + (size_t)n;
}

static bool method_is(struct api_call *c, const char *m)
{
	return strcmp(c->req->method, m) == 0;
}

static void route(struct api_call *c)
{
	const char *path = c->req->path;
	if (strcmp(path, "/healthz") == 0)
		return api_reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
	struct err e;
	if (authenticate(c, &e) < 0)
		return api_reply_error(c, &e);
	if (strcmp(path, "/metrics") == 0 && method_is(c, "GET"))
		return route_metrics(c);
	if (strcmp(path, "/v1/tokens") == 0)
		return route_tokens(c);
	if (strcmp(path, "/v1/hosts") == 0 && method_is(c, "GET"))
		return api_reply_json(c, 200, node_hosts_json(c->api->node));
	if (api_route_tasks(c, path) || api_route_agents(c, path) || api_route_gpus(c, path))
		return;
	if (strcmp(path, "/metrics") == 0 || strcmp(path, "/v1/hosts") == 0)
		return api_reply_method_not_allowed(c);
	api_reply_errorf(c, ERR_NOT_FOUND, "no route %s %s (see docs/api.md)", c->req->method, path);
}

void api_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api_call c = {.api = ctx, .req = req, .resp = resp};
	route(&c);
}
