/* Unit tests of the assessment of GPU readings (gpu_assess.c): each rule on
 * hand-made readings, the throttling window over simulated time (the
 * function is pure: time comes from the readings), nvidia-smi rows from
 * tests/data/gpu/smi converted into readings, and the signals fed to the
 * real health state machine. Readings through NVML are in test_gpu_nvml.c. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_source.h"
#include "gpu_test_data.h"

#define T0 1700000000000LL /* any wall-clock instant */
#define SEC 1000

/* A healthy H100 at rest, every value known. */
static struct gpu_reading healthy(int64_t ts_ms)
{
	struct gpu_reading r;
	gpu_reading_unknown(&r, ts_ms);
	r.util_pct = 0;
	r.mem_used_mb = 1;
	r.mem_total_mb = 81559;
	r.temp_c = 30;
	r.temp_slowdown_c = 87;
	r.temp_shutdown_c = 92;
	r.power_w = 70;
	r.power_limit_w = 700;
	r.clocks_event = 0x1; /* idle */
	r.ecc_uncorrected_volatile = 0;
	r.remapped_pending = 0;
	r.remapped_failure = 0;
	r.persistence = 1;
	return r;
}

static int assess_one(const struct gpu_reading *r, struct gpu_signal *out, int cap)
{
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 0);
	return gpu_assess(r, &w, out, cap);
}

static bool has(const char *s, const char *part)
{
	return strstr(s, part) != NULL;
}

Test(gpu_assess, a_healthy_gpu_says_nothing)
{
	struct gpu_reading r = healthy(T0);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 0);
}

Test(gpu_assess, unknown_values_say_nothing)
{
	struct gpu_reading r;
	gpu_reading_unknown(&r, T0);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 0);
}

Test(gpu_assess, a_lost_gpu_is_unhealthy_and_wants_a_reboot)
{
	struct gpu_reading r = healthy(T0);
	r.lost = true;
	r.ecc_uncorrected_volatile = 5; /* ignored: a lost GPU's other values were not read */
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_UNHEALTHY);
	cr_assert_eq(s[0].action, GPU_ACTION_REBOOT);
	cr_assert(has(s[0].reason, "lost"), "%s", s[0].reason);
}

Test(gpu_assess, reset_required_is_unhealthy_and_wants_a_reboot)
{
	struct gpu_reading r = healthy(T0);
	r.reset_required = true;
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_UNHEALTHY);
	cr_assert_eq(s[0].action, GPU_ACTION_REBOOT);
	cr_assert(has(s[0].reason, "reset"), "%s", s[0].reason);
}

Test(gpu_assess, remapped_rows_pending_is_degraded_until_a_reboot)
{
	struct gpu_reading r = healthy(T0);
	r.remapped_pending = 1;
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_DEGRADED);
	cr_assert_eq(s[0].action, GPU_ACTION_REBOOT);
	cr_assert(has(s[0].reason, "remapped"), "%s", s[0].reason);
}

Test(gpu_assess, remapped_rows_failure_needs_hardware_inspection_and_comes_first)
{
	struct gpu_reading r = healthy(T0);
	r.remapped_pending = 1;
	r.remapped_failure = 1;
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 2);
	cr_assert_eq(s[0].severity, GPU_UNHEALTHY);
	cr_assert_eq(s[0].action, GPU_ACTION_HW_INSPECTION);
	cr_assert(has(s[0].reason, "remapping has failed"), "%s", s[0].reason);
	cr_assert_eq(s[1].severity, GPU_DEGRADED);
}

Test(gpu_assess, uncorrectable_volatile_ecc_is_unhealthy_with_the_count)
{
	struct gpu_reading r = healthy(T0);
	r.ecc_uncorrected_volatile = 3;
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_UNHEALTHY);
	cr_assert_eq(s[0].action, GPU_ACTION_REBOOT);
	cr_assert(has(s[0].reason, "3 uncorrectable ECC"), "%s", s[0].reason);
}

Test(gpu_assess, temperature_is_judged_against_the_devices_own_slowdown_threshold)
{
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	struct gpu_reading r = healthy(T0);
	r.temp_c = 86; /* one below this H100's 87 C */
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 0);
	r.temp_c = 87;
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_DEGRADED);
	cr_assert_eq(s[0].action, GPU_ACTION_CHECK_COOLING);
	cr_assert(has(s[0].reason, "temperature 87 C"), "%s", s[0].reason);
	cr_assert(has(s[0].reason, "slowdown threshold 87 C"), "%s", s[0].reason);
	cr_assert(has(s[0].reason, "shutdown at 92 C"), "%s", s[0].reason);
	/* The same 87 C on a board whose threshold is 95 C is fine. */
	r.temp_slowdown_c = 95;
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 0);
	/* No threshold from the driver: no guess of ours. */
	r.temp_c = 120;
	r.temp_slowdown_c = -1;
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 0);
}

