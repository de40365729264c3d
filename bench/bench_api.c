/* bench_api — load generator for POST /v1/tasks.
 *
 *   bench_api --url URL --token T [--threads 8] [--count 20000] [--body JSON] [--e2e]
 *
 * N threads, one keep-alive connection each (one CURL easy handle per
 * thread), share --count submissions of --body (default {"command":["true"]})
 * and check each answer is 201 — which the node sends only after the task is
 * committed, so this measures durable submissions. Prints one JSON object:
 *   {"api_submits_per_s": X, "api_submits": N, "api_errors": E, "threads": N}
 *
 * The node runs the tasks it accepts while we submit (`gpunode up` has no
 * "accept but do not run" mode), so the figure includes the cost of a node
 * that is also placing and finishing tasks. bench/run.sh makes that cost
 * small or nil by choice of body (a model no GPU has keeps tasks queued).
 *
 * --e2e: after submitting, waits until no task is queued, assigned or running
 * and prints {"e2e_tasks_per_s": X, ...}: tasks / (first submit -> last one
 * ended). Run it against a node that has nothing else to do.
 *
 * Token: --token, else $GPUNODE_TOKEN. Exit status 1 when any submit failed. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench {
	const char *url, *token, *body;
	int threads;
	long count;
	bool e2e;
	char tasks_url[512];
	char auth[512];
	atomic_long next;   /* next submission index to claim */
	atomic_long ok, errors;
	atomic_int finished; /* threads that have returned */
	pthread_mutex_t mu; /* guards first_error and t_end */
	double t_end;       /* when the last submit thread finished (mono_s) */
	char first_error[512];
};

