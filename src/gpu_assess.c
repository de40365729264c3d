/* gpu_assess.c — what a GPU's readings mean for its health, following
 * gpud and DCGM (gpu-health.md). Pure: time comes from the readings.
 *
 * Rules, most severe first, and why:
 * - GPU lost or reset required: the driver cannot use the GPU until the
 *   host reboots. Unhealthy, reboot (gpud: GPU lost is Xid 79's case).
 * - A failed row remapping: the memory had no spare row left for a bad
 *   one, and a reboot cannot fix that. Unhealthy, hardware inspection.
 * - Uncorrectable ECC errors since the driver loaded (volatile count):
 *   data in GPU memory was corrupted; DCGM fails the GPU on them. Unhealthy,
 *   reboot (which also retires/remaps the rows).
 * - A pending row remapping: the GPU keeps working (the bad row is fenced
 *   off), but the remap happens only at the next reset. Degraded, reboot.
 * - Temperature at or above the device's own slowdown threshold (read from
 *   the driver, never a number of ours): the hardware is about to clock
 *   down. Degraded.
 * - Hardware slowdown (HW slowdown, HW thermal, HW power brake clocks event
 *   reasons) during more than THROTTLE_DEGRADED_PCT % of the last window
 *   (60 s unless told otherwise). A power brake or a thermal event of a few
 *   seconds is normal under a load step; most of a minute is not: the GPU
 *   then delivers a fraction of its speed and every job on it runs slow.
 *   gpud calls HW slowdown in >= 60 % of the minutes of 10 minutes
 *   Unhealthy; we only need Degraded (no new long work, clears by itself
 *   after gpu_health's hold), so a shorter window that reacts in about half a
 *   minute, plus gpu_health's 30 s debounce, serves better.
 * - Persistence mode off: a note. The driver then tears the GPU down when
 *   the last client exits and every task start pays the initialisation.
 * Software reasons (idle, software power cap, application clocks) are
 * normal operation and never count. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gpu_source.h"
#include "util.h"

#define DEFAULT_WINDOW_MS (60 * 1000)
#define THROTTLE_DEGRADED_PCT 50
/* A sample speaks for at most this long before it: after a gap (a hung
 * driver, a stalled sampler) the unseen time is not guessed throttled. */
#define MAX_SAMPLE_SPAN_MS (10 * 1000)

#define HW_REASONS (GPU_CLOCKS_EVENT_HW_SLOWDOWN | GPU_CLOCKS_EVENT_HW_THERMAL | GPU_CLOCKS_EVENT_HW_POWER_BRAKE)

/* ---- readings from any source ---- */

void gpu_reading_unknown(struct gpu_reading *r, int64_t ts_ms)
{
	*r = (struct gpu_reading){
		.ts_ms = ts_ms,
		.util_pct = -1,
		.mem_used_mb = -1,
		.mem_total_mb = -1,
		.temp_c = -1,
		.temp_slowdown_c = -1,
		.temp_shutdown_c = -1,
		.power_w = -1,
		.power_limit_w = -1,
		.clocks_event = -1,
		.ecc_uncorrected_volatile = -1,
		.remapped_pending = -1,
		.remapped_failure = -1,
		.persistence = -1,
	};
}

void gpu_reading_from_smi(const struct gpu *g, const struct gpu_smi_reading *s, int64_t ts_ms,
			  struct gpu_reading *out)
{
	gpu_reading_unknown(out, ts_ms);
	out->util_pct = s->util_pct;
	out->mem_used_mb = s->mem_used_mb;
	out->mem_total_mb = g->vram_mb > 0 ? g->vram_mb : -1;
	out->temp_c = s->temp_c;
	out->power_w = s->power_w;
	out->clocks_event = s->clocks_event;
	out->ecc_uncorrected_volatile = s->ecc_uncorrected_volatile;
}

/* ---- the throttling window ---- */

void gpu_assess_window_init(struct gpu_assess_window *w, int64_t window_ms)
{
	memset(w, 0, sizeof *w);
	w->window_ms = window_ms > 0 ? window_ms : DEFAULT_WINDOW_MS;
}

static void window_add(struct gpu_assess_window *w, int64_t ts_ms, int64_t clocks_event)
{
	int newest = (w->head + w->n - 1) % GPU_ASSESS_WINDOW_SAMPLES;
	if (w->n > 0 && ts_ms < w->sample[newest].ts_ms) /* the clock went back: start over */
		gpu_assess_window_init(w, w->window_ms);
	int slot = (w->head + w->n) % GPU_ASSESS_WINDOW_SAMPLES;
	if (w->n == GPU_ASSESS_WINDOW_SAMPLES)
		w->head = (w->head + 1) % GPU_ASSESS_WINDOW_SAMPLES;
	else
		w->n++;
	w->sample[slot].ts_ms = ts_ms;
	w->sample[slot].hw_reasons = clocks_event < 0 ? 0 : (uint8_t)(clocks_event & HW_REASONS);
}

/* Time throttled within the window ending at now_ms, in total and per reason. */
struct throttled {
	int64_t any_ms, slowdown_ms, thermal_ms, power_brake_ms;
};

/* Each sample stands for the time since the sample before it (at most
 * MAX_SAMPLE_SPAN_MS), clipped to the window. The oldest kept sample has
 * no predecessor and counts for nothing. */
