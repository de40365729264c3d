/* node_server.h — the node as a running service: store, core, HTTP API,
 * admin token, and the files that let a local CLI find it. Used by
 * `gpunode serve` and `gpunode up`. */
#ifndef GPUNODE_NODE_SERVER_H
#define GPUNODE_NODE_SERVER_H

#include "api.h"
#include "http_server.h"
#include "node.h"

struct node_server {
	struct node *node;
	struct api api;
	struct http_server *http;
	char url[128];
	char admin_token[AUTH_TOKEN_LEN + 1];
};

/* Opens the node in cfg->data_dir and serves the API on listen. Writes
 * DATA/admin.token (0600), DATA/url and the CLI's pointer file. */
int node_server_start(struct node_server *s, const struct node_config *cfg, const char *listen, struct err *e);
/* Begins shutdown (wakes long polls) without freeing anything. */
void node_server_begin_stop(struct node_server *s);
void node_server_stop(struct node_server *s);

/* Blocks SIGINT/SIGTERM in the calling thread (call before starting any
 * thread, so every thread inherits it) and ignores SIGPIPE. */
void signals_block(void);
/* Waits for SIGINT or SIGTERM; returns the signal. */
int signals_wait(void);

#endif
