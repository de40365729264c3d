/* docker_api.c — see docker_api.h. */
#include "docker_api.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "util.h"

void docker_response_free(struct docker_response *r)
{
	json_decref(r->json);
	free(r->text);
	memset(r, 0, sizeof *r);
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	strbuf_append(arg, data, size * n);
	return size * n;
}

/* A handle aimed at the daemon: the host part of the URL is ignored over a
 * unix socket, but curl needs one. */
static CURL *docker_handle(const char *socket, const char *method, const char *path, long timeout_ms)
{
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	char url[2048];
	snprintf(url, sizeof url, "http://docker%s%s", DOCKER_API_PREFIX, path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	return c;
}

int docker_call(const char *socket, const char *method, const char *path, json_t *body, long timeout_ms,
		struct docker_response *r, struct err *e)
{
	memset(r, 0, sizeof *r);
	CURL *c = docker_handle(socket, method, path, timeout_ms);
	if (!c)
		return err_set(e, ERR_INTERNAL, "curl_easy_init failed");
	struct strbuf out = {0};
	char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (payload)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(payload);
	if (rc != CURLE_OK) {
		strbuf_free(&out);
		return err_set(e, ERR_UNAVAILABLE, "docker %s %s on %s: %s", method, path, socket, curl_easy_strerror(rc));
	}
	r->text = strbuf_take(&out, NULL);
	r->json = json_loads(r->text, JSON_DECODE_ANY, NULL);
	return 0;
}

const char *docker_error_text(const struct docker_response *r, char *buf, size_t cap)
{
	const char *msg = json_string_value(json_object_get(r->json, "message"));
	if (msg)
		snprintf(buf, cap, "%s", msg);
	else
		snprintf(buf, cap, "HTTP %ld", r->status);
	return buf;
}

struct stream_ctx {
	docker_on_data on_data;
	void *arg;
};

static size_t stream_chunk(char *data, size_t size, size_t n, void *arg)
{
	struct stream_ctx *s = arg;
	return s->on_data(data, size * n, s->arg) ? size * n : 0;
}

long docker_stream(const char *socket, const char *method, const char *path, json_t *body, long timeout_ms,
		   docker_on_data on_data, void *arg, struct err *e)
{
	CURL *c = docker_handle(socket, method, path, timeout_ms);
	if (!c)
		return err_set(e, ERR_INTERNAL, "curl_easy_init failed");
	struct stream_ctx ctx = {on_data, arg};
	char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (payload || strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload ? payload : "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_chunk);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(payload);
	if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR)
		return err_set(e, ERR_UNAVAILABLE, "docker %s %s: %s", method, path, curl_easy_strerror(rc));
	return status;
}

void docker_demux_feed(struct docker_demux *d, const char *data, size_t len, docker_on_payload out, void *arg)
{
	while (len) {
		if (d->left) {
			size_t take = len < d->left ? len : d->left;
			out(data, take, arg);
			data += take;
			len -= take;
			d->left -= take;
			continue;
		}
		size_t take = sizeof d->hdr - d->hdr_have;
		take = len < take ? len : take;
		memcpy(d->hdr + d->hdr_have, data, take);
		d->hdr_have += take;
		data += take;
		len -= take;
		if (d->hdr_have == sizeof d->hdr) {
			d->left = (size_t)d->hdr[4] << 24 | (size_t)d->hdr[5] << 16 | (size_t)d->hdr[6] << 8 | d->hdr[7];
			d->hdr_have = 0;
		}
	}
}

void docker_url_escape(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;
	for (; *s && k + 4 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-_.~", ch)) {
			out[k++] = (char)ch;
		} else {
			out[k++] = '%';
			out[k++] = hex[ch >> 4];
			out[k++] = hex[ch & 15];
		}
	}
	out[k] = '\0';
}
