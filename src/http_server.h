/* http_server.h — a thin layer over libmicrohttpd: one thread per
 * connection (handlers may block: on a store commit, or a long poll), bodies
 * collected up to a limit, one handler for every request. */
#ifndef GPUNODE_HTTP_SERVER_H
#define GPUNODE_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define HTTP_BODY_MAX (1u << 20) /* 1 MiB: larger bodies get 413 */

struct http_request {
	void *conn; /* struct MHD_Connection * */
	const char *method;
	const char *path;
	const char *body; /* NUL-terminated, body_len bytes */
	size_t body_len;
	bool body_too_large;
};

#define HTTP_MAX_EXTRA_HEADERS 4

struct http_response {
	unsigned status;
	char *body; /* malloc'd, owned by the response */
	size_t len;
	const char *content_type;
	int n_headers;
	char headers[HTTP_MAX_EXTRA_HEADERS][2][64];
};

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req, struct http_response *resp);

struct http_server;

/* listen: "127.0.0.1:7070", "[::1]:7070", "0.0.0.0:7070" (port 0: any). */
int http_server_start(const char *listen, http_handler_fn handler, void *ctx, struct http_server **out,
		      struct err *e);
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *s);
void http_server_stop(struct http_server *s);

const char *http_query(const struct http_request *req, const char *key);
const char *http_header(const struct http_request *req, const char *key);
void http_response_header(struct http_response *resp, const char *name, const char *value);

#endif
