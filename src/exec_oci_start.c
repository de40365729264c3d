/* exec_oci_start.c — starting a task's container: the bundle (an overlay of
 * the image's rootfs with a private upper dir, and config.json), then a
 * waiting shim (exec_oci_spawn.c) gets the task; its word on fd 3 says
 * whether the container runs. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci_backend.h"
#include "image_store.h"
#include "image_store_fs.h"
#include <jansson.h>
#include "oci_spec.h"
#include "util.h"

/* Long enough for a loaded host's runtime; a start that hangs longer is a
 * start that failed. */
#define SHIM_READY_TIMEOUT_MS 60000
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* BUNDLE/{upper,work,rootfs}, rootfs an overlay: the image stays read-only
 * and shared, each run writes only its own upper dir. */
static int mount_rootfs(const char *bundle, const char *lower, struct err *e)
{
	const char *dirs[] = {"upper", "work", "rootfs"};
	char path[OCI_PATH_MAX + 16];
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", bundle, dirs[i]);
		if (mkdir(path, 0755) < 0)
			return err_set(e, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
	}
	char opts[2 * OCI_PATH_MAX + 4096 + 64];
	snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, bundle, bundle);
	if (mount("overlay", path, "overlay", MS_NODEV, opts) < 0)
		return err_set(e, ERR_INTERNAL, "cannot mount the overlay rootfs at %s: %s", path, strerror(errno));
	return 0;
}

/* The image's variables (PATH...), then exec_env_build's list (the task's
 * own and the GPU variables last), later entries replacing earlier ones of
 * the same name, so exactly one of each reaches the task. */
static char **container_env(const struct exec_spec *s, char **image_env)
{
	const char *path = DEFAULT_PATH;
	for (char **p = image_env; p && *p; p++)
		if (strncmp(*p, "PATH=", 5) == 0)
			path = *p + 5;
	int n_task;
	char **task_env = exec_env_build(s, path, OCI_SCRATCH_PATH, &n_task);
	int n_img = 0;
	while (image_env && image_env[n_img])
		n_img++;
	char **env = xcalloc((size_t)(n_img + n_task) + 1, sizeof *env);
	int k = 0;
	for (int i = 0; i < n_img + n_task; i++) {
		const char *v = i < n_img ? image_env[i] : task_env[i - n_img];
		size_t key = strcspn(v, "=");
		for (int j = 0; j < k; j++)
			if (strncmp(env[j], v, key + 1) == 0) {
				free(env[j]);
				env[j] = env[--k];
				break;
			}
		env[k++] = xstrdup(v);
	}
	exec_env_free(task_env);
	return env;
}

/* config.json of a container for s (argv overridden by argv when given: a
 * warm container's idle loop), and for a warm run only its process object
 * in process.json too, for `RUNTIME exec --process`: the same user,
 * capabilities, no_new_privs and rlimits as a container of its own. */
static int write_spec(struct oci_backend *o, const struct exec_spec *s, const char *dir, const char *cgroup,
		      const struct image *img, bool process_only, struct err *e)
{
	char **env = container_env(s, img->env);
	struct oci_spec_input in = {
		.task_id = s->task_id,
		.host = s->host,
		.argv = s->argv,
		.env = env,
		.rootfs = "rootfs",
		.readonly_rootfs = s->readonly_rootfs,
		.scratch_dir = s->workdir,
		.memory_bytes = s->memory_bytes,
		.cpu_milli = s->cpu_milli,
		.pids_limit = s->pids_limit ? s->pids_limit : EXEC_PIDS_DEFAULT,
		.network = s->network,
		.cgroups_path = cgroup,
		.devnodes = s->devnodes,
		.n_devnodes = s->n_devnodes,
		.mounts = s->real_gpus ? o->cdi_mounts : NULL,
		.n_mounts = s->real_gpus ? o->n_cdi_mounts : 0,
	};
	int rc = oci_spec_write(dir, &in, e);
	if (rc == 0 && process_only) {
		json_t *spec = oci_spec_build(&in, e);
		char path[OCI_PATH_MAX + 32];
		snprintf(path, sizeof path, "%s/%s", dir, OCI_FILE_PROCESS);
		rc = !spec ? -1
		     : json_dump_file(json_object_get(spec, "process"), path, JSON_COMPACT) < 0
			     ? err_set(e, ERR_INTERNAL, "cannot write %s", path)
			     : 0;
		json_decref(spec);
	}
	for (char **p = env; *p; p++)
		free(*p);
	free(env);
	return rc;
}

