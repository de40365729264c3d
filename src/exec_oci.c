/* exec_oci.c — the OCI backend: construction, the runtime pick, and the
 * small vtable calls (prepare, stop, usage, cleanup, running, destroy).
 * Starting is in exec_oci_start.c, waiting in exec_oci_wait.c, adoption
 * after a restart in exec_oci_adopt.c. */
#include "exec_oci.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_oci_backend.h"
#include "image_store.h"
#include "image_store_fs.h"
#include "util.h"

char *const oci_child_env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};

/* --- the runtime ------------------------------------------------------- */

static bool find_in_path(const char *name, char *out, size_t cap)
{
	if (strchr(name, '/')) {
		snprintf(out, cap, "%s", name);
		return access(out, X_OK) == 0;
	}
	const char *env = getenv("PATH");
	char path[2048];
	/* sbin too: runc lives in /usr/sbin, which a user's PATH may lack. */
	snprintf(path, sizeof path, "%s:/usr/local/sbin:/usr/sbin:/sbin", env ? env : "/usr/bin:/bin");
	for (char *save = NULL, *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, cap, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

/* crun 1.8 refuses hybrid cgroups (v1 controllers plus a v2 mount that
 * still holds one, e.g. hugetlb); scripts/crun_cgroup_fix.sh moves it. */
static bool crun_cgroups_ok(void)
{
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
		return true; /* pure v2 */
	FILE *f = fopen("/sys/fs/cgroup/unified/cgroup.controllers", "re");
	if (!f)
		return true; /* pure v1 */
	int c = fgetc(f);
	fclose(f);
	return c == EOF || c == '\n';
}

const char *exec_oci_find_runtime(const char *runtime)
{
	static char found[256];
	if (!runtime || !*runtime)
		runtime = getenv("GPUNODE_OCI_RUNTIME");
	if (runtime && *runtime)
		return find_in_path(runtime, found, sizeof found) ? found : NULL;
	/* crun starts a container in about half runc's time (no Go runtime). */
	if (crun_cgroups_ok() && find_in_path("crun", found, sizeof found))
		return found;
	return find_in_path("runc", found, sizeof found) ? found : NULL;
}

/* gpunode-shim beside the running binary (the build dir, or where both
 * were installed). */
static bool find_shim(char *out, size_t cap)
{
	char self[OCI_PATH_MAX - 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return false;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	*slash = 0;
	snprintf(out, cap, "%s/gpunode-shim", self);
	return access(out, X_OK) == 0;
}

/* --- shared helpers ---------------------------------------------------- */

void oci_bundle_path(const struct oci_backend *o, const char *id, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", o->bundles, id);
}

/* /gpunode/HOST.STATE/ID, STATE a hash of the agent's state dir: two agents
 * on one machine (tests, simulated hosts) never share a cgroup, even with
 * the same host name and task id; `delete --force` kills a whole cgroup. */
void oci_cgroup_path(const struct oci_backend *o, const char *host, const char *id, char *buf, size_t cap)
{
	uint32_t h = 2166136261u;
	for (const char *p = o->root; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(buf, cap, "/gpunode/%s.%08x/%s", host && *host ? host : "local", h, id);
}

void oci_note_cgroup(struct oci_backend *o, const char *cgroup)
{
	pthread_mutex_lock(&o->mu);
	str_copy(o->a_cgroup, sizeof o->a_cgroup, cgroup);
	pthread_mutex_unlock(&o->mu);
}

int oci_task_find(const struct oci_backend *o, const char *id)
{
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->tasks[i].id, id) == 0)
			return i;
	return -1;
}

struct oci_task *oci_task_add(struct oci_backend *o, const char *id)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->tasks = xrealloc(o->tasks, (size_t)o->cap * sizeof *o->tasks);
	}
	struct oci_task *t = &o->tasks[o->n++];
	memset(t, 0, sizeof *t);
	str_copy(t->id, sizeof t->id, id);
	t->shim_pidfd = t->init_pidfd = -1;
	eventfd_write(o->wake_fd, 1);
	return t;
}

