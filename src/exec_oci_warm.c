/* exec_oci_warm.c — per-client warm containers of the OCI backend, as the
 * Docker backend's (exec_docker_warm.c): a warm container's init idles in a
 * shell loop, each run of a task that set reuse_warm is exec'd in it
 * (`RUNTIME exec --process`, the same capabilities and no_new_privs as a
 * container of its own) by a shim of its own, which is its subreaper and
 * leaves its exit in the run's dir (BUNDLES/ID) like any run. One run at a
 * time; its scratch dir (/work, BUNDLE/scratch) is emptied between two.
 * The key holds the client first, so two clients never meet in one; the
 * rest (image, limits, network, GPU devices) is what its creation fixed and
 * a run could not change. A run that was stopped or failed (timeout, OOM)
 * may leave processes or a full cgroup behind: its container is removed,
 * as is one idle past warm_idle_ms. After an agent restart the warm
 * containers and their runs are removed (STATE/oci/warm). */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci_backend.h"
#include "image_store.h"
#include "image_store_fs.h"
#include "util.h"

/* Keeps the container alive doing nothing, and lets it stop at once. */
static char *const idle_argv[] = {"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done",
				  NULL};

/* An idle warm container of this key, marked busy; NULL when none. A
 * container whose init died meanwhile is left for expire to remove. */
static struct oci_warm *take_idle(struct oci_backend *o, const char *key)
{
	pthread_mutex_lock(&o->mu);
	struct oci_warm *w = o->warms;
	while (w && (w->busy || w->discard || strcmp(w->key, key) != 0))
		w = w->next;
	if (w)
		w->busy = true;
	pthread_mutex_unlock(&o->mu);
	return w;
}

/* Creates a warm container for s: its own bundle, the idle loop as init,
 * the task's image, limits, network and GPU devices, none of its env. */
static struct oci_warm *make_warm(struct oci_backend *o, const struct exec_spec *s, const char *key,
				  const struct image *img, struct err *e)
{
	struct oci_warm *w = xcalloc(1, sizeof *w);
	str_copy(w->key, sizeof w->key, key);
	pthread_mutex_lock(&o->mu);
	unsigned seq = ++o->warm_seq;
	pthread_mutex_unlock(&o->mu);
	snprintf(w->id, sizeof w->id, "warm-%lld-%u", (long long)now_ms(), seq);
	snprintf(w->bundle, sizeof w->bundle, "%s/%s", o->warm_dir, w->id);
	oci_cgroup_path(o, s->host, w->id, w->cgroup, sizeof w->cgroup);
	char scratch[OCI_PATH_MAX + 96];
	snprintf(scratch, sizeof scratch, "%s/scratch", w->bundle);
	struct exec_spec ws = *s;
	ws.task_id = w->id;
	ws.argv = idle_argv;
	ws.argc = 3;
	ws.env = NULL;
	ws.n_env = 0;
	ws.workdir = scratch;
	ws.log_path = "/dev/null";
	ws.timeout_ms = 0;
	struct oci_launched l;
	int rc = oci_bundle_make(o, &ws, w->bundle, w->cgroup, img, e);
	if (rc == 0 && mkdir(scratch, 0700) < 0)
		rc = err_set(e, ERR_INTERNAL, "cannot create %s: %s", scratch, strerror(errno));
	if (rc == 0)
		rc = oci_launch(o, &ws, w->bundle, w->cgroup, NULL, &l, e);
	if (rc < 0) {
		oci_bundle_remove(w->bundle);
		free(w);
		return NULL;
	}
	pid_t init = oci_pid_read(w->bundle, OCI_FILE_INIT_PID);
	w->shim = l.shim;
	w->shim_pidfd = l.shim_pidfd;
	w->init_pidfd = init > 0 ? pidfd_open(init, 0) : -1;
	w->busy = true;
	pthread_mutex_lock(&o->mu);
	w->next = o->warms;
	o->warms = w;
	pthread_mutex_unlock(&o->mu);
	return w;
}

