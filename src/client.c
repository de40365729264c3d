/* client.c — the API client (libcurl + jansson), shared by the CLI verbs and
 * the agent. One CURL handle per struct client: libcurl keeps the connection
 * to the node open between requests on the same handle, so a polling loop
 * (`submit --wait`, `logs -f`, the agent's long poll) costs one TCP
 * handshake, not one per request. */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strbuf.h"
#include "util.h"

#define CLIENT_DEFAULT_URL "http://127.0.0.1:7070"
#define CLIENT_DEFAULT_TIMEOUT_MS 30000L
#define CLIENT_CONNECT_TIMEOUT_MS 5000L

/* Drops trailing slashes, so callers can append "/v1/...". */
static void trim_url(char *url)
{
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		url[--n] = '\0';
}

static bool copy_url(char *dst, size_t cap, const char *url)
{
	if (!str_copy(dst, cap, url))
		return false;
	trim_url(dst);
	return true;
}

int client_init(struct client *c, const char *url, const char *token, struct err *e)
{
	memset(c, 0, sizeof *c);
	if (!url || !*url)
		url = CLIENT_DEFAULT_URL;
	if (!copy_url(c->url, sizeof c->url, url))
		return err_set(e, ERR_INVALID, "node URL is too long (max %d bytes)", CLIENT_URL_MAX - 1);
	if (!str_copy(c->token, sizeof c->token, token))
		return err_set(e, ERR_INVALID, "token is too long (max %d bytes)", CLIENT_TOKEN_MAX - 1);
	c->curl = curl_easy_init();
	if (!c->curl)
		return err_set(e, ERR_INTERNAL, "cannot initialise libcurl");
	return 0;
}

void client_cleanup(struct client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

void client_response_free(struct client_response *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	strbuf_append(userdata, data, size * nmemb);
	return size * nmemb;
}

/* Returns the value of header line `line` if its name is `name`, else NULL.
 * The value is not NUL-terminated; *len gets its length without the CRLF. */
static const char *header_value(const char *line, size_t n, const char *name, size_t *len)
{
	size_t name_len = strlen(name);
	if (n <= name_len || line[name_len] != ':' || strncasecmp(line, name, name_len) != 0)
		return NULL;
	const char *v = line + name_len + 1, *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	*len = (size_t)(end - v);
	return v;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
	struct client_response *r = userdata;
	size_t n = size * nmemb, len;
	const char *v;
	char tmp[32];
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response starts (after a 100 Continue, say): forget the last. */
		r->log_offset = -1;
		r->task_state[0] = '\0';
	} else if ((v = header_value(line, n, "X-Log-Offset", &len)) && len < sizeof tmp) {
		memcpy(tmp, v, len);
		tmp[len] = '\0';
		char *endp;
		errno = 0;
		long long off = strtoll(tmp, &endp, 10);
		if (errno == 0 && endp != tmp && *endp == '\0' && off >= 0)
			r->log_offset = off;
	} else if ((v = header_value(line, n, "X-Task-State", &len)) && len < sizeof r->task_state) {
		memcpy(r->task_state, v, len);
		r->task_state[len] = '\0';
	}
	return n;
}

/* Turns a libcurl failure into the message a person can act on. */
static int transport_error(struct client *c, CURLcode rc, const char *errbuf, long timeout_ms, struct err *e)
{
	long os_errno = 0;
	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return err_set(e, ERR_UNAVAILABLE, "the node at %s did not answer within %ld ms", c->url, timeout_ms);
	char sysbuf[128];
	const char *why = os_errno ? strerror_r((int)os_errno, sysbuf, sizeof sysbuf)
		: *errbuf ? errbuf : curl_easy_strerror(rc);
	const char *hint = rc == CURLE_COULDNT_CONNECT ? " (is `gpunode up` running?)" : "";
	return err_set(e, ERR_UNAVAILABLE, "cannot reach the node at %s: %s%s", c->url, why, hint);
}

