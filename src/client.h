/* client.h — the HTTP client side of the API (libcurl), shared by the CLI
 * verbs and the agent. One struct client per thread. */
#ifndef GPUNODE_CLIENT_H
#define GPUNODE_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

#define CLIENT_URL_MAX 256
#define CLIENT_TOKEN_MAX 128

struct client {
	char url[CLIENT_URL_MAX];     /* "http://127.0.0.1:7070", no trailing slash */
	char token[CLIENT_TOKEN_MAX];
	void *curl;                   /* CURL*, reused so keep-alive works */
};

struct client_response {
	long status;
	char *body;              /* NUL-terminated, owned */
	size_t len;
	long long log_offset;    /* X-Log-Offset header, -1 if absent */
	char task_state[16];     /* X-Task-State header, "" if absent */
};

int client_init(struct client *c, const char *url, const char *token, struct err *e);
void client_cleanup(struct client *c);

/* One request. body may be NULL. timeout_ms 0: 30 s. Transport failures
 * (connection refused...) return -1 with ERR_UNAVAILABLE and a message that
 * names the URL; any HTTP status returns 0 with out filled. */
int client_request(struct client *c, const char *method, const char *path, const char *body, size_t body_len,
		   const char *content_type, long timeout_ms, struct client_response *out, struct err *e);
void client_response_free(struct client_response *r);

/* JSON round trip: sends req (may be NULL; not stolen), parses the reply
 * into *resp. A reply >= 400 returns -1 with e set from the API's
 * {"error":{code,message}} (code mapped back to enum err_code). */
int client_json(struct client *c, const char *method, const char *path, json_t *req, json_t **resp,
		struct err *e);

/* Fills e from an error reply (status >= 400) of client_request: the API's
 * {"error":{code,message}}, or the bare status when the body is not that.
 * Always returns -1. */
int client_error_from_response(const struct client_response *r, struct err *e);

/* Building request paths: client_path_escape appends s percent-encoded (safe
 * for a path segment or a query value); client_query_add appends
 * "?key=value" or "&key=value", and nothing when value is NULL. */
struct strbuf;
void client_path_escape(struct strbuf *b, const char *s);
void client_query_add(struct strbuf *b, const char *key, const char *value);

/* Where the CLI finds the node: flags, then GPUNODE_URL / GPUNODE_TOKEN,
 * then DATA/admin.token and DATA/url (data_dir from --data, GPUNODE_DATA, or
 * the pointer file written by the last local `gpunode up`/`serve`:
 * $HOME/.gpunode/current), then the defaults (http://127.0.0.1:7070). */
int client_resolve(const char *url_flag, const char *token_flag, const char *data_dir, char *url, size_t url_cap,
		   char *token, size_t token_cap, struct err *e);

/* Written by `gpunode up`/`serve` so a later CLI call finds this node:
 * $HOME/.gpunode/current holds the data dir (mode 0600). */
int client_write_pointer(const char *data_dir, struct err *e);

/* The default data dir: $GPUNODE_DATA, else /var/lib/gpunode as root, else
 * $HOME/.gpunode/data. */
void client_default_data_dir(char *buf, size_t cap);
/* The data dir the CLI works on, resolved as client_resolve does: flag
 * (--data), GPUNODE_DATA, the last local `gpunode up`, the default. */
int client_data_dir(const char *flag, char *buf, size_t cap, struct err *e);

#endif