Test(gpu_assess, persistence_mode_off_is_a_note_not_a_state)
{
	struct gpu_reading r = healthy(T0);
	r.persistence = 0;
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_HEALTHY);
	cr_assert_eq(s[0].action, GPU_ACTION_NONE);
	cr_assert(has(s[0].reason, "persistence mode is off"), "%s", s[0].reason);
}

Test(gpu_assess, signals_come_most_severe_first_and_respect_cap)
{
	struct gpu_reading r = healthy(T0);
	r.persistence = 0;
	r.temp_c = 90;
	r.remapped_pending = 1;
	r.ecc_uncorrected_volatile = 1;
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 4);
	for (int i = 1; i < 4; i++)
		cr_assert_geq(s[i - 1].severity, s[i].severity, "signal %d before %d", i - 1, i);
	struct gpu_signal one;
	cr_assert_eq(assess_one(&r, &one, 1), 1);
	cr_assert_eq(one.severity, GPU_UNHEALTHY);
}

/* ---- the throttling window ---- */

/* Feeds one reading a second from `from` to `to` seconds (inclusive) with
 * the given clocks event reasons; returns the signals of the last one. */
static int feed(struct gpu_assess_window *w, int from, int to, int64_t clocks_event, struct gpu_signal *s)
{
	int n = 0;
	for (int t = from; t <= to; t++) {
		struct gpu_reading r = healthy(T0 + (int64_t)t * SEC);
		r.clocks_event = clocks_event;
		n = gpu_assess(&r, w, s, GPU_ASSESS_MAX_SIGNALS);
	}
	return n;
}

Test(gpu_assess, throttling_more_than_half_of_the_window_is_degraded)
{
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 60 * SEC);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	/* Thermal slowdown from t=0: the sample at t=0 has no predecessor and
	 * counts for nothing, so by t=30 it is 30 s, exactly half: not yet. */
	cr_assert_eq(feed(&w, 0, 30, GPU_CLOCKS_EVENT_HW_THERMAL, s), 0);
	cr_assert_eq(feed(&w, 31, 31, GPU_CLOCKS_EVENT_HW_THERMAL, s), 1);
	cr_assert_eq(s[0].severity, GPU_DEGRADED);
	cr_assert(has(s[0].reason, "thermal"), "%s", s[0].reason);
	cr_assert(has(s[0].reason, "31 s of the last 60 s"), "%s", s[0].reason);
}

Test(gpu_assess, throttling_half_the_time_is_not_degraded)
{
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 60 * SEC);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	for (int t = 0; t < 300; t++) /* every other second, for five minutes */
		cr_assert_eq(feed(&w, t, t, t % 2 ? GPU_CLOCKS_EVENT_HW_POWER_BRAKE : 0x1, s), 0, "t=%d", t);
}

Test(gpu_assess, the_window_slides)
{
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 60 * SEC);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	feed(&w, 0, 0, 0x1, s);
	/* 40 s of power brake (t=1..40), then clean. At time T the window
	 * [T-60, T] holds 40 - (T-60) throttled seconds once T > 60. */
	cr_assert_eq(feed(&w, 1, 40, GPU_CLOCKS_EVENT_HW_POWER_BRAKE, s), 1);
	cr_assert(has(s[0].reason, "power brake"), "%s", s[0].reason);
	cr_assert_eq(feed(&w, 41, 69, 0x1, s), 1, "31 s of the last 60 s");
	cr_assert(has(s[0].reason, "31 s of the last 60 s"), "%s", s[0].reason);
	cr_assert_eq(feed(&w, 70, 70, 0x1, s), 0, "30 s of the last 60 s");
}

Test(gpu_assess, software_reasons_never_count)
{
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 60 * SEC);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	/* idle | applications clocks | software power cap | software thermal */
	cr_assert_eq(feed(&w, 0, 120, 0x1 | 0x2 | 0x4 | 0x20, s), 0);
	/* unknown reasons are not throttling either */
	cr_assert_eq(feed(&w, 121, 240, -1, s), 0);
}

