/* gpu_monitor_sample.c — periodic readings of a GPU. Simulated GPUs have
 * none (what they report comes from the kernel-log path and drills). Real
 * GPUs found through NVML are read once per sample period; each reading
 * goes through gpu_assess (lost, remapped rows, ECC, thermal, throttling
 * over a window) into the health machine, and its numbers go to the node
 * for /metrics and `gpunode gpus --json`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_monitor_impl.h"
#include "util.h"

void gpu_monitor_reading_unknown(struct gpu_watch_reading *r)
{
	r->util_pct = -1;
	r->mem_used_mb = -1;
	r->temp_c = -1;
	r->power_w = -1;
}

/* Keeps what the node shows; true when it changed. */
static bool keep_reading(struct gpu_watch *w, const struct gpu_reading *r)
{
	struct gpu_watch_reading k = {r->util_pct, r->mem_used_mb, r->temp_c, r->power_w};
	if (r->lost)
		gpu_monitor_reading_unknown(&k);
	bool changed = memcmp(&k, &w->reading, sizeof k) != 0;
	w->reading = k;
	return changed;
}

/* Lock held on entry and exit; dropped around the NVML call, which may take
 * up to its timeout, so that kernel-log lines are not held up behind it. */
void gpu_monitor_sample_locked(struct gpu_monitor *m, struct gpu_watch *w, int64_t now)
{
	if (!m->cfg.nvml || w->simulated)
		return;
	if (!w->assess) {
		w->assess = xmalloc(sizeof(struct gpu_assess_window));
		gpu_assess_window_init(w->assess, 0);
	}
	int index = w->index, timeout = m->cfg.nvml_timeout_ms;
	struct gpu_reading r;
	struct err e;
	pthread_mutex_unlock(&m->mu);
	int rc = gpu_nvml_read(timeout, index, &r, &e);
	pthread_mutex_lock(&m->mu);
	if (rc < 0) {
		/* A driver that stops answering is a problem in itself (gpud
		 * counts it too); debounced like any Degraded signal. */
		char reason[GPU_HEALTH_REASON_MAX];
		snprintf(reason, sizeof reason, "the driver does not answer: %.120s", e.msg);
		gpu_health_signal(&w->h, &m->cfg.health, GPU_DEGRADED, GPU_ACTION_REBOOT, reason, now);
		return;
	}
	struct gpu_signal sig[GPU_ASSESS_MAX_SIGNALS];
	int n = gpu_assess(&r, w->assess, sig, GPU_ASSESS_MAX_SIGNALS);
	for (int i = 0; i < n; i++)
		gpu_health_signal(&w->h, &m->cfg.health, sig[i].severity, sig[i].action, sig[i].reason, r.ts_ms);
	if (keep_reading(w, &r))
		m->readings_version++;
}

void gpu_monitor_sample_free(struct gpu_watch *w)
{
	free(w->assess);
	w->assess = NULL;
}
