/* http_server.h — a thin layer over libmicrohttpd: a small epoll thread
 * pool, bodies collected up to a limit, one handler for every request.
 *
 * Handlers do not block on slow things. A handler that must wait (for a
 * store commit before acknowledging, or for a command in a long poll) fills
 * the response's `ready`/`finish` pair: the connection is suspended, no
 * thread waits for it, and a waiter thread resumes it once ready() holds (it
 * re-checks on every http_server_kick) or the deadline passes; finish()
 * then completes or replaces the response, which is sent. One thread per
 * request and a wake-up per request cost more than the work itself here. */
#ifndef GPUNODE_HTTP_SERVER_H
#define GPUNODE_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define HTTP_BODY_MAX (1u << 20) /* 1 MiB: larger bodies get 413 */

struct http_server;

struct http_request {
	const struct http_server *server;
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
	/* Deferred answer (see above). finish always runs exactly once when
	 * ready is set, also when the connection dies first, and owns wait_arg. */
	bool (*ready)(void *wait_arg);
	void (*finish)(void *wait_arg, struct http_response *resp);
	void *wait_arg;
	int64_t deadline_ms; /* 0: none */
};

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req, struct http_response *resp);

/* listen: "127.0.0.1:7070", "[::1]:7070", "0.0.0.0:7070" (port 0: any). */
int http_server_start(const char *listen, http_handler_fn handler, void *ctx, struct http_server **out,
		      struct err *e);
/* Responses sent with status class `cls` (2 = 2xx ... 5 = 5xx), counted
 * when sent: a parked request counts with the status it ends with. */
uint64_t http_server_answered(const struct http_server *s, unsigned cls);
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *s);
/* Resumes every waiting request (their finish runs), then stops. */
void http_server_stop(struct http_server *s);
/* Something changed: re-check the ready() of waiting requests. Any thread;
 * cheap; takes only a leaf lock. */
void http_server_kick(struct http_server *s);

const char *http_query(const struct http_request *req, const char *key);
const char *http_header(const struct http_request *req, const char *key);
void http_response_header(struct http_response *resp, const char *name, const char *value);

#endif