/* Reads the shim's one line: 0 for "ok", else -1 with its reason in e;
 * *answered false when it said nothing in time. */
static int await_ready(int ready_r, bool *answered, struct err *e)
{
	struct pollfd p = {.fd = ready_r, .events = POLLIN};
	char buf[256];
	ssize_t n = 0;
	if (poll(&p, 1, SHIM_READY_TIMEOUT_MS) > 0)
		n = read(ready_r, buf, sizeof buf - 1);
	*answered = n > 0;
	if (n <= 0)
		return err_set(e, ERR_INTERNAL, "the container did not start within %d s", SHIM_READY_TIMEOUT_MS / 1000);
	buf[n] = 0;
	if (strncmp(buf, "ok", 2) == 0)
		return 0;
	return err_set(e, ERR_INTERNAL, "%s", strncmp(buf, "error: ", 7) == 0 ? buf + 7 : buf);
}

/* A small file of the bundle that a restarted agent reads (adopt). Through
 * a rename, so it is whole or absent; no fsync: it must outlive the agent
 * process, not a power loss (after which the node requeues the task). */
static void write_bundle_file(const char *bundle, const char *name, const char *fmt, ...)
{
	char path[OCI_PATH_MAX + 32], tmp[OCI_PATH_MAX + 40];
	snprintf(path, sizeof path, "%s/%s", bundle, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		log_msg("warn", "exec", "cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		log_msg("warn", "exec", "cannot write %s: %s", path, strerror(errno));
}

void oci_watch(struct oci_backend *o, const struct exec_spec *s, const char *bundle, const char *cgroup,
	       const struct oci_launched *l, struct oci_warm *warm)
{
	pid_t init = oci_pid_read(bundle, OCI_FILE_INIT_PID);
	pthread_mutex_lock(&o->mu);
	struct oci_task *t = oci_task_add(o, s->task_id);
	str_copy(t->bundle, sizeof t->bundle, bundle);
	str_copy(t->cgroup, sizeof t->cgroup, cgroup);
	t->shim_pid = l->shim;
	t->shim_pidfd = l->shim_pidfd;
	t->shim_is_child = true;
	t->init_pidfd = init > 0 ? pidfd_open(init, 0) : -1;
	t->warm = warm;
	if (l->deadline_ms)
		oci_task_set_deadline(t, l->deadline_ms, s->stop_grace_ms);
	pthread_mutex_unlock(&o->mu);
}

/* The last line of the task's log: where the runtime said why a start
 * failed ("executable file not found..."), for the failure message. */
static void last_log_line(const char *path, char *buf, size_t cap)
{
	buf[0] = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char tail[1024];
	if (fseek(f, -(long)(sizeof tail - 1), SEEK_END) < 0)
		rewind(f);
	size_t n = fread(tail, 1, sizeof tail - 1, f);
	fclose(f);
	while (n && tail[n - 1] == '\n')
		n--;
	tail[n] = 0;
	char *line = strrchr(tail, '\n');
	str_copy(buf, cap, line ? line + 1 : tail);
}

/* A start failed after the shim had its task: a shim that answered is
 * deleting what it made and exits; a silent one is stopped here. The
 * runtime's own reason, if it gave one, joins the message. */
static void fail_launch(struct oci_backend *o, const struct exec_spec *s, pid_t shim, bool answered, struct err *e)
{
	if (!answered)
		kill(shim, SIGKILL);
	waitpid(shim, NULL, 0);
	if (!answered)
		oci_runtime_delete(o, s->task_id);
	char why[160], said[96];
	last_log_line(s->log_path, why, sizeof why);
	if (answered && *why) {
		str_copy(said, sizeof said, e->msg);
		err_set(e, ERR_INTERNAL, "%s: %s", said, why);
	}
}

int oci_launch(struct oci_backend *o, const struct exec_spec *s, const char *bundle, const char *cgroup,
	       const char *warm, struct oci_launched *out, struct err *e)
{
	struct oci_shim sh;
	if (oci_shim_take(o, &sh, e) < 0)
		return -1;
	int rc = oci_shim_send(&sh, bundle, s->task_id, cgroup, s->log_path, warm ? warm : "", e);
	/* Written while the runtime works. The start time tells a restarted
	 * agent that the pid is still this shim's. The deadline is in wall-clock
	 * time, so that an agent restarted meanwhile still enforces it. */
	write_bundle_file(bundle, OCI_FILE_SHIM_PID, "%d %llu\n", (int)sh.pid, sh.start_time);
	int64_t deadline_ms = s->timeout_ms > 0 ? now_ms() + s->timeout_ms : 0;
	if (deadline_ms)
		write_bundle_file(bundle, OCI_FILE_TIMEOUT, "%lld %d\n", (long long)deadline_ms, s->stop_grace_ms);
	bool answered = false;
	if (rc == 0)
		rc = await_ready(sh.ready_r, &answered, e);
	close(sh.ready_r);
	int pidfd = rc == 0 ? pidfd_open(sh.pid, 0) : -1;
	if (rc == 0 && pidfd < 0)
		rc = err_set(e, ERR_INTERNAL, "pidfd_open: %s", strerror(errno));
	if (rc == 0)
		*out = (struct oci_launched){.shim = sh.pid, .shim_pidfd = pidfd, .deadline_ms = deadline_ms};
	else
		fail_launch(o, s, sh.pid, answered, e);
	oci_shim_replenish(o);
	return rc;
}

int oci_bundle_make(struct oci_backend *o, const struct exec_spec *s, const char *bundle, const char *cgroup,
		    const struct image *img, struct err *e)
{
	int rc = mkdir(bundle, 0700) < 0 ? err_set(e, ERR_INTERNAL, "cannot create %s: %s", bundle, strerror(errno))
					 : 0;
	if (rc == 0)
		rc = mount_rootfs(bundle, img->rootfs, e);
	if (rc == 0)
		rc = write_spec(o, s, bundle, cgroup, img, false, e);
	return rc;
}

int oci_run_dir_make(struct oci_backend *o, const struct exec_spec *s, const char *dir, const char *cgroup,
		     const struct image *img, struct err *e)
{
	if (mkdir(dir, 0700) < 0)
		return err_set(e, ERR_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
	return write_spec(o, s, dir, cgroup, img, true, e);
}

int oci_start(struct exec_backend *b, const struct exec_spec *s, char *reason, struct err *e)
{
	struct oci_backend *o = as_oci(b);
	struct image img;
	if (oci_image_load(o, s, &img, reason, e) < 0)
		return -1;
	str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_START_FAILED);
	char bundle[OCI_PATH_MAX], cgroup[256];
	oci_bundle_path(o, s->task_id, bundle, sizeof bundle);
	oci_cgroup_path(o, s->host, s->task_id, cgroup, sizeof cgroup);
	oci_note_cgroup(o, cgroup);
	/* A bundle left by an earlier run of this task (a retry on this host). */
	if (access(bundle, F_OK) == 0) {
		oci_runtime_delete(o, s->task_id);
		oci_bundle_remove(bundle);
	}
	int rc;
	if (s->reuse_warm) {
		rc = oci_warm_start(o, s, bundle, &img, e);
	} else {
		struct oci_launched l;
		rc = oci_bundle_make(o, s, bundle, cgroup, &img, e);
		if (rc == 0)
			rc = oci_launch(o, s, bundle, cgroup, NULL, &l, e);
		if (rc == 0)
			oci_watch(o, s, bundle, cgroup, &l, NULL);
	}
	image_free(&img);
	if (rc < 0)
		oci_bundle_remove(bundle);
	return rc;
}
