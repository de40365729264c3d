/* gpu_monitor_sample.c — periodic readings of the GPUs. Simulated GPUs have
 * none (what they report comes from the kernel-log path and drills). Real
 * GPUs are read through NVML every sample period, or through nvidia-smi
 * every GPU_SMI_SAMPLE_MS where NVML could not be loaded. Each reading goes
 * through gpu_assess (lost, remapped rows, ECC, thermal, throttling over a
 * window) into the GPU's health machine, and its numbers go to the node for
 * /metrics and `gpunode gpus --json`. The monitor's lock is dropped around
 * every driver call, so that kernel-log lines are not held up behind one. */
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

/* Lock held. One reading of w into its health machine and its numbers. */
static void apply_reading(struct gpu_monitor *m, struct gpu_watch *w, const struct gpu_reading *r)
{
	if (!w->assess) {
		w->assess = xmalloc(sizeof(struct gpu_assess_window));
		gpu_assess_window_init(w->assess, 0);
	}
	struct gpu_signal sig[GPU_ASSESS_MAX_SIGNALS];
	int n = gpu_assess(r, w->assess, sig, GPU_ASSESS_MAX_SIGNALS);
	for (int i = 0; i < n; i++)
		gpu_health_signal(&w->h, &m->cfg.health, sig[i].severity, sig[i].action, sig[i].reason, r->ts_ms);
	if (keep_reading(w, r))
		m->readings_version++;
}

/* A driver that stops answering is a problem in itself (gpud counts it
 * too); debounced like any Degraded signal. */
static void driver_silent(struct gpu_monitor *m, struct gpu_watch *w, const struct err *e, int64_t now)
{
	char reason[GPU_HEALTH_REASON_MAX];
	snprintf(reason, sizeof reason, "the driver does not answer: %.120s", e->msg);
	gpu_health_signal(&w->h, &m->cfg.health, GPU_DEGRADED, GPU_ACTION_REBOOT, reason, now);
}

static void sample_nvml_locked(struct gpu_monitor *m, int64_t now)
{
	for (int i = 0; i < m->n; i++) {
		struct gpu_watch *w = &m->w[i];
		struct gpu_reading r;
		struct err e;
		pthread_mutex_unlock(&m->mu);
		int rc = gpu_nvml_read(m->cfg.nvml_timeout_ms, w->index, &r, &e);
		pthread_mutex_lock(&m->mu);
		if (rc < 0)
			driver_silent(m, w, &e, now);
		else
			apply_reading(m, w, &r);
	}
}

static void sample_smi_locked(struct gpu_monitor *m, int64_t now)
{
	if (now - m->last_smi_ms < GPU_SMI_SAMPLE_MS)
		return;
	m->last_smi_ms = now;
	char *text = NULL;
	struct gpu *gpus = NULL;
	struct gpu_facts *facts = NULL;
	struct gpu_smi_reading *rows = NULL;
	int n = 0;
	struct err e;
	pthread_mutex_unlock(&m->mu);
	int rc = gpu_smi_query(&text, &e);
	if (rc == 0)
		rc = gpu_smi_parse(text, &gpus, &facts, &rows, &n, &e);
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < m->n; i++) {
		struct gpu_watch *w = &m->w[i];
		int k = 0;
		while (rc == 0 && k < n && strcmp(gpus[k].uuid, w->uuid) != 0)
			k++;
		if (rc < 0) {
			driver_silent(m, w, &e, now);
			continue;
		}
		struct gpu_reading r;
		if (k < n) {
			gpu_reading_from_smi(&gpus[k], &rows[k], now, &r);
		} else { /* listed at start, gone now: fallen off the bus */
			gpu_reading_unknown(&r, now);
			r.lost = true;
		}
		apply_reading(m, w, &r);
	}
	free(text);
	free(gpus);
	free(facts);
	free(rows);
}

void gpu_monitor_sample_locked(struct gpu_monitor *m, int64_t now)
{
	if (m->cfg.readings == GPU_READINGS_NVML)
		sample_nvml_locked(m, now);
	else if (m->cfg.readings == GPU_READINGS_SMI)
		sample_smi_locked(m, now);
}

void gpu_monitor_sample_free(struct gpu_watch *w)
{
	free(w->assess);
	w->assess = NULL;
}
