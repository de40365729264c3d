/* exec_docker_run.c — one container's life: create, start, the watcher that
 * copies its output into the task's log and reads its end, signals, removal,
 * and its cgroup counters. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec_docker_impl.h"
#include "util.h"

void docker_container_name(const char *host, const char *suffix, char *out, size_t cap)
{
	/* Container names allow [a-zA-Z0-9_.-]: anything else in a host name
	 * becomes '_' (the labels keep the exact name). */
	char h[TASK_HOST_MAX];
	str_copy(h, sizeof h, host);
	for (char *p = h; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p))
			*p = '_';
	snprintf(out, cap, "gpunode-%s-%s", h, suffix);
}

void docker_remove(struct docker_backend *b, const char *container)
{
	char path[200];
	struct docker_response r;
	struct err e;
	snprintf(path, sizeof path, "/containers/%s?force=1&v=1", container);
	if (docker_call(b->socket, "DELETE", path, NULL, 30000, &r, &e) == 0)
		docker_response_free(&r);
}

/* The network of tasks that ask for one; made once, on first use. */
static int ensure_network(struct docker_backend *b, struct err *e)
{
	struct docker_response r;
	if (docker_call(b->socket, "GET", "/networks/" EXEC_DOCKER_NETWORK, NULL, 10000, &r, e) < 0)
		return -1;
	long status = r.status;
	docker_response_free(&r);
	if (status == 200)
		return 0;
	json_t *body = json_pack("{s:s, s:s, s:b}", "Name", EXEC_DOCKER_NETWORK, "Driver", "bridge", "CheckDuplicate", 1);
	int rc = docker_call(b->socket, "POST", "/networks/create", body, 30000, &r, e);
	json_decref(body);
	if (rc < 0)
		return -1;
	char msg[300];
	status = r.status;
	docker_error_text(&r, msg, sizeof msg);
	docker_response_free(&r);
	if (status != 201 && status != 409)
		return err_set(e, ERR_INTERNAL, "cannot create the docker network %s: %s", EXEC_DOCKER_NETWORK, msg);
	return 0;
}

/* POST /containers/create; a leftover of the same name (an earlier run of
 * the task on this host) is removed and the create tried once more. */
static int create_container(struct docker_backend *b, const char *name, json_t *body, char *id, size_t cap,
			    char *reason, struct err *e)
{
	char path[200], msg[400];
	snprintf(path, sizeof path, "/containers/create?name=%s", name);
	for (int attempt = 0;; attempt++) {
		struct docker_response r;
		if (docker_call(b->socket, "POST", path, body, 60000, &r, e) < 0)
			return -1;
		long status = r.status;
		docker_error_text(&r, msg, sizeof msg);
		if (status == 201)
			str_copy(id, cap, json_string_value(json_object_get(r.json, "Id")));
		docker_response_free(&r);
		if (status == 201)
			return 0;
		if (status == 409 && attempt == 0) {
			docker_remove(b, name);
			continue;
		}
		if (status == 404)
			str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_IMAGE_NOT_FOUND);
		return err_set(e, status == 404 ? ERR_NOT_FOUND : ERR_INVALID, "docker create: %s", msg);
	}
}

static int start_container(struct docker_backend *b, const char *id, struct err *e)
{
	char path[200], msg[400];
	snprintf(path, sizeof path, "/containers/%s/start", id);
	struct docker_response r;
	if (docker_call(b->socket, "POST", path, NULL, 60000, &r, e) < 0)
		return -1;
	long status = r.status;
	docker_error_text(&r, msg, sizeof msg);
	docker_response_free(&r);
	if (status != 204 && status != 304)
		return err_set(e, ERR_INVALID, "docker start: %s", msg);
	return 0;
}

int docker_create_start(struct docker_backend *b, const struct exec_spec *s, const char *scratch, bool warm,
			char *id, size_t cap, char *reason, struct err *e)
{
	str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_START_FAILED);
	if (s->network && ensure_network(b, e) < 0)
		return -1;
	char name[160], suffix[64];
	if (warm)
		snprintf(suffix, sizeof suffix, "warm-%d-%u", (int)getpid(), ++b->warm_seq);
	docker_container_name(s->host, warm ? suffix : s->task_id, name, sizeof name);
	json_t *body = exec_docker_create_body(s, scratch, warm);
	int rc = create_container(b, name, body, id, cap, reason, e);
	json_decref(body);
	if (rc < 0)
		return -1;
	if (start_container(b, id, e) < 0) {
		docker_remove(b, id);
		return -1;
	}
	return 0;
}

/* A warm run is a process inside a shared container: it is signalled
 * directly, by its host pid, so the container (and its next tasks) live on. */
