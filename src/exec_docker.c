/* exec_docker.c — the Docker backend's vtable (exec_docker.h): image
 * preparation, the run list, stop graces and timeouts, usage sampling. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec_docker_impl.h"
#include "util.h"

/* Usage is sampled from the cgroup this often while tasks run. */
#define USAGE_SAMPLE_MS 200

static struct docker_backend *as_docker(struct exec_backend *b)
{
	return (struct docker_backend *)b;
}

/* --- prepare: the image --- */

static bool image_present(struct docker_backend *b, const char *image, struct err *e)
{
	char esc[600], path[700];
	docker_url_escape(image, esc, sizeof esc);
	snprintf(path, sizeof path, "/images/%s/json", esc);
	struct docker_response r;
	if (docker_call(b->socket, "GET", path, NULL, 10000, &r, e) < 0)
		return false;
	bool ok = r.status == 200;
	docker_response_free(&r);
	return ok;
}

struct pull_progress {
	int log_fd;
	char last_error[256];
	struct strbuf_line {
		char buf[4096];
		size_t len;
	} line;
};

/* One line of the pull's JSON progress: status lines go to the task's log
 * (that is the progress a user sees), the error is kept. */
static void pull_line(struct pull_progress *p, const char *line)
{
	json_t *j = json_loads(line, 0, NULL);
	const char *err = json_string_value(json_object_get(j, "error"));
	if (!err) /* a refusal before the pull began: {"message": ...} */
		err = json_string_value(json_object_get(j, "message"));
	const char *status = json_string_value(json_object_get(j, "status"));
	const char *progress = json_string_value(json_object_get(j, "progress"));
	const char *id = json_string_value(json_object_get(j, "id"));
	if (err)
		snprintf(p->last_error, sizeof p->last_error, "%s", err);
	if (status && p->log_fd >= 0)
		dprintf(p->log_fd, "gpunode: pull %s%s%s%s%s\n", id ? id : "", id ? ": " : "", status, progress ? " " : "",
			progress ? progress : "");
	json_decref(j);
}

static bool pull_chunk(const char *data, size_t len, void *arg)
{
	struct pull_progress *p = arg;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' || p->line.len == sizeof p->line.buf - 1) {
			p->line.buf[p->line.len] = '\0';
			pull_line(p, p->line.buf);
			p->line.len = 0;
		} else {
			p->line.buf[p->line.len++] = data[i];
		}
	}
	return true;
}

/* POST /images/create for image (a tag is named, else "latest": with no
 * tag the daemon would pull every tag). */
static int pull_image(struct docker_backend *b, const struct exec_spec *s, char *why, size_t cap, struct err *e)
{
	char name[300], esc_name[700], esc_tag[200], path[1000];
	str_copy(name, sizeof name, s->image);
	const char *slash = strrchr(name, '/');
	char *colon = strrchr(name, ':');
	const char *tag = "latest";
	if (strchr(name, '@'))
		tag = NULL;
	else if (colon && (!slash || colon > slash)) {
		*colon = '\0';
		tag = colon + 1;
	}
	docker_url_escape(name, esc_name, sizeof esc_name);
	docker_url_escape(tag ? tag : "", esc_tag, sizeof esc_tag);
	snprintf(path, sizeof path, "/images/create?fromImage=%s%s%s", esc_name, tag ? "&tag=" : "", tag ? esc_tag : "");
	struct pull_progress p = {.log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)};
	if (p.log_fd >= 0)
		dprintf(p.log_fd, "gpunode: image %s is not on this host: pulling\n", s->image);
	long status = docker_stream(b->socket, "POST", path, NULL, EXEC_DOCKER_PULL_TIMEOUT_MS, pull_chunk, &p, e);
	if (p.line.len) { /* an answer without a final newline */
		p.line.buf[p.line.len] = '\0';
		pull_line(&p, p.line.buf);
	}
	if (p.log_fd >= 0)
		close(p.log_fd);
	if (status < 0)
		return snprintf(why, cap, "%s", e->msg), -1;
	if (status != 200 || p.last_error[0])
		return snprintf(why, cap, "%s", p.last_error[0] ? p.last_error : "the pull was refused"), -1;
	return 0;
}

static int docker_prepare(struct exec_backend *eb, const struct exec_spec *s, char *reason, struct err *e)
{
	struct docker_backend *b = as_docker(eb);
	if (!s->image || !s->image[0]) {
		str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_START_FAILED);
		return err_set(e, ERR_INVALID, "the docker executor runs tasks in an image: submit with --image IMAGE");
	}
	struct err pe;
	if (image_present(b, s->image, &pe))
		return 0;
	char why[300];
	if (pull_image(b, s, why, sizeof why, &pe) == 0 && image_present(b, s->image, &pe))
		return 0;
	str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_IMAGE_NOT_FOUND);
	return err_set(e, ERR_NOT_FOUND, "image %s is not on this host and could not be pulled: %s", s->image, why);
}

