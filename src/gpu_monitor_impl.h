/* gpu_monitor_impl.h — the monitor's insides, shared by gpu_monitor.c,
 * gpu_kmsg.c, gpu_monitor_state.c and gpu_monitor_sample.c only. */
#ifndef GPUNODE_GPU_MONITOR_IMPL_H
#define GPUNODE_GPU_MONITOR_IMPL_H

#include <pthread.h>

#include "gpu_monitor.h"

/* The readings the agent passes on to the node (< 0: unknown). */
struct gpu_watch_reading {
	int util_pct;
	int64_t mem_used_mb;
	int temp_c;
	double power_w;
};

struct gpu_watch {
	char uuid[TASK_GPU_UUID_MAX];
	char pci[32];
	int index;
	bool simulated;
	struct gpu_health_state h;
	unsigned clear_gen;
	struct {
		int xid;
		int64_t count;
	} xids[GPU_XID_KINDS];
	int n_xids;
	int last_xid; /* dedupe of bursts */
	int64_t last_xid_ms;
	struct gpu_watch_reading reading;
	void *assess; /* gpu_monitor_sample.c's per-GPU window; NULL until the first reading */
};

struct gpu_monitor {
	struct gpu_monitor_config cfg; /* its paths point at the copies below */
	char kmsg_path[512], state_path[600];
	pthread_mutex_t mu;
	pthread_cond_t cv; /* wakes the sampler to stop */
	bool stopping, dirty_state;
	char boot_id[40];
	struct gpu_watch *w;
	int n;
	uint64_t version;          /* health changes */
	uint64_t readings_version; /* reading or counter changes */
	int64_t kmsg_seq;          /* last /dev/kmsg record handled; -1 none */
	int64_t last_smi_ms;       /* last nvidia-smi sample */
	int64_t kmsg_offset;       /* plain-file log: bytes handled */
	int kmsg_fd, inotify_fd;
	pthread_t sampler, watcher;
	bool sampler_started, watcher_started;
};

struct gpu_watch *gpu_monitor_find(struct gpu_monitor *m, const char *uuid);
bool gpu_monitor_note_change(struct gpu_monitor *m, struct gpu_watch *w, enum gpu_health before,
			     const char *before_reason);

/* gpu_kmsg.c: opens cfg.kmsg_path (no path: nothing to do), and the
 * watcher thread that feeds each new line to gpu_monitor_feed_line. */
int gpu_kmsg_open(struct gpu_monitor *m, struct err *e);
void *gpu_kmsg_main(void *arg);
void gpu_kmsg_close(struct gpu_monitor *m);

/* gpu_monitor_state.c: health, Xid counts, clear generations and the
 * kernel-log position, in cfg.state_path (JSON, written atomically when
 * dirty_state). A saved state from another boot is loaded with its Xid
 * history (escalation) but its Unhealthy/Degraded cleared by the reboot. */
int gpu_monitor_load_state(struct gpu_monitor *m, struct err *e);
void gpu_monitor_save_locked(struct gpu_monitor *m);

/* gpu_monitor_sample.c: readings of every GPU (cfg.readings), fed to the
 * health machines as signals. Lock held; dropped around the driver calls. */
void gpu_monitor_reading_unknown(struct gpu_watch_reading *r);
void gpu_monitor_sample_locked(struct gpu_monitor *m, int64_t now);
void gpu_monitor_sample_free(struct gpu_watch *w);

#endif
