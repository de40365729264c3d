#include "http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HTTP_POOL_THREADS 4
#define HTTP_WAITER_IDLE_MS 50

/* Per-request state, kept in MHD's con_cls between calls. */
struct request_state {
	char *body;
	size_t len, cap;
	bool too_large;
	bool waiting;                /* suspended with resp held */
	struct http_response resp;   /* the held response */
	struct MHD_Connection *conn;
	struct request_state *next;  /* in the waiter list */
};

struct http_server {
	struct MHD_Daemon *daemon;
	http_handler_fn handler;
	void *ctx;
	unsigned port;
	pthread_mutex_t mu;              /* leaf lock: waiters, kicked, stopping */
	pthread_cond_t cv;
	struct request_state *waiters;
	bool kicked, stopping;
	pthread_t waiter_thread;
	atomic_uint_fast64_t answered[6]; /* by status class */
};

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, struct err *e)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	if (!colon)
		return err_set(e, ERR_INVALID, "--listen %s: want ADDRESS:PORT", listen);
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || end == colon + 1)
		return err_set(e, ERR_INVALID, "--listen %s: bad port", listen);
	size_t hlen = (size_t)(colon - listen);
	if (hlen >= sizeof host)
		return err_set(e, ERR_INVALID, "--listen %s: address too long", listen);
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof *ss);
	if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		host[hlen - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return err_set(e, ERR_INVALID, "--listen %s: bad IPv6 address", listen);
		*len = sizeof *a6;
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, hlen ? host : "127.0.0.1", &a4->sin_addr) != 1)
		return err_set(e, ERR_INVALID, "--listen %s: bad IPv4 address", listen);
	*len = sizeof *a4;
	return 0;
}

static void collect_body(struct request_state *rs, const char *data, size_t size)
{
	if (rs->too_large || rs->len + size > HTTP_BODY_MAX) {
		rs->too_large = true;
		return; /* keep reading the upload, but drop it */
	}
	if (rs->len + size + 1 > rs->cap) {
		rs->cap = (rs->len + size + 1) * 2;
		rs->body = xrealloc(rs->body, rs->cap);
	}
	memcpy(rs->body + rs->len, data, size);
	rs->len += size;
	rs->body[rs->len] = '\0';
}

