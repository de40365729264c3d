/* docker_api.h — the Docker Engine API, spoken over its unix socket with
 * libcurl (no docker CLI). One call per function; no state but the socket
 * path, so any thread may call any of them (each call has its own handle). */
#ifndef GPUNODE_DOCKER_API_H
#define GPUNODE_DOCKER_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* API version spoken: Docker 20.10 (Debian 12's docker.io) and later. */
#define DOCKER_API_PREFIX "/v1.41"

struct docker_response {
	long status;   /* HTTP status; 0 when no answer came */
	json_t *json;  /* the parsed body, NULL when it was not JSON */
	char *text;    /* the raw body, NUL-terminated */
};

void docker_response_free(struct docker_response *r);

/* One request to DOCKER_API_PREFIX + path (body may be NULL). A transport
 * failure (no daemon, timeout) is -1 with ERR_UNAVAILABLE; any HTTP status
 * is 0 with r filled. timeout_ms 0: no limit. */
int docker_call(const char *socket, const char *method, const char *path, json_t *body, long timeout_ms,
		struct docker_response *r, struct err *e);

/* The daemon's own message in an error reply ("No such image: x"), or the
 * status when it gave none. */
const char *docker_error_text(const struct docker_response *r, char *buf, size_t cap);

/* A streamed GET or POST (body may be NULL): on_data gets the reply as it
 * arrives and returns false to stop early. Returns the HTTP status (>= 100),
 * or -1 on a transport failure (e set). timeout_ms 0: no limit. */
typedef bool (*docker_on_data)(const char *data, size_t len, void *arg);
long docker_stream(const char *socket, const char *method, const char *path, json_t *body, long timeout_ms,
		   docker_on_data on_data, void *arg, struct err *e);

/* Splits a non-TTY container output stream into its frames: an 8-byte
 * header (stream 1 stdout / 2 stderr, 3 pad bytes, big-endian length) then
 * the payload. Feed it bytes as they come; it calls out for each payload
 * piece. */
struct docker_demux {
	unsigned char hdr[8];
	size_t hdr_have;
	size_t left; /* payload bytes still to come in the current frame */
};
typedef void (*docker_on_payload)(const char *data, size_t len, void *arg);
void docker_demux_feed(struct docker_demux *d, const char *data, size_t len, docker_on_payload out, void *arg);

/* Percent-encodes s for a query string. */
void docker_url_escape(const char *s, char *out, size_t cap);

#endif
