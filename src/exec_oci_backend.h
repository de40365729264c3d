/* exec_oci_backend.h — the OCI backend's state, shared by its files
 * (exec_oci.c: setup and the small calls; exec_oci_start.c; exec_oci_wait.c;
 * exec_oci_adopt.c). */
#ifndef GPUNODE_EXEC_OCI_BACKEND_H
#define GPUNODE_EXEC_OCI_BACKEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "exec.h"
#include "exec_oci_impl.h"
#include "gpu_devnodes.h"

#define OCI_PATH_MAX 1024

/* A warm container (exec_oci_warm.c): its init idles, runs of one client
 * with the same image, limits and GPUs are exec'd in it one at a time. */
struct oci_warm {
	struct oci_warm *next;
	char id[64];  /* the runtime's name for it */
	char key[1024]; /* client first: two clients never share one */
	char bundle[OCI_PATH_MAX + 80]; /* STATE/oci/warm/ID; its scratch dir is BUNDLE/scratch */
	char cgroup[256];
	pid_t shim;
	int shim_pidfd, init_pidfd;
	bool busy, discard;
	int64_t idle_since_ms;
};

struct oci_task {
	char id[TASK_ID_LEN + 1];
	char bundle[OCI_PATH_MAX];
	char cgroup[256];
	pid_t shim_pid;
	int shim_pidfd;
	bool shim_is_child; /* false once adopted: a restarted agent is not its parent */
	int init_pidfd;     /* the container's init: stop signals go here; -1 if unknown */
	int64_t timeout_at_ns; /* 0: no timeout */
	int timeout_grace_ms;
	int64_t kill_at_ns;    /* 0: no stop requested */
	bool killed, timed_out;
	struct oci_warm *warm; /* the warm container it runs in; NULL: its own */
};

/* A shim that has started its run (oci_launch). */
struct oci_launched {
	pid_t shim;
	int shim_pidfd;
	int64_t deadline_ms; /* wall clock; 0: no timeout */
};

/* A started shim waiting for its task (exec_oci_spawn.c). */
struct oci_shim {
	pid_t pid; /* 0: none */
	unsigned long long start_time; /* /proc/PID/stat's, for adopt: pids are reused */
	int task_w;  /* its stdin: the task's four lines */
	int ready_r; /* its fd 3: "ok" or "error: why" */
};

struct image;

struct oci_backend {
	struct exec_backend base;
	pthread_mutex_t mu;
	struct oci_task *tasks;
	int n, cap;
	int wake_fd; /* eventfd: the watched set or a deadline changed */
	char runtime[256];  /* absolute path of runc or crun */
	char shim[OCI_PATH_MAX];
	char store[OCI_PATH_MAX];   /* STATE/images */
	char bundles[OCI_PATH_MAX]; /* STATE/oci/bundles */
	char root[OCI_PATH_MAX];    /* STATE/oci/root, the runtime's --root */
	struct gpu_mount *cdi_mounts; /* driver files for real GPUs (read once) */
	int n_cdi_mounts;
	struct oci_shim spare; /* lock held */
	bool spare_starting;   /* a start is starting the next spare */
	int runtime_fd;        /* sealed memfd copy of runtime, -1: none (lock held) */
	struct stat runtime_st; /* of the file it was copied from */
	bool stopping;         /* destroy began: no more spares */
	char a_cgroup[256];    /* a run's cgroup once one started: destroy removes its parent */
	char warm_dir[OCI_PATH_MAX]; /* STATE/oci/warm */
	struct oci_warm *warms;      /* lock held */
	unsigned warm_seq;
	int warm_idle_ms;
};

static inline struct oci_backend *as_oci(struct exec_backend *b)
{
	return (struct oci_backend *)b;
}

/* The environment of the shim and of every runtime command: PATH only, so
 * nothing of the agent's own (a token, say) reaches them. */
extern char *const oci_child_env[];

/* BUNDLES/ID and the task's cgroup path. */
void oci_bundle_path(const struct oci_backend *o, const char *id, char *buf, size_t cap);
void oci_cgroup_path(const struct oci_backend *o, const char *host, const char *id, char *buf, size_t cap);

/* Remembers a run's cgroup: its parent is the agent's, which destroy
 * removes. */
void oci_note_cgroup(struct oci_backend *o, const char *cgroup);

