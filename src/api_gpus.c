/* api_gpus.c — /v1/gpus routes: the pool's GPUs and the operator's verbs on
 * one GPU (drain, undrain, clear, inject-fault). Admin only, except the list. */
#include <stdio.h>
#include <string.h>

#include "api.h"

static void gpu_inject_fault(struct api_call *c, const char *uuid)
{
	struct err e;
	json_t *body, *resp = NULL;
	if (api_body_json(c, &body, &e) < 0)
		return api_reply_error(c, &e);
	json_t *xid = json_object_get(body, "xid");
	if (!json_is_integer(xid)) {
		json_decref(body);
		return api_reply_errorf(c, ERR_INVALID, "body: want {\"xid\": N}, an NVIDIA Xid number");
	}
	int rc = node_gpu_inject_fault(c->api->node, uuid, (int)json_integer_value(xid), &resp, &e);
	json_decref(body);
	if (rc < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 202, resp);
}

static void gpu_verb(struct api_call *c, const char *uuid, const char *verb)
{
	struct err e;
	json_t *resp = NULL;
	int rc;
	if (strcmp(verb, "drain") == 0)
		rc = node_gpu_drain(c->api->node, uuid, true, &resp, &e);
	else if (strcmp(verb, "undrain") == 0)
		rc = node_gpu_drain(c->api->node, uuid, false, &resp, &e);
	else if (strcmp(verb, "clear") == 0)
		rc = node_gpu_clear(c->api->node, uuid, &resp, &e);
	else if (strcmp(verb, "inject-fault") == 0)
		return gpu_inject_fault(c, uuid);
	else
		return api_reply_errorf(c, ERR_NOT_FOUND, "no route POST /v1/gpus/%.64s/%.40s (drain, undrain, clear, inject-fault)",
					uuid, verb);
	if (rc < 0)
		return api_reply_error(c, &e);
	api_reply_json(c, 200, resp);
}

bool api_route_gpus(struct api_call *c, const char *path)
{
	if (strcmp(path, "/v1/gpus") == 0) {
		if (strcmp(c->req->method, "GET") == 0)
			api_reply_json(c, 200, node_gpus_json(c->api->node));
		else
			api_reply_method_not_allowed(c);
		return true;
	}
	if (strncmp(path, "/v1/gpus/", 9) != 0)
		return false;
	const char *rest = path + 9, *slash = strchr(rest, '/');
	char uuid[TASK_GPU_UUID_MAX];
	size_t len = slash ? (size_t)(slash - rest) : 0;
	if (!slash || len == 0 || len >= sizeof uuid) {
		api_reply_errorf(c, ERR_NOT_FOUND, "no route %s %.100s (want /v1/gpus/UUID/VERB)", c->req->method, path);
		return true;
	}
	if (c->who.role != AUTH_ADMIN) {
		api_reply_errorf(c, ERR_FORBIDDEN, "GPU operations need the admin token");
		return true;
	}
	if (strcmp(c->req->method, "POST") != 0) {
		api_reply_method_not_allowed(c);
		return true;
	}
	memcpy(uuid, rest, len);
	uuid[len] = '\0';
	gpu_verb(c, uuid, slash + 1);
	return true;
}