static struct throttled window_throttled(const struct gpu_assess_window *w, int64_t now_ms)
{
	struct throttled t = {0};
	int64_t window_start = now_ms - w->window_ms;
	for (int k = 1; k < w->n; k++) {
		int prev = (w->head + k - 1) % GPU_ASSESS_WINDOW_SAMPLES;
		int cur = (w->head + k) % GPU_ASSESS_WINDOW_SAMPLES;
		uint8_t bits = w->sample[cur].hw_reasons;
		int64_t end = w->sample[cur].ts_ms;
		int64_t start = w->sample[prev].ts_ms;
		if (start < end - MAX_SAMPLE_SPAN_MS)
			start = end - MAX_SAMPLE_SPAN_MS;
		if (start < window_start)
			start = window_start;
		if (!bits || end <= start)
			continue;
		int64_t span = end - start;
		t.any_ms += span;
		t.slowdown_ms += bits & GPU_CLOCKS_EVENT_HW_SLOWDOWN ? span : 0;
		t.thermal_ms += bits & GPU_CLOCKS_EVENT_HW_THERMAL ? span : 0;
		t.power_brake_ms += bits & GPU_CLOCKS_EVENT_HW_POWER_BRAKE ? span : 0;
	}
	return t;
}

/* ---- signals ---- */

struct signals {
	struct gpu_signal *out;
	int cap, n;
};

__attribute__((format(printf, 4, 5))) static void emit(struct signals *s, enum gpu_health severity,
							enum gpu_action action, const char *fmt, ...)
{
	if (s->n >= s->cap)
		return;
	struct gpu_signal *g = &s->out[s->n++];
	g->severity = severity;
	g->action = action;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->reason, sizeof g->reason, fmt, ap);
	va_end(ap);
}

static void assess_memory(const struct gpu_reading *r, struct signals *s)
{
	if (r->remapped_failure == 1)
		emit(s, GPU_UNHEALTHY, GPU_ACTION_HW_INSPECTION,
		     "GPU memory row remapping has failed (no spare row for a bad one)");
	if (r->ecc_uncorrected_volatile > 0)
		emit(s, GPU_UNHEALTHY, GPU_ACTION_REBOOT, "%lld uncorrectable ECC memory errors since the driver loaded",
		     (long long)r->ecc_uncorrected_volatile);
	if (r->remapped_pending == 1)
		emit(s, GPU_DEGRADED, GPU_ACTION_REBOOT,
		     "GPU memory rows are waiting to be remapped, which happens at the next GPU reset");
}

static void assess_temperature(const struct gpu_reading *r, struct signals *s)
{
	if (r->temp_c < 0 || r->temp_slowdown_c <= 0 || r->temp_c < r->temp_slowdown_c)
		return;
	char shutdown[32] = "";
	if (r->temp_shutdown_c > 0)
		snprintf(shutdown, sizeof shutdown, ", shutdown at %d C", r->temp_shutdown_c);
	emit(s, GPU_DEGRADED, GPU_ACTION_CHECK_COOLING,
	     "temperature %d C at or above the GPU's slowdown threshold %d C%s: check the host's cooling", r->temp_c,
	     r->temp_slowdown_c, shutdown);
}

/* "thermal, power brake" from the reasons that took part. */
static void throttle_causes(const struct throttled *t, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s", t->thermal_ms ? "thermal, " : "", t->power_brake_ms ? "power brake, " : "",
		 t->slowdown_ms ? "hardware slowdown, " : "");
	size_t n = strlen(buf);
	if (n >= 2)
		buf[n - 2] = '\0';
}

static void assess_throttling(const struct gpu_reading *r, const struct gpu_assess_window *w, struct signals *s)
{
	struct throttled t = window_throttled(w, r->ts_ms);
	if (t.any_ms * 100 <= w->window_ms * THROTTLE_DEGRADED_PCT)
		return;
	char causes[64];
	throttle_causes(&t, causes, sizeof causes);
	emit(s, GPU_DEGRADED, GPU_ACTION_CHECK_COOLING,
	     "clocks slowed by the hardware (%s) for %lld s of the last %lld s: check the host's cooling and power",
	     causes, (long long)(t.any_ms / 1000), (long long)(w->window_ms / 1000));
}

int gpu_assess(const struct gpu_reading *r, struct gpu_assess_window *w, struct gpu_signal *out, int cap)
{
	struct signals s = {.out = out, .cap = cap, .n = 0};
	if (r->lost) { /* nothing else was read */
		emit(&s, GPU_UNHEALTHY, GPU_ACTION_REBOOT, "GPU is lost: NVML can no longer reach it (fallen off the bus)");
		return s.n;
	}
	if (r->reset_required) {
		emit(&s, GPU_UNHEALTHY, GPU_ACTION_REBOOT, "NVML says the GPU needs a reset before it can be used");
		return s.n;
	}
	window_add(w, r->ts_ms, r->clocks_event);
	assess_memory(r, &s);
	assess_temperature(r, &s);
	assess_throttling(r, w, &s);
	if (r->persistence == 0)
		emit(&s, GPU_HEALTHY, GPU_ACTION_NONE,
		     "persistence mode is off: the driver tears the GPU down whenever it is idle and every task start waits "
		     "for it to come up again (nvidia-smi -pm 1)");
	return s.n;
}
