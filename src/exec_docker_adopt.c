/* exec_docker_adopt.c — after an agent restart: the containers labelled for
 * this host are the truth. Running ones of known tasks are watched again
 * (their output continues the log where it stopped), exited ones give their
 * exit, and everything else labelled for this host (orphans of tasks the
 * agent no longer holds, warm containers) is removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exec_docker_impl.h"
#include "util.h"

static struct exec_adopt *find_wanted(struct exec_adopt *runs, int n, const char *task_id)
{
	for (int i = 0; task_id && i < n; i++)
		if (strcmp(runs[i].task_id, task_id) == 0)
			return &runs[i];
	return NULL;
}

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* Takes one container of a task the agent holds back into the run list. */
static void adopt_container(struct docker_backend *b, const char *id, bool running, struct exec_adopt *want)
{
	struct docker_run *r = xcalloc(1, sizeof *r);
	r->b = b;
	str_copy(r->task_id, sizeof r->task_id, want->task_id);
	str_copy(r->container, sizeof r->container, id);
	str_copy(r->log_path, sizeof r->log_path, want->log_path);
	r->skip_bytes = file_size(want->log_path);
	r->grace_ms = 5000;
	if (running) {
		want->state = EXEC_ADOPT_RUNNING;
	} else {
		docker_run_follow_to_end(r); /* the output it wrote while nobody listened */
		r->ended = r->delivered = true;
		want->exit = r->exit;
		want->state = EXEC_ADOPT_EXITED;
	}
	pthread_mutex_lock(&b->mu);
	r->next = b->runs;
	b->runs = r;
	if (running)
		docker_run_watch(r);
	pthread_mutex_unlock(&b->mu);
}

static json_t *list_host_containers(struct docker_backend *b, const char *host, struct err *e)
{
	char filter[300], esc[900], path[1000];
	json_t *f = json_pack("{s:[s+]}", "label", "gpunode.host=", host);
	char *dumped = json_dumps(f, JSON_COMPACT);
	json_decref(f);
	str_copy(filter, sizeof filter, dumped);
	free(dumped);
	docker_url_escape(filter, esc, sizeof esc);
	snprintf(path, sizeof path, "/containers/json?all=1&filters=%s", esc);
	struct docker_response r;
	if (docker_call(b->socket, "GET", path, NULL, 30000, &r, e) < 0)
		return NULL;
	json_t *list = r.status == 200 && json_is_array(r.json) ? json_incref(r.json) : NULL;
	if (!list)
		err_set(e, ERR_UNAVAILABLE, "docker: listing containers: HTTP %ld", r.status);
	docker_response_free(&r);
	return list;
}

int docker_adopt(struct exec_backend *eb, const char *host, struct exec_adopt *runs, int n, struct err *e)
{
	struct docker_backend *b = (struct docker_backend *)eb;
	for (int i = 0; i < n; i++)
		runs[i].state = EXEC_ADOPT_GONE;
	json_t *list = list_host_containers(b, host, e);
	if (!list)
		return -1;
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c) {
		const char *id = json_string_value(json_object_get(c, "Id"));
		json_t *labels = json_object_get(c, "Labels");
		const char *task = json_string_value(json_object_get(labels, "gpunode.task"));
		bool warm = json_object_get(labels, "gpunode.warm") != NULL;
		const char *state = json_string_value(json_object_get(c, "State"));
		struct exec_adopt *want = warm ? NULL : find_wanted(runs, n, task);
		if (!id)
			continue;
		if (want && want->state == EXEC_ADOPT_GONE && state && strcmp(state, "created") != 0) {
			adopt_container(b, id, strcmp(state, "running") == 0 || strcmp(state, "paused") == 0, want);
		} else {
			log_msg("info", "docker", "removing orphan container %.12s (task %s)", id, task && *task ? task : "-");
			docker_remove(b, id);
		}
	}
	json_decref(list);
	return 0;
}