/* Never removes through a mount still in place: rootfs is an overlay over
 * the image, and a removal through it would empty the image itself. */
void oci_bundle_remove(const char *bundle)
{
	char rootfs[OCI_PATH_MAX + 16];
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", bundle);
	umount2(rootfs, MNT_DETACH); /* EINVAL when the shim already did it */
	struct stat b, r;
	if (stat(bundle, &b) == 0 && stat(rootfs, &r) == 0 && b.st_dev != r.st_dev) {
		log_msg("warn", "exec", "bundle %s: rootfs still mounted, left in place", bundle);
		return;
	}
	fs_remove_tree(bundle);
}

/* Runs `RUNTIME --root ROOT args...` quietly and waits. */
static void run_runtime_quietly(const struct oci_backend *o, char *const *args, int n)
{
	char *argv[8] = {(char *)o->runtime, "--root", (char *)o->root};
	for (int i = 0; i < n && i < 4; i++)
		argv[3 + i] = args[i];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	/* "container does not exist" is the usual, harmless answer. */
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	if (posix_spawn(&pid, o->runtime, &fa, NULL, argv, oci_child_env) == 0)
		waitpid(pid, NULL, 0);
	posix_spawn_file_actions_destroy(&fa);
}

void oci_runtime_delete(const struct oci_backend *o, const char *id)
{
	run_runtime_quietly(o, (char *[]){"delete", "--force", (char *)id}, 3);
}

void oci_runtime_kill(const struct oci_backend *o, const char *id, int sig)
{
	char signame[16];
	snprintf(signame, sizeof signame, "%d", sig);
	run_runtime_quietly(o, (char *[]){"kill", (char *)id, signame}, 3);
}

void oci_task_set_deadline(struct oci_task *t, int64_t deadline_ms, int grace_ms)
{
	t->timeout_at_ns = mono_ns() + (deadline_ms - now_ms()) * 1000000;
	if (t->timeout_at_ns <= 0)
		t->timeout_at_ns = 1; /* already past: stopped at the next look */
	t->timeout_grace_ms = grace_ms;
}

int oci_exit_read(const char *bundle, const char *id, struct exec_exit *x)
{
	char path[OCI_PATH_MAX + 32], line[256] = "";
	snprintf(path, sizeof path, "%s/%s", bundle, OCI_FILE_EXIT);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	bool ok = fgets(line, sizeof line, f) != NULL;
	fclose(f);
	struct oci_exit_record r;
	if (!ok || oci_exit_record_parse(line, &r) < 0)
		return -1;
	memset(x, 0, sizeof *x);
	str_copy(x->task_id, sizeof x->task_id, id);
	x->exit_code = r.exit_code;
	x->signal = r.signal;
	x->usage.cpu_seconds = r.stats.cpu_ns > 0 ? (double)r.stats.cpu_ns / 1e9 : 0;
	x->usage.peak_mem_bytes = r.stats.peak_bytes > 0 ? r.stats.peak_bytes : 0;
	if (r.stats.oom_kills > 0 && r.exit_code != 0)
		exec_exit_set_failure(x, EXEC_REASON_OOM, "killed by the kernel's OOM killer at its memory limit "
				      "(peak %lld MiB)", (long long)(r.stats.peak_bytes >> 20));
	return 0;
}

/* --- vtable ------------------------------------------------------------ */

int oci_image_load(const struct oci_backend *o, const struct exec_spec *s, struct image *img, char *reason,
		   struct err *e)
{
	int rc = !s->image || !*s->image
			 ? err_set(e, ERR_INVALID, "the oci executor runs tasks in images: submit with --image NAME")
			 : image_load(o->store, s->image, img, e);
	if (rc < 0)
		str_copy(reason, EXEC_REASON_MAX, EXEC_REASON_IMAGE_NOT_FOUND);
	return rc;
}