static void signal_exec(struct docker_backend *b, struct docker_run *r, const char *signal)
{
	char path[200];
	snprintf(path, sizeof path, "/exec/%s/json", r->exec_id);
	struct docker_response resp;
	struct err e;
	if (docker_call(b->socket, "GET", path, NULL, 10000, &resp, &e) < 0)
		return;
	json_int_t pid = json_integer_value(json_object_get(resp.json, "Pid"));
	if (pid > 1 && json_is_true(json_object_get(resp.json, "Running")))
		kill((pid_t)pid, strcmp(signal, "SIGKILL") == 0 ? SIGKILL : SIGTERM);
	docker_response_free(&resp);
}

void docker_run_signal(struct docker_backend *b, struct docker_run *r, const char *signal)
{
	if (r->warm) {
		signal_exec(b, r, signal);
		return;
	}
	char path[200];
	snprintf(path, sizeof path, "/containers/%s/kill?signal=%s", r->container, signal);
	struct docker_response resp;
	struct err e;
	if (docker_call(b->socket, "POST", path, NULL, 10000, &resp, &e) == 0)
		docker_response_free(&resp);
}

/* --- the watcher --- */

struct log_sink {
	int fd;
	long long skip; /* payload bytes already in the log (adopted runs) */
	struct docker_demux demux;
};

static void sink_payload(const char *data, size_t len, void *arg)
{
	struct log_sink *k = arg;
	if (k->skip > 0) {
		size_t drop = (long long)len < k->skip ? len : (size_t)k->skip;
		k->skip -= (long long)drop;
		data += drop;
		len -= drop;
	}
	while (len > 0) {
		ssize_t n = write(k->fd, data, len);
		if (n <= 0 && errno != EINTR)
			return; /* a full disk loses output, never the run */
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
	}
}

static bool sink_chunk(const char *data, size_t len, void *arg)
{
	struct log_sink *k = arg;
	docker_demux_feed(&k->demux, data, len, sink_payload, k);
	return true;
}

/* Copies the run's output into its log until the stream ends (the
 * container or the exec ended). */
static void follow_output(struct docker_run *r)
{
	struct log_sink k = {.fd = open(r->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640),
			     .skip = r->skip_bytes};
	struct err e;
	char path[300];
	if (k.fd < 0)
		return;
	if (r->warm) {
		snprintf(path, sizeof path, "/exec/%s/start", r->exec_id);
		json_t *body = json_pack("{s:b, s:b}", "Detach", 0, "Tty", 0);
		docker_stream(r->b->socket, "POST", path, body, 0, sink_chunk, &k, &e);
		json_decref(body);
	} else {
		snprintf(path, sizeof path, "/containers/%s/logs?follow=1&stdout=1&stderr=1", r->container);
		docker_stream(r->b->socket, "GET", path, NULL, 0, sink_chunk, &k, &e);
	}
	close(k.fd);
}

static void exit_from_code(struct exec_exit *x, int code)
{
	x->exit_code = code;
	x->signal = code > 128 && code < 128 + 65 ? code - 128 : 0;
}

/* The container's end: POST wait blocks until it stopped (the log stream
 * may end early on an error), then inspect tells whether the OOM killer
 * did it. */
static void read_container_end(struct docker_run *r)
{
	char path[200];
	struct docker_response resp;
	struct err e;
	snprintf(path, sizeof path, "/containers/%s/wait", r->container);
	int code = -1;
	if (docker_call(r->b->socket, "POST", path, NULL, 0, &resp, &e) == 0) {
		if (resp.status == 200)
			code = (int)json_integer_value(json_object_get(resp.json, "StatusCode"));
		docker_response_free(&resp);
	}
	snprintf(path, sizeof path, "/containers/%s/json", r->container);
	bool oom = false;
	if (docker_call(r->b->socket, "GET", path, NULL, 10000, &resp, &e) == 0) {
		json_t *state = json_object_get(resp.json, "State");
		oom = json_is_true(json_object_get(state, "OOMKilled"));
		if (code < 0 && json_is_integer(json_object_get(state, "ExitCode")))
			code = (int)json_integer_value(json_object_get(state, "ExitCode"));
		docker_response_free(&resp);
	}
	if (code < 0) {
		exit_from_code(&r->exit, 137);
		exec_exit_set_failure(&r->exit, "lost", "the container vanished before its exit code was read");
		return;
	}
	exit_from_code(&r->exit, code);
	if (oom)
		exec_exit_set_failure(&r->exit, EXEC_REASON_OOM, "killed by the OOM killer: it went over its memory limit");
}