Test(gpu_assess, a_gap_between_samples_is_not_guessed_throttled)
{
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 60 * SEC);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	/* Two throttled samples 50 s apart (the sampler stalled): the second
	 * speaks for its 10 s before, not for all 50. */
	feed(&w, 0, 0, GPU_CLOCKS_EVENT_HW_SLOWDOWN, s);
	cr_assert_eq(feed(&w, 50, 50, GPU_CLOCKS_EVENT_HW_SLOWDOWN, s), 0);
	/* ... then 21 more throttled seconds make 31 s. */
	cr_assert_eq(feed(&w, 51, 70, GPU_CLOCKS_EVENT_HW_SLOWDOWN, s), 0, "30 s");
	cr_assert_eq(feed(&w, 71, 71, GPU_CLOCKS_EVENT_HW_SLOWDOWN, s), 1, "31 s");
	cr_assert(has(s[0].reason, "hardware slowdown"), "%s", s[0].reason);
}

Test(gpu_assess, a_shorter_window_and_fast_samples)
{
	/* 10 s window, 4 samples a second: the ring (256) holds 64 s of them. */
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 10 * SEC);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	int n = 0, first = -1;
	for (int i = 0; i <= 400; i++) {
		struct gpu_reading r = healthy(T0 + (int64_t)i * 250);
		r.clocks_event = GPU_CLOCKS_EVENT_HW_THERMAL;
		n = gpu_assess(&r, &w, s, GPU_ASSESS_MAX_SIGNALS);
		if (n && first < 0)
			first = i;
	}
	cr_assert_eq(first, 21, "more than 5 s throttled after 21 samples of 250 ms, got %d", first);
	cr_assert_eq(n, 1, "still throttled after the ring wrapped");
	cr_assert(has(s[0].reason, "10 s of the last 10 s"), "%s", s[0].reason);
}

Test(gpu_assess, a_clock_going_back_restarts_the_window)
{
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 60 * SEC);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(feed(&w, 100, 140, GPU_CLOCKS_EVENT_HW_THERMAL, s), 1);
	cr_assert_eq(feed(&w, 0, 0, GPU_CLOCKS_EVENT_HW_THERMAL, s), 0);
}

/* ---- nvidia-smi rows feed the same assessment ---- */

struct smi_rows {
	struct gpu *g;
	struct gpu_facts *f;
	struct gpu_smi_reading *r;
	int n;
};

static void parse_smi(const char *text, struct smi_rows *p)
{
	struct err e;
	cr_assert_eq(gpu_smi_parse(text, &p->g, &p->f, &p->r, &p->n, &e), 0, "%s", e.msg);
}

static void parse_smi_fixture(const char *rel, struct smi_rows *p)
{
	char path[512];
	char *text = gpu_test_slurp(gpu_test_data(rel, path, sizeof path));
	cr_assert_not_null(text, "cannot read %s", path);
	parse_smi(text, p);
	free(text);
}

static void smi_rows_free(struct smi_rows *p)
{
	free(p->g);
	free(p->f);
	free(p->r);
}

Test(gpu_assess, an_smi_capture_converts_to_readings)
{
	struct smi_rows p;
	parse_smi_fixture("smi/H100SXMx8.csv", &p);
	struct gpu_reading r;
	gpu_reading_from_smi(&p.g[0], &p.r[0], T0, &r);
	cr_assert_eq(r.ts_ms, T0);
	cr_assert_not(r.lost);
	cr_assert_eq(r.util_pct, 0);
	cr_assert_eq(r.mem_used_mb, 1);
	cr_assert_eq(r.mem_total_mb, 81559);
	cr_assert_eq(r.temp_c, 30);
	cr_assert_float_eq(r.power_w, 100.89, 1e-9);
	cr_assert_eq(r.clocks_event, 0x1);
	cr_assert_eq(r.ecc_uncorrected_volatile, 0);
	/* What the CSV does not carry is unknown, not zero. */
	cr_assert_lt(r.temp_slowdown_c, 0);
	cr_assert_lt(r.power_limit_w, 0);
	cr_assert_lt(r.remapped_pending, 0);
	cr_assert_lt(r.remapped_failure, 0);
	cr_assert_lt(r.persistence, 0);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	for (int i = 0; i < p.n; i++) {
		gpu_reading_from_smi(&p.g[i], &p.r[i], T0, &r);
		cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 0, "GPU %d: %s", i, s[0].reason);
	}
	smi_rows_free(&p);
}

