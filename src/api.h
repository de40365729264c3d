/* api.h — HTTP routes under /v1, auth, JSON errors, /metrics and /healthz.
 * Routes hold no business logic: they parse, check the caller, call the node
 * and encode. api.c routes; api_tasks.c and api_agents.c hold the handlers. */
#ifndef GPUNODE_API_H
#define GPUNODE_API_H

#include <jansson.h>

#include "auth.h"
#include "http_server.h"
#include "node.h"

struct api {
	struct node *node;
	char data_dir[512];
};

/* The http_handler_fn for the node (ctx = struct api *). */
void api_handle(void *ctx, const struct http_request *req, struct http_response *resp);

/* One request in flight: what the handlers get. */
struct api_call {
	struct api *api;
	const struct http_request *req;
	struct http_response *resp;
	struct auth_identity who;
};

void api_reply_json(struct api_call *c, unsigned status, json_t *body); /* steals body */
/* The same on a bare response (replacing any body it had). */
void api_response_json(struct http_response *r, unsigned status, json_t *body);
void api_response_error(struct http_response *r, const struct err *e);
/* Holds the prepared reply until store write `ticket` is decided; sends the
 * store's error instead if it failed. ticket 0: no wait. */
void api_reply_after_commit(struct api_call *c, uint64_t ticket);
void api_reply_error(struct api_call *c, const struct err *e);
void api_reply_errorf(struct api_call *c, enum err_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void api_reply_method_not_allowed(struct api_call *c);
/* Parses the request body as a JSON object (400 with position on failure). */
int api_body_json(struct api_call *c, json_t **out, struct err *e);
/* client filter for the node: NULL for admin, the client name otherwise. */
const char *api_client_scope(const struct api_call *c);

/* Route families: return false when the path is not theirs. */
bool api_route_tasks(struct api_call *c, const char *path);
bool api_route_agents(struct api_call *c, const char *path);
bool api_route_gpus(struct api_call *c, const char *path);

#endif