int client_request(struct client *c, const char *method, const char *path, const char *body, size_t body_len,
		   const char *content_type, long timeout_ms, struct client_response *out, struct err *e)
{
	memset(out, 0, sizeof *out);
	out->log_offset = -1;
	if (!c->curl)
		return err_set(e, ERR_INTERNAL, "client used before client_init");
	if (timeout_ms <= 0)
		timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;

	CURL *h = c->curl;
	/* reset clears the last request's options but keeps the open connection. */
	curl_easy_reset(h);

	struct strbuf url = {0};
	strbuf_printf(&url, "%s%s", c->url, path);
	struct curl_slist *headers = NULL;
	if (c->token[0]) {
		char auth[CLIENT_TOKEN_MAX + 32];
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
		headers = curl_slist_append(headers, auth);
	}
	if (body && content_type) {
		char ct[128];
		snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
		headers = curl_slist_append(headers, ct);
	}
	/* No "Expect: 100-continue" round trip for larger bodies (log uploads). */
	headers = curl_slist_append(headers, "Expect:");

	char errbuf[CURL_ERROR_SIZE] = "";
	struct strbuf resp = {0};
	curl_easy_setopt(h, CURLOPT_URL, url.buf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* the agent calls this from threads */
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 timeout_ms < CLIENT_CONNECT_TIMEOUT_MS ? timeout_ms : CLIENT_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body || strcmp(method, "POST") == 0) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		}
	}

	CURLcode rc = curl_easy_perform(h);
	curl_slist_free_all(headers);
	strbuf_free(&url);
	/* The handle keeps pointers to our stack buffers; drop them now. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	if (rc != CURLE_OK) {
		strbuf_free(&resp);
		return transport_error(c, rc, errbuf, timeout_ms, e);
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	out->body = strbuf_take(&resp, &out->len);
	return 0;
}

static enum err_code code_from_name(const char *name)
{
	for (enum err_code c = ERR_INVALID; c <= ERR_INTERNAL; c++)
		if (strcmp(err_code_name(c), name) == 0)
			return c;
	return ERR_OK;
}

static enum err_code code_from_status(long status)
{
	for (enum err_code c = ERR_INVALID; c <= ERR_INTERNAL; c++)
		if (err_http_status(c) == (unsigned)status)
			return c;
	return status < 500 ? ERR_INVALID : ERR_INTERNAL; /* 405 method_not_allowed and the like */
}

int client_error_from_response(const struct client_response *r, struct err *e)
{
	json_t *doc = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
	json_t *error = json_object_get(doc, "error");
	const char *name = json_string_value(json_object_get(error, "code"));
	const char *msg = json_string_value(json_object_get(error, "message"));
	enum err_code code = name ? code_from_name(name) : ERR_OK;
	if (code == ERR_OK)
		code = code_from_status(r->status);
	if (msg)
		err_set(e, code, "%s", msg);
	else
		err_set(e, code, "the node answered HTTP %ld%s%.100s", r->status, r->len ? ": " : "",
			r->body ? r->body : "");
	json_decref(doc);
	return -1;
}

int client_json(struct client *c, const char *method, const char *path, json_t *req, json_t **resp,
		struct err *e)
{
	if (resp)
		*resp = NULL;
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (req && !body)
		return err_set(e, ERR_INTERNAL, "cannot encode the request as JSON");
	struct client_response r;
	int rc = client_request(c, method, path, body, body ? strlen(body) : 0, "application/json", 0, &r, e);
	free(body);
	if (rc < 0)
		return rc;
	if (r.status >= 400) {
		client_error_from_response(&r, e);
		client_response_free(&r);
		return -1;
	}
	json_t *doc = json_null();
	if (r.len > 0) {
		json_error_t jerr;
		doc = json_loadb(r.body, r.len, JSON_DECODE_ANY, &jerr);
		if (!doc) {
			err_set(e, ERR_INTERNAL, "the node sent invalid JSON (HTTP %ld): %s", r.status, jerr.text);
			client_response_free(&r);
			return -1;
		}
	}
	client_response_free(&r);
	if (resp)
		*resp = doc;
	else
		json_decref(doc);
	return 0;
}

void client_path_escape(struct strbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		/* RFC 3986 unreserved characters go as they are; the rest %XX. */
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '.' || *p == '_' || *p == '~') {
			strbuf_append(b, (const char *)p, 1);
		} else {
			char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			strbuf_append(b, enc, 3);
		}
	}
}

void client_query_add(struct strbuf *b, const char *key, const char *value)
{
	if (!value)
		return;
	bool first = !b->buf || !strchr(b->buf, '?');
	strbuf_printf(b, "%c%s=", first ? '?' : '&', key);
	client_path_escape(b, value);
}

/* --- finding the node -------------------------------------------------- */

static const char *home_dir(void)
{
	const char *home = getenv("HOME");
	if (home && *home)
		return home;
	struct passwd *pw = getpwuid(getuid());
	return pw ? pw->pw_dir : NULL;
}

/* Reads the first line of a small file into buf, trimmed of surrounding
 * white space. Returns 1 if read, 0 if the file does not exist, -1 (with e)
 * if it exists but cannot be read: a silent fallback to the defaults would
 * hide the real problem (e.g. a root-owned data dir). */
static int read_first_line(const char *path, char *buf, size_t cap, struct err *e)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return err_set(e, ERR_INVALID, "cannot read %s: %s", path, strerror(errno));
	}
	char line[1024];
	bool got = fgets(line, sizeof line, f) != NULL;
	fclose(f);
	if (!got)
		return 0;
	char *s = line, *end = line + strlen(line);
	while (*s == ' ' || *s == '\t')
		s++;
	while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (!*s)
		return 0;
	if (!str_copy(buf, cap, s))
		return err_set(e, ERR_INVALID, "%s: value too long", path);
	return 1;
}

