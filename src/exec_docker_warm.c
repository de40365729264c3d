/* exec_docker_warm.c — per-client warm containers (exec_docker.h). A warm
 * container idles in a shell loop; each task runs in it through the exec
 * API. Its key holds the client first, so two clients never meet in one;
 * the rest of the key (image, limits, network, GPU devices) is what its
 * creation fixed and a task could not change afterwards. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec_docker_impl.h"
#include "util.h"

/* An idle warm container of this key, marked busy; NULL when none. */
static struct docker_warm *take_idle(struct docker_backend *b, const char *key)
{
	pthread_mutex_lock(&b->mu);
	struct docker_warm *w = b->warms;
	while (w && (w->busy || w->discard || strcmp(w->key, key) != 0))
		w = w->next;
	if (w)
		w->busy = true;
	pthread_mutex_unlock(&b->mu);
	return w;
}

static struct docker_warm *make_warm(struct docker_backend *b, const struct exec_spec *s, const char *key,
				     char *reason, struct err *e)
{
	struct docker_warm *w = xcalloc(1, sizeof *w);
	str_copy(w->key, sizeof w->key, key);
	pthread_mutex_lock(&b->mu);
	unsigned seq = ++b->warm_seq;
	pthread_mutex_unlock(&b->mu);
	char warm_dir[600];
	snprintf(warm_dir, sizeof warm_dir, "%s/warm", b->state_dir);
	snprintf(w->scratch, sizeof w->scratch, "%s/%u-%lld", warm_dir, seq, (long long)now_ms());
	if ((mkdir(warm_dir, 0700) < 0 && errno != EEXIST) || mkdir(w->scratch, 0700) < 0) {
		str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_START_FAILED);
		err_set(e, ERR_INTERNAL, "cannot create %s: %s", w->scratch, strerror(errno));
		free(w);
		return NULL;
	}
	if (docker_create_start(b, s, w->scratch, true, w->container, sizeof w->container, reason, e) < 0) {
		rmdir(w->scratch);
		free(w);
		return NULL;
	}
	w->busy = true;
	pthread_mutex_lock(&b->mu);
	w->next = b->warms;
	b->warms = w;
	pthread_mutex_unlock(&b->mu);
	return w;
}

/* POST /containers/ID/exec: the task's command, env and cwd. */
static int create_exec(struct docker_backend *b, const struct exec_spec *s, const char *container, char *id,
		       size_t cap, struct err *e)
{
	json_t *cmd = json_array();
	for (int i = 0; i < s->argc; i++)
		json_array_append_new(cmd, json_string(s->argv[i]));
	json_t *body = json_pack("{s:b, s:b, s:b, s:o, s:o, s:s}", "AttachStdin", 0, "AttachStdout", 1, "AttachStderr", 1,
				 "Cmd", cmd, "Env", exec_docker_env(s), "WorkingDir", EXEC_DOCKER_WORKDIR);
	char path[200], msg[300];
	snprintf(path, sizeof path, "/containers/%s/exec", container);
	struct docker_response r;
	int rc = docker_call(b->socket, "POST", path, body, 30000, &r, e);
	json_decref(body);
	if (rc < 0)
		return -1;
	long status = r.status;
	docker_error_text(&r, msg, sizeof msg);
	if (status == 201)
		str_copy(id, cap, json_string_value(json_object_get(r.json, "Id")));
	docker_response_free(&r);
	return status == 201 ? 0 : err_set(e, ERR_INVALID, "docker exec: %s", msg);
}

int docker_warm_start(struct docker_backend *b, const struct exec_spec *s, struct docker_run *r, char *reason,
		      struct err *e)
{
	char key[1024];
	exec_warm_key(s, key, sizeof key);
	struct docker_warm *w = take_idle(b, key);
	bool reused = w != NULL;
	if (!w && !(w = make_warm(b, s, key, reason, e)))
		return -1;
	long long cpu = 0, peak, ooms = 0;
	docker_cgroup_reset_peak(w->container);
	docker_cgroup_read(w->container, &cpu, &peak, &ooms);
	if (create_exec(b, s, w->container, r->exec_id, sizeof r->exec_id, e) < 0) {
		str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_START_FAILED);
		pthread_mutex_lock(&b->mu);
		w->discard = true;
		w->busy = false;
		pthread_mutex_unlock(&b->mu);
		return -1;
	}
	r->warm = w;
	r->cpu_base_ns = cpu > 0 ? cpu : 0;
	r->oom_base = ooms > 0 ? ooms : 0;
	str_copy(r->container, sizeof r->container, w->container);
	log_msg("info", "docker", "task=%s runs in %s warm container %.12s of client %s", s->task_id,
		reused ? "the" : "a new", w->container, s->client ? s->client : "");
	return 0;
}

static void unlink_warm(struct docker_backend *b, struct docker_warm *w)
{
	for (struct docker_warm **p = &b->warms; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

static void drop_warm(struct docker_backend *b, struct docker_warm *w)
{
	unlink_warm(b, w);
	docker_remove(b, w->container);
	exec_wipe_scratch(w->scratch);
	rmdir(w->scratch);
	free(w);
}

void docker_warm_release(struct docker_backend *b, struct docker_run *r)
{
	struct docker_warm *w = r->warm;
	r->warm = NULL; /* the run no longer points at a container it may outlive */
	r->container[0] = '\0';
	/* A stopped or OOM-killed task may have left processes or a full
	 * cgroup behind: that container is not handed to the next task. */
	if (w->discard || r->exit.failure_reason[0]) {
		drop_warm(b, w);
		return;
	}
	exec_wipe_scratch(w->scratch);
	w->busy = false;
	w->idle_since_ms = now_ms();
}

void docker_warm_expire(struct docker_backend *b, bool everything)
{
	int64_t now = now_ms();
	for (struct docker_warm *w = b->warms, *next; w; w = next) {
		next = w->next;
		if (everything || (w->discard && !w->busy) ||
		    (!w->busy && now - w->idle_since_ms > EXEC_DOCKER_WARM_IDLE_MS))
			drop_warm(b, w);
	}
}