/* Adds a watched run (lock held) and wakes wait_exit. */
struct oci_task *oci_task_add(struct oci_backend *o, const char *id);
/* Index of id among the watched runs, or -1. Lock held. */
int oci_task_find(const struct oci_backend *o, const char *id);

/* Kills a run nobody will claim (its shim, its container) and removes its
 * bundle. */
void oci_run_remove(struct oci_backend *o, const char *id, const char *bundle);
/* Unmounts the bundle's rootfs and removes the bundle. */
void oci_bundle_remove(const char *bundle);
/* `RUNTIME --root ROOT delete --force ID`, waited for. */
void oci_runtime_delete(const struct oci_backend *o, const char *id);

/* Sets t's timeout from a wall-clock deadline (ms since the epoch). */
void oci_task_set_deadline(struct oci_task *t, int64_t deadline_ms, int grace_ms);
/* `RUNTIME --root ROOT kill ID SIG`, for a run whose init pid is unknown. */
void oci_runtime_kill(const struct oci_backend *o, const char *id, int sig);

/* Fills x from the bundle's exit file: -1 when there is none (the shim died
 * before it could write one). */
int oci_exit_read(const char *bundle, const char *id, struct exec_exit *x);
/* Loads the task's image (ERR_NOT_FOUND/ERR_INVALID with reason
 * image_not_found when it has none or the store lacks it). */
int oci_image_load(const struct oci_backend *o, const struct exec_spec *s, struct image *img, char *reason,
		   struct err *e);

/* A waiting shim: the spare if there is one, else a new one. */
int oci_shim_take(struct oci_backend *o, struct oci_shim *out, struct err *e);
/* Hands it its task (it closes the task pipe); warm: "" or the warm
 * container to exec the run in. */
int oci_shim_send(struct oci_shim *sh, const char *bundle, const char *id, const char *cgroup, const char *log,
		  const char *warm, struct err *e);
/* Starts the next spare unless there is one (copying the runtime again
 * first if its file changed). */
void oci_shim_replenish(struct oci_backend *o);
/* Ends a shim that has no task yet and reaps it. */
void oci_shim_discard(struct oci_shim *sh);
/* /proc/PID/stat's start time (clock ticks since boot); 0 if gone. */
unsigned long long oci_proc_start_time(pid_t pid);

/* Makes BUNDLE: dir, overlay rootfs, config.json for s. */
int oci_bundle_make(struct oci_backend *o, const struct exec_spec *s, const char *bundle, const char *cgroup,
		    const struct image *img, struct err *e);
/* Makes a warm run's dir: config.json (adopt reads its annotations) and
 * process.json. */
int oci_run_dir_make(struct oci_backend *o, const struct exec_spec *s, const char *dir, const char *cgroup,
		     const struct image *img, struct err *e);
/* Has a waiting shim run s (a container in bundle, or with warm its process
 * in that warm container) and waits for its word. */
int oci_launch(struct oci_backend *o, const struct exec_spec *s, const char *bundle, const char *cgroup,
	       const char *warm, struct oci_launched *out, struct err *e);
/* Watches a launched run (wait_exit reports its end). */
void oci_watch(struct oci_backend *o, const struct exec_spec *s, const char *bundle, const char *cgroup,
	       const struct oci_launched *l, struct oci_warm *warm);

/* Starts s in a warm container of its key (made if none idles); dir: the
 * run's dir (BUNDLES/ID). */
int oci_warm_start(struct oci_backend *o, const struct exec_spec *s, const char *dir, const struct image *img,
		   struct err *e);
/* A warm run ended: its container idles again (scratch wiped), or is
 * removed when the run was stopped or failed. No lock held. */
void oci_warm_release(struct oci_backend *o, struct oci_warm *w, bool failed);
/* Removes warm containers idle past warm_idle_ms (all with everything).
 * No lock held. Returns ms until the next one expires, -1 for none. */
int oci_warm_expire(struct oci_backend *o, bool everything);
/* Removes the warm containers a dead agent left (adopt). */
void oci_warm_remove_left(struct oci_backend *o);

int oci_start(struct exec_backend *b, const struct exec_spec *s, char *reason, struct err *e);
int oci_wait_exit(struct exec_backend *b, int timeout_ms, struct exec_exit *out);
int oci_adopt(struct exec_backend *b, const char *host, struct exec_adopt *runs, int n, struct err *e);

#endif