static const char *pointer_path(char *buf, size_t cap)
{
	const char *home = home_dir();
	if (!home)
		return NULL;
	snprintf(buf, cap, "%s/.gpunode/current", home);
	return buf;
}

/* The data dir of the node this CLI talks to: --data, GPUNODE_DATA, the
 * pointer file of the last local `gpunode up`, then the default. */
static int resolve_data_dir(const char *flag, char *buf, size_t cap, struct err *e)
{
	if (flag && *flag)
		return str_copy(buf, cap, flag) ? 0 : err_set(e, ERR_INVALID, "data dir path too long");
	const char *env = getenv("GPUNODE_DATA");
	if (env && *env)
		return str_copy(buf, cap, env) ? 0 : err_set(e, ERR_INVALID, "GPUNODE_DATA is too long");
	char ptr[4096];
	if (pointer_path(ptr, sizeof ptr)) {
		int rc = read_first_line(ptr, buf, cap, e);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	client_default_data_dir(buf, cap);
	return 0;
}

int client_resolve(const char *url_flag, const char *token_flag, const char *data_dir, char *url, size_t url_cap,
		   char *token, size_t token_cap, struct err *e)
{
	const char *url_src = url_flag && *url_flag ? url_flag : getenv("GPUNODE_URL");
	const char *token_src = token_flag && *token_flag ? token_flag : getenv("GPUNODE_TOKEN");
	bool have_url = url_src && *url_src, have_token = token_src && *token_src;
	url[0] = token[0] = '\0';
	if (have_url && !copy_url(url, url_cap, url_src))
		return err_set(e, ERR_INVALID, "node URL is too long");
	if (have_token && !str_copy(token, token_cap, token_src))
		return err_set(e, ERR_INVALID, "token is too long");
	if (have_url && have_token)
		return 0;

	/* The data dir of a local node holds what the flags did not say. */
	char dir[4096], path[4200];
	if (resolve_data_dir(data_dir, dir, sizeof dir, e) < 0)
		return -1;
	if (!have_url) {
		snprintf(path, sizeof path, "%s/url", dir);
		int rc = read_first_line(path, url, url_cap, e);
		if (rc < 0)
			return rc;
		if (rc == 0)
			str_copy(url, url_cap, CLIENT_DEFAULT_URL);
		trim_url(url);
	}
	if (!have_token) {
		snprintf(path, sizeof path, "%s/admin.token", dir);
		if (read_first_line(path, token, token_cap, e) < 0)
			return -1;
		/* No token at all is not an error here: /healthz needs none, and the
		 * node's 401 says what is missing. */
	}
	return 0;
}

int client_write_pointer(const char *data_dir, struct err *e)
{
	const char *home = home_dir();
	if (!home)
		return err_set(e, ERR_INTERNAL, "cannot find the home directory to write ~/.gpunode/current");
	/* Store an absolute path: the CLI may run from another directory. */
	char abs[4096];
	if (!realpath(data_dir, abs) && !str_copy(abs, sizeof abs, data_dir))
		return err_set(e, ERR_INVALID, "data dir path too long");

	char dir[4096], tmp[4200], final[4200];
	snprintf(dir, sizeof dir, "%s/.gpunode", home);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, ERR_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
	snprintf(final, sizeof final, "%s/current", dir);
	snprintf(tmp, sizeof tmp, "%s/current.%ld.tmp", dir, (long)getpid());

	/* Write then rename, so a concurrent reader never sees half a path. */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
	size_t len = strlen(abs);
	abs[len] = '\n';
	bool ok = write(fd, abs, len + 1) == (ssize_t)(len + 1);
	int saved = errno;
	if (close(fd) < 0 && ok) {
		ok = false;
		saved = errno;
	}
	if (!ok || rename(tmp, final) < 0) {
		if (ok)
			saved = errno;
		unlink(tmp);
		return err_set(e, ERR_INTERNAL, "cannot write %s: %s", final, strerror(saved));
	}
	return 0;
}

void client_default_data_dir(char *buf, size_t cap)
{
	const char *env = getenv("GPUNODE_DATA");
	if (env && *env) {
		str_copy(buf, cap, env);
		return;
	}
	if (geteuid() == 0) {
		str_copy(buf, cap, "/var/lib/gpunode");
		return;
	}
	const char *home = home_dir();
	snprintf(buf, cap, "%s/.gpunode/data", home ? home : ".");
}

int client_data_dir(const char *flag, char *buf, size_t cap, struct err *e)
{
	return resolve_data_dir(flag, buf, cap, e);
}