/* The run's dir names its warm container: adopt removes such runs. */
static void mark_warm_run(const char *dir, const struct oci_warm *w)
{
	char path[OCI_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/%s", dir, OCI_FILE_WARM);
	FILE *f = fopen(path, "we");
	if (f) {
		fprintf(f, "%s\n", w->id);
		fclose(f);
	}
}

int oci_warm_start(struct oci_backend *o, const struct exec_spec *s, const char *dir, const struct image *img,
		   struct err *e)
{
	char key[1024];
	exec_warm_key(s, key, sizeof key);
	struct oci_warm *w = take_idle(o, key);
	bool reused = w != NULL;
	if (!w && !(w = make_warm(o, s, key, img, e)))
		return -1;
	char scratch[OCI_PATH_MAX + 96];
	snprintf(scratch, sizeof scratch, "%s/scratch", w->bundle);
	struct exec_spec rs = *s;
	rs.workdir = scratch;
	struct oci_launched l;
	int rc = oci_run_dir_make(o, &rs, dir, w->cgroup, img, e);
	if (rc == 0) {
		mark_warm_run(dir, w);
		rc = oci_launch(o, &rs, dir, w->cgroup, w->id, &l, e);
	}
	if (rc < 0) {
		oci_warm_release(o, w, true);
		return -1;
	}
	oci_watch(o, s, dir, w->cgroup, &l, w);
	log_msg("info", "exec", "task=%s runs in %s warm container %s of client %s", s->task_id,
		reused ? "the" : "a new", w->id, s->client ? s->client : "");
	return 0;
}

/* Kills a warm container and waits for its shim, which deletes it and
 * unmounts its rootfs; then its bundle goes. Not in the list any more. */
static void drop_warm(struct oci_warm *w)
{
	if (w->init_pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, w->init_pidfd, SIGKILL, NULL, 0);
		close(w->init_pidfd);
	}
	waitpid(w->shim, NULL, 0);
	close(w->shim_pidfd);
	oci_bundle_remove(w->bundle);
	free(w);
}

static void unlink_warm(struct oci_backend *o, struct oci_warm *w)
{
	for (struct oci_warm **p = &o->warms; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			return;
		}
}

void oci_warm_release(struct oci_backend *o, struct oci_warm *w, bool failed)
{
	if (!failed) {
		char scratch[OCI_PATH_MAX + 96];
		snprintf(scratch, sizeof scratch, "%s/scratch", w->bundle);
		exec_wipe_scratch(scratch);
	}
	pthread_mutex_lock(&o->mu);
	if (failed)
		w->discard = true;
	w->busy = false;
	w->idle_since_ms = now_ms();
	pthread_mutex_unlock(&o->mu);
	oci_warm_expire(o, false); /* a discarded one goes now */
}

/* Its init has exited (killed, OOM): no run can be exec'd in it. */
static bool warm_dead(const struct oci_warm *w)
{
	struct pollfd p = {.fd = w->shim_pidfd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

int oci_warm_expire(struct oci_backend *o, bool everything)
{
	int64_t now = now_ms(), next = -1;
	struct oci_warm *doomed = NULL;
	pthread_mutex_lock(&o->mu);
	for (struct oci_warm *w = o->warms, *after; w; w = after) {
		after = w->next;
		int64_t left = w->idle_since_ms + o->warm_idle_ms - now;
		if (everything || (!w->busy && (w->discard || left <= 0 || warm_dead(w)))) {
			unlink_warm(o, w);
			w->next = doomed;
			doomed = w;
		} else if (!w->busy && (next < 0 || left < next)) {
			next = left;
		}
	}
	pthread_mutex_unlock(&o->mu);
	for (struct oci_warm *w = doomed, *after; w; w = after) {
		after = w->next;
		drop_warm(w);
	}
	return next < 0 ? -1 : (int)next + 1;
}

void oci_warm_remove_left(struct oci_backend *o)
{
	DIR *d = opendir(o->warm_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char bundle[OCI_PATH_MAX + 300];
		snprintf(bundle, sizeof bundle, "%s/%s", o->warm_dir, de->d_name);
		log_msg("info", "exec", "warm container %s of an earlier agent removed", de->d_name);
		oci_run_remove(o, de->d_name, bundle);
	}
	if (d)
		closedir(d);
}