/* --- start --- */

static struct docker_run *find_run(struct docker_backend *b, const char *task_id)
{
	for (struct docker_run *r = b->runs; r; r = r->next)
		if (strcmp(r->task_id, task_id) == 0)
			return r;
	return NULL;
}

static void unlink_run(struct docker_backend *b, struct docker_run *r)
{
	for (struct docker_run **p = &b->runs; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			return;
		}
}

/* Removes a delivered earlier run of the same task (placed here again). */
static void forget_earlier_run(struct docker_backend *b, const char *task_id)
{
	pthread_mutex_lock(&b->mu);
	struct docker_run *old = find_run(b, task_id);
	if (old && old->delivered)
		unlink_run(b, old);
	else
		old = NULL;
	pthread_mutex_unlock(&b->mu);
	if (!old)
		return;
	if (!old->warm && old->container[0])
		docker_remove(b, old->container);
	free(old);
}

static int docker_start(struct exec_backend *eb, const struct exec_spec *s, char *reason, struct err *e)
{
	struct docker_backend *b = as_docker(eb);
	forget_earlier_run(b, s->task_id);
	struct docker_run *r = xcalloc(1, sizeof *r);
	r->b = b;
	str_copy(r->task_id, sizeof r->task_id, s->task_id);
	str_copy(r->log_path, sizeof r->log_path, s->log_path);
	r->grace_ms = s->stop_grace_ms > 0 ? s->stop_grace_ms : 5000;
	int rc = s->reuse_warm ? docker_warm_start(b, s, r, reason, e)
			       : docker_create_start(b, s, s->workdir, false, r->container, sizeof r->container, reason, e);
	if (rc < 0) {
		free(r);
		return -1;
	}
	if (s->timeout_ms > 0)
		r->timeout_at_ns = mono_ns() + s->timeout_ms * 1000000;
	pthread_mutex_lock(&b->mu);
	r->next = b->runs;
	b->runs = r;
	docker_run_watch(r);
	pthread_mutex_unlock(&b->mu);
	return 0;
}

/* --- stop, deadlines --- */

static int docker_stop(struct exec_backend *eb, const char *task_id, int grace_ms)
{
	struct docker_backend *b = as_docker(eb);
	pthread_mutex_lock(&b->mu);
	struct docker_run *r = find_run(b, task_id);
	if (r && !r->ended) {
		docker_run_signal(b, r, "SIGTERM");
		if (!r->kill_at_ns)
			r->kill_at_ns = mono_ns() + (int64_t)grace_ms * 1000000;
		if (r->warm)
			r->warm->discard = true;
	}
	pthread_mutex_unlock(&b->mu);
	return r ? 0 : -1;
}

static void earliest(int64_t *next, int64_t at, int64_t now)
{
	if (at && (*next < 0 || at - now < *next))
		*next = at - now;
}

/* Timeouts start a stop, graces that ran out SIGKILL; returns ms to the
 * next deadline, -1 for none. Lock held. */
static int enforce_deadlines(struct docker_backend *b)
{
	int64_t now = mono_ns(), next = -1;
	for (struct docker_run *r = b->runs; r; r = r->next) {
		if (r->ended)
			continue;
		if (r->timeout_at_ns && now >= r->timeout_at_ns) {
			r->timed_out = true;
			r->timeout_at_ns = 0;
			docker_run_signal(b, r, "SIGTERM");
			if (!r->kill_at_ns)
				r->kill_at_ns = now + (int64_t)r->grace_ms * 1000000;
			if (r->warm)
				r->warm->discard = true;
		}
		if (r->kill_at_ns && !r->killed && now >= r->kill_at_ns) {
			docker_run_signal(b, r, "SIGKILL");
			r->killed = true;
		}
		earliest(&next, r->timeout_at_ns, now);
		if (!r->killed)
			earliest(&next, r->kill_at_ns, now);
	}
	return next < 0 ? -1 : (int)(next / 1000000) + 1;
}

/* Reads the cgroup counters of every running run. Lock held. */
static void sample_usage(struct docker_backend *b)
{
	for (struct docker_run *r = b->runs; r; r = r->next) {
		long long cpu, peak, ooms;
		if (r->ended || docker_cgroup_read(r->container, &cpu, &peak, &ooms) < 0)
			continue;
		double secs = (double)(cpu - r->cpu_base_ns) / 1e9;
		if (secs > r->usage.cpu_seconds)
			r->usage.cpu_seconds = secs;
		if (peak > r->usage.peak_mem_bytes)
			r->usage.peak_mem_bytes = peak;
	}
}

