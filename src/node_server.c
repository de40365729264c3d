#include "node_server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "util.h"

static int write_small_file(const char *path, const char *text, mode_t mode, struct err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : err_set(e, ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
}

/* The URL a local client should use: a wildcard listen address is reached
 * through loopback. */
static void local_url(const char *listen, unsigned port, char *url, size_t cap)
{
	char host[100];
	const char *colon = strrchr(listen, ':');
	size_t len = colon ? (size_t)(colon - listen) : 0;
	if (len >= sizeof host)
		len = sizeof host - 1;
	memcpy(host, listen, len);
	host[len] = '\0';
	if (!len || strcmp(host, "0.0.0.0") == 0)
		strcpy(host, "127.0.0.1");
	else if (strcmp(host, "[::]") == 0)
		strcpy(host, "[::1]");
	snprintf(url, cap, "http://%s:%u", host, port);
}

static void kick_http(void *arg)
{
	http_server_kick(arg);
}

int node_server_start(struct node_server *s, const struct node_config *cfg, const char *listen, struct err *e)
{
	memset(s, 0, sizeof *s);
	if (node_open(cfg, &s->node, e) < 0)
		return -1;
	if (auth_ensure_admin_token(s->node->store, cfg->data_dir, s->admin_token, sizeof s->admin_token, e) < 0)
		goto fail;
	s->api.node = s->node;
	str_copy(s->api.data_dir, sizeof s->api.data_dir, cfg->data_dir);
	if (http_server_start(listen, api_handle, &s->api, &s->http, e) < 0)
		goto fail;
	/* Every commit may complete parked requests (acknowledgements, polls). */
	store_set_commit_hook(s->node->store, kick_http, s->http);
	pthread_mutex_lock(&s->node->mu);
	s->node->commands_hook = kick_http; /* commands that need no write (GPU drills, clears) */
	s->node->commands_hook_arg = s->http;
	pthread_mutex_unlock(&s->node->mu);
	local_url(listen, http_server_port(s->http), s->url, sizeof s->url);
	char path[600], line[160];
	snprintf(path, sizeof path, "%s/url", cfg->data_dir);
	snprintf(line, sizeof line, "%s\n", s->url);
	if (write_small_file(path, line, 0644, e) < 0)
		goto fail;
	struct err pe;
	if (client_write_pointer(cfg->data_dir, &pe) < 0)
		log_msg("warn", "node", "cannot record this node for the CLI: %s", pe.msg);
	return 0;
fail:
	node_server_stop(s);
	return -1;
}

void node_server_begin_stop(struct node_server *s)
{
	if (s->node)
		node_shutdown_begin(s->node);
	if (s->http)
		http_server_kick(s->http); /* long polls see the node stopping */
}

void node_server_stop(struct node_server *s)
{
	node_server_begin_stop(s);
	if (s->node) {
		store_set_commit_hook(s->node->store, NULL, NULL);
		pthread_mutex_lock(&s->node->mu);
		s->node->commands_hook = NULL;
		pthread_mutex_unlock(&s->node->mu);
	}
	http_server_stop(s->http);
	s->http = NULL;
	node_close(s->node);
	s->node = NULL;
}

void signals_block(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int signals_wait(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	return sig;
}