/* Collects a response body (for errors and for the --e2e polls). */
struct buf {
	char data[4096];
	size_t len;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb, room = sizeof b->data - 1 - b->len;
	memcpy(b->data + b->len, ptr, n < room ? n : room);
	b->len += n < room ? n : room;
	b->data[b->len] = '\0';
	return n;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note_error(struct bench *b, const char *what)
{
	pthread_mutex_lock(&b->mu);
	if (b->first_error[0] == '\0')
		snprintf(b->first_error, sizeof b->first_error, "%s", what);
	pthread_mutex_unlock(&b->mu);
}

static CURL *easy_new(const struct bench *b, struct curl_slist *headers, struct buf *out)
{
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	(void)b;
	return c;
}

static struct curl_slist *headers_new(const struct bench *b, bool json)
{
	struct curl_slist *h = curl_slist_append(NULL, b->auth);
	if (json)
		h = curl_slist_append(h, "Content-Type: application/json");
	/* curl adds "Expect: 100-continue" to larger POSTs: a round trip we do not want. */
	return curl_slist_append(h, "Expect:");
}

static void *submit_thread(void *arg)
{
	struct bench *b = arg;
	struct buf out = {0};
	struct curl_slist *headers = headers_new(b, true);
	CURL *c = easy_new(b, headers, &out);
	if (!c) {
		note_error(b, "curl_easy_init failed");
		curl_slist_free_all(headers);
		atomic_fetch_add(&b->finished, 1);
		return NULL;
	}
	curl_easy_setopt(c, CURLOPT_URL, b->tasks_url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, b->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(b->body));

	while (atomic_fetch_add(&b->next, 1) < b->count) {
		out.len = 0;
		CURLcode rc = curl_easy_perform(c);
		long status = 0;
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (rc == CURLE_OK && status == 201) {
			atomic_fetch_add(&b->ok, 1);
			continue;
		}
		atomic_fetch_add(&b->errors, 1);
		char msg[512];
		if (rc != CURLE_OK)
			snprintf(msg, sizeof msg, "transport: %s", curl_easy_strerror(rc));
		else
			snprintf(msg, sizeof msg, "HTTP %ld: %.400s", status, out.data);
		note_error(b, msg);
	}
	double t = mono_s();
	pthread_mutex_lock(&b->mu);
	if (t > b->t_end)
		b->t_end = t;
	pthread_mutex_unlock(&b->mu);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	atomic_fetch_add(&b->finished, 1);
	return NULL;
}

/* GET url; returns the status (0 on a transport error), body in out. */
static long get(CURL *c, const char *url, struct buf *out)
{
	out->len = 0;
	out->data[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* True when the list of tasks in `state` is empty; -1 on an error. */
static int state_empty(CURL *c, const struct bench *b, const char *state, struct buf *out)
{
	char url[600];
	snprintf(url, sizeof url, "%s?state=%s&limit=1", b->tasks_url, state);
	long status = get(c, url, out);
	if (status != 200) {
		fprintf(stderr, "bench_api: GET %s: HTTP %ld %.300s\n", url, status, out->data);
		return -1;
	}
	/* {"tasks":[],...}: an empty list has no object in it. */
	const char *t = strstr(out->data, "\"tasks\"");
	if (!t)
		return -1;
	t = strchr(t, '[');
	if (!t)
		return -1;
	t++;
	while (*t == ' ' || *t == '\n' || *t == '\t' || *t == '\r')
		t++;
	return *t == ']';
}

/* Counts the tasks in `state` by walking the pages. Returns -1 on an error. */
static long count_state(CURL *c, const struct bench *b, const char *state)
{
	long total = 0;
	char before[64] = "";
	for (;;) {
		char url[700];
		snprintf(url, sizeof url, "%s?state=%s&limit=1000%s%s", b->tasks_url, state, before[0] ? "&before=" : "",
			 before);
		/* Stream the page into a growing buffer. */
		char *page = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&page, &len);
		if (!f)
			return -1;
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL); /* default: fwrite to WRITEDATA */
		curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
		long status = 0;
		CURLcode rc = curl_easy_perform(c);
		fclose(f);
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200) {
			fprintf(stderr, "bench_api: GET %s: HTTP %ld\n", url, status);
			free(page);
			return -1;
		}
		/* Each task object has exactly one "id" key whose value is a 20-hex id. */
		long n = 0;
		for (const char *p = page; (p = strstr(p, "\"id\":")) != NULL; p += 5)
			n++;
		total += n;
		const char *nx = strstr(page, "\"next\":");
		before[0] = '\0';
		if (nx) {
			nx += 7;
			while (*nx == ' ')
				nx++;
			if (*nx == '"')
				snprintf(before, sizeof before, "%.20s", nx + 1);
		}
		free(page);
		if (n == 0 || before[0] == '\0')
			break;
	}
	return total;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_api --url URL --token TOKEN [--threads N] [--count N] [--body JSON] [--e2e]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct bench b = {.url = "http://127.0.0.1:7070", .threads = 8, .count = 20000,
			  .body = "{\"command\":[\"true\"]}"};
	b.token = getenv("GPUNODE_TOKEN");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (strcmp(a, "--url") == 0 && has_val)
			b.url = argv[++i];
		else if (strcmp(a, "--token") == 0 && has_val)
			b.token = argv[++i];
		else if (strcmp(a, "--threads") == 0 && has_val)
			b.threads = atoi(argv[++i]);
		else if (strcmp(a, "--count") == 0 && has_val)
			b.count = atol(argv[++i]);
		else if (strcmp(a, "--body") == 0 && has_val)
			b.body = argv[++i];
		else if (strcmp(a, "--e2e") == 0)
			b.e2e = true;
		else
			return usage();
	}
	if (!b.token || !*b.token || b.threads < 1 || b.threads > 1024 || b.count < 1)
		return usage();
	snprintf(b.tasks_url, sizeof b.tasks_url, "%s/v1/tasks", b.url);
	snprintf(b.auth, sizeof b.auth, "Authorization: Bearer %s", b.token);
	pthread_mutex_init(&b.mu, NULL);
	atomic_init(&b.next, 0);
	atomic_init(&b.ok, 0);
	atomic_init(&b.errors, 0);
	atomic_init(&b.finished, 0);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "bench_api: curl_global_init failed\n");
		return 1;
	}

	pthread_t *tids = calloc((size_t)b.threads, sizeof *tids);
	if (!tids)
		return 1;
	double t0 = mono_s();
	int started = 0;
	for (int i = 0; i < b.threads; i++) {
		int rc = pthread_create(&tids[i], NULL, submit_thread, &b);
		if (rc != 0) {
			fprintf(stderr, "bench_api: pthread_create: %s\n", strerror(rc));
			break;
		}
		started++;
	}
	/* Progress on stderr for long runs. */
	double last_report = t0;
	while (atomic_load(&b.finished) < started) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		double now = mono_s();
		if (now - last_report >= 2.0) {
			fprintf(stderr, "bench_api: %ld/%ld submitted, %ld errors\n", atomic_load(&b.ok), b.count,
				atomic_load(&b.errors));
			last_report = now;
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	double t_submitted = b.t_end > 0 ? b.t_end : mono_s();
	free(tids);

	long ok = atomic_load(&b.ok), errors = atomic_load(&b.errors);
	if (started < b.threads)
		errors += 1;
	if (b.first_error[0])
		fprintf(stderr, "bench_api: %ld errors; first: %s\n", errors, b.first_error);
	double submit_s = t_submitted - t0;

	if (!b.e2e) {
		printf("{\"api_submits_per_s\": %.1f, \"api_submits\": %ld, \"api_errors\": %ld, \"threads\": %d, "
		       "\"api_submit_seconds\": %.3f}\n",
		       submit_s > 0 ? (double)ok / submit_s : 0.0, ok, errors, b.threads, submit_s);
		curl_global_cleanup();
		return errors ? 1 : 0;
	}

	/* --e2e: poll until nothing is queued, assigned or running. */
	struct buf out = {0};
	struct curl_slist *headers = headers_new(&b, false);
	CURL *c = easy_new(&b, headers, &out);
	if (!c)
		return 1;
	static const char *const live[] = {"queued", "assigned", "running"};
	double t_done = 0, deadline = mono_s() + 600;
	int failed = 0;
	while (!t_done) {
		int empty = 0;
		for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
			int r = state_empty(c, &b, live[i], &out);
			if (r < 0) {
				failed = 1;
				break;
			}
			if (!r)
				break;
			empty++;
		}
		if (failed)
			break;
		if (empty == 3) {
			t_done = mono_s();
			break;
		}
		if (mono_s() > deadline) {
			fprintf(stderr, "bench_api: tasks still live after 600 s\n");
			failed = 1;
			break;
		}
		struct timespec ts = {0, 10 * 1000 * 1000}; /* 10 ms: polling must not load the node */
		nanosleep(&ts, NULL);
	}
	long succeeded = failed ? -1 : count_state(c, &b, "succeeded");
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	if (failed)
		return 1;
	double total_s = t_done - t0;
	printf("{\"e2e_tasks_per_s\": %.1f, \"e2e_tasks\": %ld, \"e2e_succeeded\": %ld, \"e2e_errors\": %ld, "
	       "\"e2e_submit_seconds\": %.3f, \"e2e_seconds\": %.3f}\n",
	       total_s > 0 ? (double)ok / total_s : 0.0, ok, succeeded, errors, submit_s, total_s);
	return (errors || succeeded != ok) ? 1 : 0;
}