/* The image is all a start needs that can be missing; start loads it again
 * (a small manifest), so a run prepared long ago sees a re-import. */
static int oci_prepare(struct exec_backend *b, const struct exec_spec *s, char *reason, struct err *e)
{
	struct image img;
	if (oci_image_load(as_oci(b), s, &img, reason, e) < 0)
		return -1;
	image_free(&img);
	return 0;
}

static int oci_stop(struct exec_backend *b, const char *task_id, int grace_ms)
{
	struct oci_backend *o = as_oci(b);
	pthread_mutex_lock(&o->mu);
	int i = oci_task_find(o, task_id);
	if (i >= 0) {
		struct oci_task *t = &o->tasks[i];
		/* init is pid 1 of its namespace: SIGTERM reaches it only if it
		 * handles it; SIGKILL (after the grace) takes the whole namespace. */
		if (t->init_pidfd >= 0)
			syscall(SYS_pidfd_send_signal, t->init_pidfd, SIGTERM, NULL, 0);
		else
			oci_runtime_kill(o, t->id, SIGTERM);
		int64_t at = mono_ns() + (int64_t)grace_ms * 1000000;
		if (!t->kill_at_ns || at < t->kill_at_ns)
			t->kill_at_ns = at;
	}
	pthread_mutex_unlock(&o->mu);
	eventfd_write(o->wake_fd, 1);
	return i >= 0 ? 0 : -1;
}

static int oci_usage(struct exec_backend *b, const char *task_id, struct exec_usage *out)
{
	struct oci_backend *o = as_oci(b);
	char cg[256] = "";
	pthread_mutex_lock(&o->mu);
	int i = oci_task_find(o, task_id);
	if (i >= 0)
		str_copy(cg, sizeof cg, o->tasks[i].cgroup);
	pthread_mutex_unlock(&o->mu);
	if (i < 0)
		return -1;
	struct oci_cgroup_stats st;
	oci_cgroup_read(cg, &st);
	out->cpu_seconds = st.cpu_ns > 0 ? (double)st.cpu_ns / 1e9 : 0;
	out->peak_mem_bytes = st.peak_bytes > 0 ? st.peak_bytes : 0;
	return 0;
}

static void oci_cleanup(struct exec_backend *b, const char *task_id)
{
	struct oci_backend *o = as_oci(b);
	pthread_mutex_lock(&o->mu);
	bool running = oci_task_find(o, task_id) >= 0;
	pthread_mutex_unlock(&o->mu);
	if (running)
		return; /* a new run of the same task started meanwhile: it owns the bundle */
	char bundle[OCI_PATH_MAX];
	oci_bundle_path(o, task_id, bundle, sizeof bundle);
	char exit_file[OCI_PATH_MAX + 16];
	snprintf(exit_file, sizeof exit_file, "%s/%s", bundle, OCI_FILE_EXIT);
	if (access(bundle, F_OK) != 0)
		return;
	/* The shim deletes the container before it writes the exit; without
	 * an exit file the shim died early and the container may remain. */
	if (access(exit_file, F_OK) != 0)
		oci_runtime_delete(o, task_id);
	oci_bundle_remove(bundle);
}

static int oci_running(struct exec_backend *b)
{
	struct oci_backend *o = as_oci(b);
	pthread_mutex_lock(&o->mu);
	int n = o->n;
	pthread_mutex_unlock(&o->mu);
	return n;
}

/* Kills every container it runs; their shims then write exits and delete
 * them, and a later agent's adopt finds and clears what remains. The
 * agent's parent cgroup goes once its own shims are gone (those it adopted
 * remove it themselves as the last one leaves). */
