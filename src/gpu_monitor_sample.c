/* gpu_monitor_sample.c — periodic readings of a GPU. Simulated GPUs have
 * none (they report only what the kernel-log path and drills say). Real
 * GPUs found through NVML are read once per sample period. */
#include "gpu_monitor_impl.h"

void gpu_monitor_reading_unknown(struct gpu_watch_reading *r)
{
	r->util_pct = -1;
	r->mem_used_mb = -1;
	r->temp_c = -1;
	r->power_w = -1;
}

void gpu_monitor_sample_locked(struct gpu_monitor *m, struct gpu_watch *w, int64_t now)
{
	(void)m;
	(void)w;
	(void)now;
}

void gpu_monitor_sample_free(struct gpu_watch *w)
{
	(void)w;
}