Test(gpu_assess, smi_na_values_become_unknowns)
{
	struct smi_rows p;
	parse_smi_fixture("smi/RTX4090.csv", &p); /* GeForce: no ECC, "[N/A]" */
	struct gpu_reading r;
	gpu_reading_from_smi(&p.g[0], &p.r[0], T0, &r);
	cr_assert_lt(r.ecc_uncorrected_volatile, 0);
	cr_assert_eq(r.temp_c, 28);
	smi_rows_free(&p);

	parse_smi("0, GPU-8ee5f1e0-e705-aac5-6d6e-b97ad59601ef, NVIDIA GeForce RTX 4090, 00000000:01:00.0, 24564, "
		  "[N/A], [Not Supported], [N/A], [Not Supported], [N/A], [Not Supported]\n",
		  &p);
	gpu_reading_from_smi(&p.g[0], &p.r[0], T0, &r);
	cr_assert_eq(r.mem_total_mb, 24564);
	cr_assert_lt(r.mem_used_mb, 0);
	cr_assert_lt(r.util_pct, 0);
	cr_assert_lt(r.temp_c, 0);
	cr_assert_lt(r.power_w, 0);
	cr_assert_lt(r.clocks_event, 0);
	cr_assert_lt(r.ecc_uncorrected_volatile, 0);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	cr_assert_eq(assess_one(&r, s, GPU_ASSESS_MAX_SIGNALS), 0);
	smi_rows_free(&p);
}

Test(gpu_assess, an_smi_row_with_ecc_errors_and_power_brake)
{
	struct smi_rows p;
	parse_smi("0, GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1, NVIDIA H100 80GB HBM3, 00000000:18:00.0, 81559, "
		  "40000, 100, 80, 690.5, 0x0000000000000080, 2\n",
		  &p);
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 60 * SEC);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	int n = 0;
	for (int t = 0; t <= 31; t++) {
		struct gpu_reading r;
		gpu_reading_from_smi(&p.g[0], &p.r[0], T0 + (int64_t)t * SEC, &r);
		n = gpu_assess(&r, &w, s, GPU_ASSESS_MAX_SIGNALS);
	}
	cr_assert_eq(n, 2);
	cr_assert_eq(s[0].severity, GPU_UNHEALTHY);
	cr_assert(has(s[0].reason, "2 uncorrectable ECC"), "%s", s[0].reason);
	cr_assert_eq(s[1].severity, GPU_DEGRADED);
	cr_assert(has(s[1].reason, "power brake"), "%s", s[1].reason);
	smi_rows_free(&p);
}

/* ---- the caller's loop: signals into the real health state machine ---- */

static void apply(struct gpu_health_state *h, const struct gpu_health_cfg *c, const struct gpu_reading *r,
		  struct gpu_assess_window *w)
{
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	int n = gpu_assess(r, w, s, GPU_ASSESS_MAX_SIGNALS);
	for (int i = 0; i < n; i++)
		gpu_health_signal(h, c, s[i].severity, s[i].action, s[i].reason, r->ts_ms);
	gpu_health_tick(h, c, r->ts_ms);
}

Test(gpu_assess, signals_drive_the_health_state_machine)
{
	struct gpu_health_cfg c;
	gpu_health_cfg_default(&c);
	struct gpu_health_state h;
	gpu_health_init(&h, "boot-1", T0);
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 0);

	/* Persistence off is only a note. */
	struct gpu_reading r = healthy(T0);
	r.persistence = 0;
	apply(&h, &c, &r, &w);
	cr_assert_eq(h.state, GPU_HEALTHY);

	/* A pending remap shows as Degraded once it outlasts the debounce. */
	for (int t = 1; t <= 31; t++) {
		r = healthy(T0 + (int64_t)t * SEC);
		r.remapped_pending = 1;
		apply(&h, &c, &r, &w);
	}
	cr_assert_eq(h.state, GPU_DEGRADED);
	cr_assert_eq(h.action, GPU_ACTION_REBOOT);

	/* The GPU falls off the bus: Unhealthy at once, sticky. */
	r = healthy(T0 + 32 * SEC);
	r.lost = true;
	apply(&h, &c, &r, &w);
	cr_assert_eq(h.state, GPU_UNHEALTHY);
	cr_assert(has(h.reason, "lost"), "%s", h.reason);
	r = healthy(T0 + 3600 * SEC);
	apply(&h, &c, &r, &w);
	cr_assert_eq(h.state, GPU_UNHEALTHY);
}