/* A warm run's end: the exec's exit code, and the container's OOM-kill
 * counter against its value when the task began. */
static void read_exec_end(struct docker_run *r)
{
	char path[200];
	struct docker_response resp;
	struct err e;
	snprintf(path, sizeof path, "/exec/%s/json", r->exec_id);
	int code = 137;
	if (docker_call(r->b->socket, "GET", path, NULL, 10000, &resp, &e) == 0) {
		json_t *c = json_object_get(resp.json, "ExitCode");
		if (json_is_integer(c))
			code = (int)json_integer_value(c);
		docker_response_free(&resp);
	}
	exit_from_code(&r->exit, code);
	long long cpu, peak, ooms;
	if (docker_cgroup_read(r->container, &cpu, &peak, &ooms) == 0 && ooms > r->oom_base)
		exec_exit_set_failure(&r->exit, EXEC_REASON_OOM, "killed by the OOM killer: it went over its memory limit");
}

/* One last reading as the output ends: the cgroup may still be there, and
 * a task shorter than the sampling period would otherwise show no usage. */
static void sample_last(struct docker_run *r)
{
	long long cpu, peak, ooms;
	if (docker_cgroup_read(r->container, &cpu, &peak, &ooms) < 0)
		return;
	pthread_mutex_lock(&r->b->mu);
	double secs = (double)(cpu - r->cpu_base_ns) / 1e9;
	if (secs > r->usage.cpu_seconds)
		r->usage.cpu_seconds = secs;
	if (peak > r->usage.peak_mem_bytes)
		r->usage.peak_mem_bytes = peak;
	pthread_mutex_unlock(&r->b->mu);
}

void docker_run_follow_to_end(struct docker_run *r)
{
	follow_output(r);
	sample_last(r);
	if (r->warm)
		read_exec_end(r);
	else
		read_container_end(r);
	str_copy(r->exit.task_id, sizeof r->exit.task_id, r->task_id);
}

static void *watcher_main(void *arg)
{
	struct docker_run *r = arg;
	docker_run_follow_to_end(r);
	pthread_mutex_lock(&r->b->mu);
	r->ended = true;
	pthread_cond_broadcast(&r->b->cv);
	pthread_mutex_unlock(&r->b->mu);
	return NULL;
}

void docker_run_watch(struct docker_run *r)
{
	r->has_thread = pthread_create(&r->watcher, NULL, watcher_main, r) == 0;
	if (!r->has_thread) {
		exec_exit_set_failure(&r->exit, "lost", "no thread to watch the container");
		r->ended = true;
	}
}

/* --- cgroup counters --- */

static long long read_number(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long long v = -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* "key value" lines (memory.oom_control, memory.events, cpu.stat). */
static long long read_keyed(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char k[64];
	long long v, found = -1;
	while (fscanf(f, "%63s %lld", k, &v) == 2)
		if (strcmp(k, key) == 0)
			found = v;
	fclose(f);
	return found;
}

/* cgroup v1 (cgroupfs driver: /docker/ID under each controller) first,
 * then the unified hierarchy. */
int docker_cgroup_read(const char *container, long long *cpu_ns, long long *peak_bytes, long long *oom_kills)
{
	char p[400];
	snprintf(p, sizeof p, "/sys/fs/cgroup/memory/docker/%s/memory.max_usage_in_bytes", container);
	if ((*peak_bytes = read_number(p)) >= 0) {
		snprintf(p, sizeof p, "/sys/fs/cgroup/cpuacct/docker/%s/cpuacct.usage", container);
		*cpu_ns = read_number(p);
		snprintf(p, sizeof p, "/sys/fs/cgroup/memory/docker/%s/memory.oom_control", container);
		*oom_kills = read_keyed(p, "oom_kill");
		return 0;
	}
	snprintf(p, sizeof p, "/sys/fs/cgroup/docker/%s/memory.peak", container);
	if ((*peak_bytes = read_number(p)) < 0)
		return -1;
	snprintf(p, sizeof p, "/sys/fs/cgroup/docker/%s/cpu.stat", container);
	long long usec = read_keyed(p, "usage_usec");
	*cpu_ns = usec >= 0 ? usec * 1000 : -1;
	snprintf(p, sizeof p, "/sys/fs/cgroup/docker/%s/memory.events", container);
	*oom_kills = read_keyed(p, "oom_kill");
	return 0;
}

void docker_cgroup_reset_peak(const char *container)
{
	char p[400];
	snprintf(p, sizeof p, "/sys/fs/cgroup/memory/docker/%s/memory.max_usage_in_bytes", container);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "0", 1) < 0) {
		/* the counter then spans the container's life: an over-estimate */
	}
	close(fd);
}