/* Hands out one ended, undelivered run. Lock held. */
static bool take_ended(struct docker_backend *b, struct exec_exit *out)
{
	for (struct docker_run *r = b->runs; r; r = r->next) {
		if (!r->ended || r->delivered)
			continue;
		if (r->has_thread) {
			pthread_join(r->watcher, NULL); /* it has finished: ended is its last act */
			r->has_thread = false;
		}
		r->delivered = true;
		*out = r->exit;
		out->usage = r->usage;
		if (r->timed_out && !out->failure_reason[0])
			exec_exit_set_failure(out, EXEC_REASON_TIMEOUT, "stopped after its timeout");
		if (r->warm)
			docker_warm_release(b, r);
		return true;
	}
	return false;
}

static int docker_wait_exit(struct exec_backend *eb, int timeout_ms, struct exec_exit *out)
{
	struct docker_backend *b = as_docker(eb);
	int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
	pthread_mutex_lock(&b->mu);
	for (;;) {
		if (take_ended(b, out)) {
			pthread_mutex_unlock(&b->mu);
			return 1;
		}
		int deadline_ms = enforce_deadlines(b);
		sample_usage(b);
		docker_warm_expire(b, false);
		int64_t left = (end - mono_ns()) / 1000000;
		if (left <= 0)
			break;
		int wait = USAGE_SAMPLE_MS;
		if (deadline_ms >= 0 && deadline_ms < wait)
			wait = deadline_ms;
		if (left < wait)
			wait = (int)left;
		struct timespec ts;
		deadline_in_ns(&ts, (int64_t)wait * 1000000);
		pthread_cond_timedwait(&b->cv, &b->mu, &ts);
	}
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static int docker_usage(struct exec_backend *eb, const char *task_id, struct exec_usage *out)
{
	struct docker_backend *b = as_docker(eb);
	pthread_mutex_lock(&b->mu);
	sample_usage(b);
	struct docker_run *r = find_run(b, task_id);
	int rc = r && !r->ended ? 0 : -1;
	if (rc == 0)
		*out = r->usage;
	pthread_mutex_unlock(&b->mu);
	return rc;
}

/* --- cleanup, count, destroy --- */

static void docker_cleanup(struct exec_backend *eb, const char *task_id)
{
	struct docker_backend *b = as_docker(eb);
	pthread_mutex_lock(&b->mu);
	struct docker_run *r = find_run(b, task_id);
	if (r && r->delivered)
		unlink_run(b, r);
	else
		r = NULL;
	pthread_mutex_unlock(&b->mu);
	if (!r)
		return;
	if (!r->warm && r->container[0]) /* a warm run's container outlives it */
		docker_remove(b, r->container);
	free(r);
}

static int docker_running(struct exec_backend *eb)
{
	struct docker_backend *b = as_docker(eb);
	int n = 0;
	pthread_mutex_lock(&b->mu);
	for (struct docker_run *r = b->runs; r; r = r->next)
		n += !r->ended;
	pthread_mutex_unlock(&b->mu);
	return n;
}

/* Removes every container it runs (the node requeues their tasks), then
 * waits for the watchers, whose streams end with their containers. */
static void docker_destroy(struct exec_backend *eb)
{
	struct docker_backend *b = as_docker(eb);
	pthread_mutex_lock(&b->mu);
	struct docker_run *runs = b->runs;
	b->runs = NULL;
	pthread_mutex_unlock(&b->mu);
	for (struct docker_run *r = runs; r; r = r->next)
		if (!r->warm && r->container[0])
			docker_remove(b, r->container);
	pthread_mutex_lock(&b->mu);
	docker_warm_expire(b, true);
	pthread_mutex_unlock(&b->mu);
	while (runs) {
		struct docker_run *r = runs;
		runs = r->next;
		if (r->has_thread)
			pthread_join(r->watcher, NULL);
		free(r);
	}
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

struct exec_backend *exec_docker_new(const char *socket, const char *host, const char *state_dir, struct err *e)
{
	struct docker_response r;
	if (docker_call(socket, "GET", "/_ping", NULL, 3000, &r, e) < 0)
		return NULL;
	long status = r.status;
	docker_response_free(&r);
	if (status != 200) {
		err_set(e, ERR_UNAVAILABLE, "docker on %s answers /_ping with HTTP %ld", socket, status);
		return NULL;
	}
	struct docker_backend *b = xcalloc(1, sizeof *b);
	str_copy(b->socket, sizeof b->socket, socket);
	str_copy(b->host, sizeof b->host, host);
	str_copy(b->state_dir, sizeof b->state_dir, state_dir);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->base = (struct exec_backend){
		.name = "docker",
		.prepare = docker_prepare,
		.start = docker_start,
		.stop = docker_stop,
		.wait_exit = docker_wait_exit,
		.usage = docker_usage,
		.cleanup = docker_cleanup,
		.adopt = docker_adopt,
		.running = docker_running,
		.destroy = docker_destroy,
	};
	return &b->base;
}
