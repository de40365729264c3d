/* gpu_monitor.h — the agent's watch over its GPUs: the kernel-log Xid
 * watcher, the periodic driver readings, and one health state machine per
 * GPU (gpu_health.c), kept on disk so that an agent restart neither forgets
 * an Unhealthy GPU nor resurrects one the operator cleared.
 *
 * Threads: a kernel-log watcher (when a path is configured) that reacts to a
 * line within milliseconds (poll on /dev/kmsg, inotify on a plain file), and
 * a sampler that ticks the debounce timers and takes readings once a
 * second. Both call on_change (no lock of the monitor held) when a GPU's
 * health changed, so the agent reports it at once. */
#ifndef GPUNODE_GPU_MONITOR_H
#define GPUNODE_GPU_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "gpu_source.h"
#include "pool.h"

#define GPU_BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define GPU_SMI_SAMPLE_MS 5000 /* nvidia-smi is a process per sample: not every second */

enum gpu_readings {
	GPU_READINGS_NONE, /* simulated GPUs */
	GPU_READINGS_NVML, /* every sample_ms */
	GPU_READINGS_SMI   /* nvidia-smi, every GPU_SMI_SAMPLE_MS */
};

struct gpu_monitor_config {
	const struct gpu *gpus; /* borrowed for the monitor's life; pci_bus_id maps Xids */
	int n_gpus;
	/* Kernel log to watch: /dev/kmsg, or a plain file that someone appends
	 * dmesg-style lines to (tests, drills). NULL or "": none. */
	const char *kmsg_path;
	const char *boot_id_path; /* NULL: GPU_BOOT_ID_PATH */
	const char *state_path;   /* health kept here across restarts; NULL: not kept */
	enum gpu_readings readings; /* where readings come from (what found the GPUs) */
	int nvml_timeout_ms;      /* per NVML call; default 2,000 */
	int sample_ms;            /* readings and timers; default 1,000 */
	struct gpu_health_cfg health;
	void (*on_change)(void *arg);
	void *arg;
};

struct gpu_monitor;

int gpu_monitor_start(const struct gpu_monitor_config *cfg, struct gpu_monitor **out, struct err *e);
void gpu_monitor_stop(struct gpu_monitor *m);

/* Bumped on every health change; the agent reports when it moved. */
uint64_t gpu_monitor_version(struct gpu_monitor *m);
/* {"gpus":[{uuid, health, reason, action, health_since_ms, clear_gen,
 * utilization_pct, memory_used_mb, temperature_c, power_w, xid_errors}]}:
 * the body of POST /v1/agents/HOST/gpus. *version: the version it shows. */
json_t *gpu_monitor_report(struct gpu_monitor *m, uint64_t *version);
/* Adds the same health fields to a GPU's object of the register body. */
void gpu_monitor_describe(struct gpu_monitor *m, const char *uuid, json_t *obj);

/* Fault drill: an Xid line for the GPU goes where a real one would: appended
 * to the kernel-log file when it is a plain file, else (simulated GPUs, no
 * log file) straight into the line parser. Never written to a real
 * /dev/kmsg: other tools on the host would take it for a real fault. */
int gpu_monitor_inject(struct gpu_monitor *m, const char *uuid, int xid, struct err *e);
/* Operator clear; clear_gen is echoed in reports so that the node can tell
 * reports written before the clear from those after. */
int gpu_monitor_clear(struct gpu_monitor *m, const char *uuid, unsigned clear_gen, struct err *e);

/* Feeds one kernel-log line (exposed for tests). Returns 1 when it was an
 * Xid line for one of the GPUs. */
int gpu_monitor_feed_line(struct gpu_monitor *m, const char *line);

/* True when two PCI bus ids name the same device ("00000000:9B:00.0" as
 * NVML prints it, "0000:9b:00" as the kernel logs it). */
bool gpu_pci_same(const char *a, const char *b);

#endif