/* The response's body passes to MHD here. */
static enum MHD_Result queue_response(struct http_server *s, struct MHD_Connection *conn, struct http_response *resp)
{
	if (resp->status / 100 < 6)
		atomic_fetch_add(&s->answered[resp->status / 100], 1);
	struct MHD_Response *r =
		MHD_create_response_from_buffer(resp->len, resp->body ? resp->body : (char *)"", resp->body ?
					MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", resp->content_type ? resp->content_type : "application/json");
	for (int i = 0; i < resp->n_headers; i++)
		MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
	resp->body = NULL;
	enum MHD_Result ret = MHD_queue_response(conn, resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void finish_response(struct http_response *resp)
{
	if (resp->finish)
		resp->finish(resp->wait_arg, resp);
	resp->ready = NULL;
	resp->finish = NULL;
	resp->wait_arg = NULL;
}

/* Holds the response and parks the connection until the waiter resumes it. */
static enum MHD_Result suspend_request(struct http_server *s, struct MHD_Connection *conn, struct request_state *rs,
				       struct http_response *resp)
{
	rs->resp = *resp;
	rs->waiting = true;
	rs->conn = conn;
	MHD_suspend_connection(conn);
	pthread_mutex_lock(&s->mu);
	rs->next = s->waiters;
	s->waiters = rs;
	s->kicked = true; /* the condition may have come true meanwhile */
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct http_server *s = cls;
	struct request_state *rs = *con_cls;
	/* First call: headers only. Answering later (not here) also keeps the
	 * connection alive: MHD closes it if a response is queued this early. */
	if (!rs) {
		*con_cls = xcalloc(1, sizeof *rs);
		return MHD_YES;
	}
	if (*upload_data_size) {
		collect_body(rs, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rs->waiting) { /* resumed by the waiter */
		rs->waiting = false;
		finish_response(&rs->resp);
		return queue_response(s, conn, &rs->resp);
	}
	struct http_request req = {
		.server = s,
		.conn = conn,
		.method = method,
		.path = url,
		.body = rs->body ? rs->body : "",
		.body_len = rs->len,
		.body_too_large = rs->too_large,
	};
	struct http_response resp = {.status = 500};
	s->handler(s->ctx, &req, &resp);
	if (resp.ready && !resp.ready(resp.wait_arg))
		return suspend_request(s, conn, rs, &resp);
	finish_response(&resp);
	return queue_response(s, conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct request_state *rs = *con_cls;
	if (rs) {
		if (rs->waiting) /* the connection died while parked */
			finish_response(&rs->resp);
		free(rs->resp.body);
		free(rs->body);
		free(rs);
		*con_cls = NULL;
	}
}

/* --- the waiter: resumes parked requests whose condition holds --- */

static bool waiter_due(const struct http_server *s, struct request_state *rs, int64_t now)
{
	return s->stopping || (rs->resp.deadline_ms && now >= rs->resp.deadline_ms) || rs->resp.ready(rs->resp.wait_arg);
}

static void wait_for_kick(struct http_server *s, int64_t ms)
{
	struct timespec ts;
	deadline_in_ns(&ts, ms * 1000000L);
	if (!s->kicked && !s->stopping)
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	s->kicked = false;
}

static void *waiter_main(void *arg)
{
	struct http_server *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stopping || s->waiters) {
		wait_for_kick(s, HTTP_WAITER_IDLE_MS);
		/* Check conditions without our lock: ready() takes other locks,
		 * and kicks come from threads holding them. */
		struct request_state *list = s->waiters, *keep = NULL;
		s->waiters = NULL;
		pthread_mutex_unlock(&s->mu);
		int64_t now = now_ms();
		while (list) {
			struct request_state *rs = list;
			list = rs->next;
			if (waiter_due(s, rs, now)) {
				MHD_resume_connection(rs->conn);
			} else {
				rs->next = keep;
				keep = rs;
			}
		}
		pthread_mutex_lock(&s->mu);
		while (keep) {
			struct request_state *rs = keep;
			keep = rs->next;
			rs->next = s->waiters;
			s->waiters = rs;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

void http_server_kick(struct http_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->kicked = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int http_server_start(const char *listen, http_handler_fn handler, void *ctx, struct http_server **out,
		      struct err *e)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (parse_listen(listen, &ss, &sslen, e) < 0)
		return -1;
	struct http_server *s = xcalloc(1, sizeof *s);
	s->handler = handler;
	s->ctx = ctx;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	uint16_t port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
						  ntohs(((struct sockaddr_in *)&ss)->sin_port);
	s->daemon = MHD_start_daemon(flags, port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned)2000, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				     MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_POOL_THREADS,
				     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
	if (!s->daemon) {
		free(s);
		return err_set(e, ERR_UNAVAILABLE, "cannot listen on %s (address in use or not allowed?)", listen);
	}
	pthread_create(&s->waiter_thread, NULL, waiter_main, s);
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : port;
	*out = s;
	return 0;
}

uint64_t http_server_answered(const struct http_server *s, unsigned cls)
{
	return cls < 6 ? atomic_load(&s->answered[cls]) : 0;
}

unsigned http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->waiter_thread, NULL); /* every parked request resumed */
	MHD_stop_daemon(s->daemon);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

const char *http_query(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

void http_response_header(struct http_response *resp, const char *name, const char *value)
{
	if (resp->n_headers >= HTTP_MAX_EXTRA_HEADERS)
		return;
	str_copy(resp->headers[resp->n_headers][0], 64, name);
	str_copy(resp->headers[resp->n_headers][1], 64, value);
	resp->n_headers++;
}
