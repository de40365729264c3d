/* exec_oci_adopt.c — after an agent restart: each run it still holds is
 * found through its bundle (shim pid, exit file) and taken back, reported
 * as ended, or cleared; bundles and runtime containers of this host that no
 * run claims are orphans and removed, as are the warm containers and their
 * runs. The bundle's config.json annotations say which host a bundle
 * belongs to. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci_backend.h"
#include "oci_spec.h"
#include "util.h"

/* The shim of this bundle if it still runs. Its pid may have been reused:
 * shim.pid holds "PID START_TIME" and the start time must match (a shim is
 * started before it knows its task, so its command line cannot name it);
 * a file of an older agent holds the pid alone, and then the command line
 * must name the task. */
static pid_t live_shim(const char *bundle, const char *id)
{
	char path[OCI_PATH_MAX + 32], cmd[4096];
	snprintf(path, sizeof path, "%s/%s", bundle, OCI_FILE_SHIM_PID);
	FILE *f = fopen(path, "re");
	long pid = -1;
	unsigned long long start = 0;
	if (f) {
		if (fscanf(f, "%ld %llu", &pid, &start) < 1)
			pid = -1;
		fclose(f);
	}
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(cmd, 1, sizeof cmd - 1, f);
	fclose(f);
	cmd[n] = 0;
	if (!strstr(cmd, "gpunode-shim"))
		return -1;
	if (start)
		return oci_proc_start_time((pid_t)pid) == start ? (pid_t)pid : -1;
	for (size_t off = 0; off < n; off += strlen(cmd + off) + 1)
		if (strcmp(cmd + off, id) == 0)
			return (pid_t)pid;
	return -1;
}

static bool bundle_host_is(const char *bundle, const char *host)
{
	char path[OCI_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/config.json", bundle);
	json_t *spec = json_load_file(path, 0, NULL);
	const char *h = json_string_value(json_object_get(json_object_get(spec, "annotations"), OCI_ANNOTATION_HOST));
	bool same = !spec || (h && strcmp(h, host) == 0); /* no config: a half-made bundle of ours */
	json_decref(spec);
	return same;
}

/* The run's timeout, written by the agent that started it. */
static void restore_deadline(struct oci_task *t, const char *bundle)
{
	char path[OCI_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/%s", bundle, OCI_FILE_TIMEOUT);
	FILE *f = fopen(path, "re");
	long long deadline_ms;
	int grace_ms;
	if (f && fscanf(f, "%lld %d", &deadline_ms, &grace_ms) == 2)
		oci_task_set_deadline(t, deadline_ms, grace_ms);
	if (f)
		fclose(f);
}

/* Takes a running shim back under watch. Lock held. */
static void rewatch(struct oci_backend *o, const char *host, const char *id, const char *bundle, pid_t shim)
{
	int pidfd = pidfd_open(shim, 0);
	if (pidfd < 0)
		return;
	struct oci_task *t = oci_task_add(o, id);
	str_copy(t->bundle, sizeof t->bundle, bundle);
	oci_cgroup_path(o, host, id, t->cgroup, sizeof t->cgroup);
	t->shim_pid = shim;
	t->shim_pidfd = pidfd;
	t->shim_is_child = false;
	pid_t init = oci_pid_read(bundle, OCI_FILE_INIT_PID);
	t->init_pidfd = init > 0 ? pidfd_open(init, 0) : -1;
	restore_deadline(t, bundle);
}

void oci_run_remove(struct oci_backend *o, const char *id, const char *bundle)
{
	pid_t shim = live_shim(bundle, id);
	if (shim > 0)
		kill(shim, SIGKILL);
	oci_runtime_delete(o, id);
	oci_bundle_remove(bundle);
}

static void adopt_one(struct oci_backend *o, const char *host, struct exec_adopt *r)
{
	char bundle[OCI_PATH_MAX];
	oci_bundle_path(o, r->task_id, bundle, sizeof bundle);
	r->state = EXEC_ADOPT_GONE;
	if (access(bundle, F_OK) != 0)
		return;
	if (oci_exit_read(bundle, r->task_id, &r->exit) == 0) {
		r->state = EXEC_ADOPT_EXITED; /* cleanup removes the bundle once delivered */
		return;
	}
	/* A run in a warm container: that container is removed below (this
	 * agent has no record of it), and the run with it. */
	char warm[OCI_PATH_MAX + 16];
	snprintf(warm, sizeof warm, "%s/%s", bundle, OCI_FILE_WARM);
	pid_t shim = access(warm, F_OK) == 0 ? -1 : live_shim(bundle, r->task_id);
	if (shim > 0) {
		pthread_mutex_lock(&o->mu);
		rewatch(o, host, r->task_id, bundle, shim);
		bool ok = oci_task_find(o, r->task_id) >= 0;
		pthread_mutex_unlock(&o->mu);
		if (ok) {
			r->state = EXEC_ADOPT_RUNNING;
			return;
		}
	}
	oci_run_remove(o, r->task_id, bundle);
}

static bool claimed(const struct exec_adopt *runs, int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (strcmp(runs[i].task_id, id) == 0)
			return true;
	return false;
}

static void remove_orphan_bundles(struct oci_backend *o, const char *host, const struct exec_adopt *runs, int n)
{
	DIR *d = opendir(o->bundles);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || claimed(runs, n, de->d_name))
			continue;
		char bundle[OCI_PATH_MAX];
		oci_bundle_path(o, de->d_name, bundle, sizeof bundle);
		if (!bundle_host_is(bundle, host))
			continue;
		log_msg("info", "exec", "task=%s: orphaned container removed", de->d_name);
		oci_run_remove(o, de->d_name, bundle);
	}
	closedir(d);
}

/* Containers in the runtime's state with no bundle left (a crash between
 * the two removals): `RUNTIME list -q`, each deleted. */
static void remove_orphan_containers(struct oci_backend *o, const struct exec_adopt *runs, int n)
{
	int out[2];
	if (pipe(out) < 0)
		return;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	char *argv[] = {o->runtime, "--root", o->root, "list", "-q", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, o->runtime, &fa, NULL, argv, oci_child_env);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	FILE *f = fdopen(out[0], "r");
	char line[128];
	while (f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char bundle[OCI_PATH_MAX];
		oci_bundle_path(o, line, bundle, sizeof bundle);
		if (*line && !claimed(runs, n, line) && access(bundle, F_OK) != 0)
			oci_runtime_delete(o, line);
	}
	if (f)
		fclose(f);
	else
		close(out[0]);
	if (rc == 0)
		waitpid(pid, NULL, 0);
}

int oci_adopt(struct exec_backend *b, const char *host, struct exec_adopt *runs, int n, struct err *e)
{
	struct oci_backend *o = as_oci(b);
	for (int i = 0; i < n; i++)
		adopt_one(o, host, &runs[i]);
	oci_warm_remove_left(o);
	remove_orphan_bundles(o, host, runs, n);
	remove_orphan_containers(o, runs, n);
	return 0;
}