static void oci_destroy(struct exec_backend *b)
{
	struct oci_backend *o = as_oci(b);
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	struct oci_shim spare = o->spare;
	o->spare.pid = 0;
	pthread_mutex_unlock(&o->mu);
	oci_shim_discard(&spare);
	for (int i = 0; i < o->n; i++) {
		struct oci_task *t = &o->tasks[i];
		if (t->init_pidfd >= 0) {
			syscall(SYS_pidfd_send_signal, t->init_pidfd, SIGKILL, NULL, 0);
			close(t->init_pidfd);
		}
		if (t->shim_is_child)
			waitpid(t->shim_pid, NULL, 0);
		if (t->shim_pidfd >= 0)
			close(t->shim_pidfd);
	}
	oci_warm_expire(o, true);
	if (*o->a_cgroup)
		oci_cgroup_remove_parent(o->a_cgroup);
	if (o->runtime_fd >= 0)
		close(o->runtime_fd);
	free(o->tasks);
	gpu_mounts_free(o->cdi_mounts, o->n_cdi_mounts);
	close(o->wake_fd);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

static int make_dirs(struct oci_backend *o, const char *state_dir, struct err *e)
{
	image_store_dir(state_dir, o->store, sizeof o->store);
	snprintf(o->bundles, sizeof o->bundles, "%s/oci/bundles", state_dir);
	snprintf(o->root, sizeof o->root, "%s/oci/root", state_dir);
	snprintf(o->warm_dir, sizeof o->warm_dir, "%s/oci/warm", state_dir);
	/* overlayfs splits its options on ',' and ':' */
	if (strpbrk(state_dir, ",:"))
		return err_set(e, ERR_INVALID, "state dir %s: the oci executor needs a path without ',' or ':'",
			       state_dir);
	if (fs_mkdir_p(o->bundles, e) < 0 || fs_mkdir_p(o->root, e) < 0 || fs_mkdir_p(o->warm_dir, e) < 0)
		return -1;
	return gpu_cdi_mounts(NULL, &o->cdi_mounts, &o->n_cdi_mounts, e);
}

struct exec_backend *exec_oci_new(const char *state_dir, const char *runtime, struct err *e)
{
	const char *rt = exec_oci_find_runtime(runtime);
	if (!rt) {
		err_set(e, ERR_UNAVAILABLE, runtime ? "OCI runtime \"%s\" not found" :
			"no OCI runtime found (%s): apt-get install crun or runc", runtime ? runtime : "crun, runc");
		return NULL;
	}
	struct oci_backend *o = xcalloc(1, sizeof *o);
	str_copy(o->runtime, sizeof o->runtime, rt);
	if (!find_shim(o->shim, sizeof o->shim)) {
		err_set(e, ERR_UNAVAILABLE, "gpunode-shim not found beside the gpunode binary (install both)");
		free(o);
		return NULL;
	}
	o->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->wake_fd < 0 || make_dirs(o, state_dir, e) < 0) {
		if (o->wake_fd < 0)
			err_set(e, ERR_INTERNAL, "eventfd: %s", strerror(errno));
		else
			close(o->wake_fd);
		free(o);
		return NULL;
	}
	pthread_mutex_init(&o->mu, NULL);
	o->base = (struct exec_backend){
		.name = "oci",
		.prepare = oci_prepare,
		.start = oci_start,
		.stop = oci_stop,
		.wait_exit = oci_wait_exit,
		.usage = oci_usage,
		.cleanup = oci_cleanup,
		.adopt = oci_adopt,
		.running = oci_running,
		.destroy = oci_destroy,
	};
	o->runtime_fd = -1;
	const char *idle = getenv("GPUNODE_OCI_WARM_IDLE_MS"); /* tests: a short idle time */
	o->warm_idle_ms = idle && atoi(idle) > 0 ? atoi(idle) : OCI_WARM_IDLE_MS;
	oci_shim_replenish(o); /* the first start finds one waiting */
	log_msg("info", "exec", "oci executor: runtime=%s images=%s", o->runtime, o->store);
	return &o->base;
}
