/* Unit tests of NVML discovery (gpu_nvml.c) and readings (gpu_nvml_read.c).
 * No GPU exists on the machines
 * that run these tests, so they drive the REAL loading code — dlopen of
 * "libnvidia-ml.so.1", dlsym of every function, calls on timed worker
 * threads — against a test double: tests/fake_nvml/fake_nvml.c, built as
 * libnvidia-ml.so.1 and found through LD_LIBRARY_PATH (meson's test env).
 * Each test writes a scenario file and points $FAKE_NVML_SCENARIO at it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu_source.h"
#include "gpu_test_data.h"
#include "util.h"

static char scenario_path[64];

static void write_scenario(const char *text)
{
	snprintf(scenario_path, sizeof scenario_path, "/tmp/fake-nvml-XXXXXX");
	int fd = mkstemp(scenario_path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("FAKE_NVML_SCENARIO", scenario_path, 1);
}

static void cleanup(void)
{
	if (scenario_path[0])
		unlink(scenario_path);
}

TestSuite(gpu_nvml, .fini = cleanup);

#define TWO_H100                                                                                   \
	"driver 565.57.01\n"                                                                       \
	"cuda 12070\n"                                                                             \
	"device GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1|NVIDIA H100 80GB HBM3|81559|9.0|00000000:18:00.0|0\n" \
	"device GPU-7c3cadbd-17e5-0913-f69b-c618122ea0cd|NVIDIA H100 80GB HBM3|81559|9.0|00000000:2A:00.0|1\n"

Test(gpu_nvml, discovers_devices_through_dlopen)
{
	write_scenario(TWO_H100);
	struct gpu *g;
	struct gpu_facts *f;
	int n;
	struct err e;
	cr_assert_eq(gpu_nvml_discover(2000, &g, &f, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(g[i].index, i);
		cr_assert_str_eq(g[i].model, "H100-80GB");
		cr_assert_eq(g[i].vram_mb, 81559);
		cr_assert_str_eq(g[i].arch, "sm_90");
		cr_assert_not(g[i].simulated);
		cr_assert_eq(g[i].nvlink_group, -1);
		cr_assert_str_eq(f[i].driver_version, "565.57.01");
		cr_assert_str_eq(f[i].cuda_version, "12.7");
		cr_assert_str_eq(f[i].name, "NVIDIA H100 80GB HBM3");
	}
	cr_assert_str_eq(g[1].uuid, "GPU-7c3cadbd-17e5-0913-f69b-c618122ea0cd");
	cr_assert_str_eq(f[0].pci_bus_id, "00000000:18:00.0");
	cr_assert_eq(f[0].mig, GPU_MIG_DISABLED);
	cr_assert_eq(f[1].mig, GPU_MIG_ENABLED);
	free(g);
	free(f);
}

Test(gpu_nvml, no_mig_support_is_not_an_error)
{
	write_scenario("device GPU-8ee5f1e0-e705-aac5-6d6e-b97ad59601ef|NVIDIA GeForce RTX 4090|24564|8.9|"
		       "00000000:01:00.0|-1\n");
	struct gpu *g;
	struct gpu_facts *f;
	int n;
	struct err e;
	cr_assert_eq(gpu_nvml_discover(2000, &g, &f, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(g[0].model, "RTX4090-24GB");
	cr_assert_str_eq(g[0].arch, "sm_89");
	cr_assert_eq(f[0].mig, GPU_MIG_UNKNOWN);
	free(g);
	free(f);
}

Test(gpu_nvml, zero_devices)
{
	write_scenario("driver 550.1\n");
	struct gpu *g;
	struct gpu_facts *f;
	int n = -1;
	struct err e;
	cr_assert_eq(gpu_nvml_discover(2000, &g, &f, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 0);
	free(g);
	free(f);
}

Test(gpu_nvml, a_driver_error_fails_discovery_with_the_call_named)
{
	write_scenario(TWO_H100 "fail nvmlDeviceGetUUID 15\n");
	struct gpu *g;
	struct gpu_facts *f;
	int n;
	struct err e;
	cr_assert_lt(gpu_nvml_discover(2000, &g, &f, &n, &e), 0);
	cr_assert_eq(e.code, ERR_UNAVAILABLE);
	cr_assert_not_null(strstr(e.msg, "nvmlDeviceGetUUID"), "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "GPU is lost"), "%s", e.msg);
	cr_assert_null(g);
	cr_assert_null(f);
	cr_assert_eq(n, 0);
}

Test(gpu_nvml, init_failure)
{
	write_scenario("fail nvmlInit_v2 9\n");
	struct gpu *g;
	struct gpu_facts *f;
	int n;
	struct err e;
	cr_assert_lt(gpu_nvml_discover(2000, &g, &f, &n, &e), 0);
	cr_assert_not_null(strstr(e.msg, "nvmlInit_v2"), "%s", e.msg);
}

Test(gpu_nvml, a_hung_call_times_out)
{
	/* The fake sleeps 5 s inside nvmlDeviceGetMemoryInfo; we wait 200 ms. */
	write_scenario(TWO_H100 "hang nvmlDeviceGetMemoryInfo 5000\n");
	struct gpu *g;
	struct gpu_facts *f;
	int n;
	struct err e;
	int64_t t0 = mono_ns();
	cr_assert_lt(gpu_nvml_discover(200, &g, &f, &n, &e), 0);
	int64_t ms = (mono_ns() - t0) / 1000000;
	cr_assert_eq(e.code, ERR_UNAVAILABLE);
	cr_assert_not_null(strstr(e.msg, "nvmlDeviceGetMemoryInfo"), "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "200 ms"), "%s", e.msg);
	cr_assert_lt(ms, 2000, "gave up after %lld ms", (long long)ms);
	cr_assert_null(g);
}

Test(gpu_nvml, meson_points_the_loader_at_the_fake)
{
	/* The loader reads LD_LIBRARY_PATH once at start: it must come from meson. */
	const char *saved = getenv("LD_LIBRARY_PATH");
	cr_assert_not_null(saved, "meson must set LD_LIBRARY_PATH to the fake's directory");
	cr_assert_not_null(strstr(saved, "fake_nvml"), "%s", saved);
}

Test(gpu_nvml, a_stuck_call_that_returns_late_cleans_up_after_itself)
{
	/* The worker outlives the caller by 300 ms, then finishes and frees its
	 * job; under ASan a use-after-free or double free here would abort. */
	write_scenario(TWO_H100 "hang nvmlDeviceGetName 400\n");
	struct gpu *g;
	struct gpu_facts *f;
	int n;
	struct err e;
	cr_assert_lt(gpu_nvml_discover(100, &g, &f, &n, &e), 0);
	cr_assert_not_null(strstr(e.msg, "nvmlDeviceGetName"), "%s", e.msg);
	usleep(600 * 1000);
	/* The library stays loaded after a timeout; a fresh discovery still works. */
	write_scenario(TWO_H100);
	cr_assert_eq(gpu_nvml_discover(2000, &g, &f, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2);
	free(g);
	free(f);
}

Test(gpu_nvml, a_hung_shutdown_does_not_lose_the_result)
{
	write_scenario(TWO_H100 "hang nvmlShutdown 3000\n");
	struct gpu *g;
	struct gpu_facts *f;
	int n;
	struct err e;
	int64_t t0 = mono_ns();
	cr_assert_eq(gpu_nvml_discover(150, &g, &f, &n, &e), 0, "%s", e.msg);
	cr_assert_lt((mono_ns() - t0) / 1000000, 2000);
	cr_assert_eq(n, 2);
	free(g);
	free(f);
}

/* ---- readings (gpu_nvml_read) ---- */

#define UUID0 "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1"
#define UUID1 "GPU-7c3cadbd-17e5-0913-f69b-c618122ea0cd"

static void read_ok(int index, struct gpu_reading *r)
{
	struct err e;
	cr_assert_eq(gpu_nvml_read(2000, index, r, &e), 0, "GPU %d: %s", index, e.msg);
}

static void sleep_until_ms(int64_t t0_ns, int64_t ms)
{
	int64_t left = t0_ns / 1000000 + ms - mono_ns() / 1000000;
	if (left > 0)
		usleep((useconds_t)left * 1000);
}

Test(gpu_nvml, reads_every_value_through_dlopen)
{
	write_scenario(TWO_H100 "reading " UUID1 " 0 util=97 mem_used=40960 temp=62 slowdown=87 shutdown=92 "
				"power=612.5 limit=700 clocks_event=0x48 ecc_uv=2 remap_pending=1 remap_failure=0 "
				"persistence=1\n");
	struct gpu_reading r;
	int64_t before = now_ms();
	read_ok(1, &r);
	cr_assert_geq(r.ts_ms, before);
	cr_assert_leq(r.ts_ms, now_ms());
	cr_assert_not(r.lost);
	cr_assert_not(r.reset_required);
	cr_assert_eq(r.util_pct, 97);
	cr_assert_eq(r.mem_used_mb, 40960);
	cr_assert_eq(r.mem_total_mb, 81559);
	cr_assert_eq(r.temp_c, 62);
	cr_assert_eq(r.temp_slowdown_c, 87);
	cr_assert_eq(r.temp_shutdown_c, 92);
	cr_assert_float_eq(r.power_w, 612.5, 1e-9, "milliwatts from NVML, watts here");
	cr_assert_float_eq(r.power_limit_w, 700, 1e-9);
	cr_assert_eq(r.clocks_event, 0x48);
	cr_assert_eq(r.ecc_uncorrected_volatile, 2);
	cr_assert_eq(r.remapped_pending, 1);
	cr_assert_eq(r.remapped_failure, 0);
	cr_assert_eq(r.persistence, 1);
}

Test(gpu_nvml, values_a_board_does_not_report_are_unknown)
{
	/* No reading lines: every reading call answers NOT_SUPPORTED. */
	write_scenario(TWO_H100 "fail nvmlDeviceGetMemoryInfo 3\n");
	struct gpu_reading r;
	read_ok(0, &r);
	cr_assert_not(r.lost);
	cr_assert_lt(r.util_pct, 0);
	cr_assert_lt(r.mem_used_mb, 0);
	cr_assert_lt(r.mem_total_mb, 0);
	cr_assert_lt(r.temp_c, 0);
	cr_assert_lt(r.temp_slowdown_c, 0);
	cr_assert_lt(r.temp_shutdown_c, 0);
	cr_assert_lt(r.power_w, 0);
	cr_assert_lt(r.power_limit_w, 0);
	cr_assert_lt(r.clocks_event, 0);
	cr_assert_lt(r.ecc_uncorrected_volatile, 0);
	cr_assert_lt(r.remapped_pending, 0);
	cr_assert_lt(r.remapped_failure, 0);
	cr_assert_lt(r.persistence, 0);
}

Test(gpu_nvml, readings_follow_the_scenario_over_time)
{
	/* The same file an operator drill or the agent can run against. */
	char path[512];
	gpu_test_data("nvml/h100x2_failing.scenario", path, sizeof path);
	cr_assert_eq(access(path, R_OK), 0, "%s", path);
	setenv("FAKE_NVML_SCENARIO", path, 1);
	struct gpu_reading r0, r1;
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	struct gpu_assess_window w0, w1;
	gpu_assess_window_init(&w0, 0);
	gpu_assess_window_init(&w1, 0);
	int64_t t0 = mono_ns(); /* NVML is initialised by the first read, after this */

	read_ok(0, &r0);
	read_ok(1, &r1);
	cr_assert_lt((mono_ns() - t0) / 1000000, 1000, "first reads must land before the 1 s change");
	cr_assert_eq(r0.temp_c, 62);
	cr_assert_eq(r0.clocks_event, 0x1);
	cr_assert_eq(gpu_assess(&r0, &w0, s, GPU_ASSESS_MAX_SIGNALS), 0, "%s", s[0].reason);
	cr_assert_eq(gpu_assess(&r1, &w1, s, GPU_ASSESS_MAX_SIGNALS), 0, "%s", s[0].reason);

	sleep_until_ms(t0, 1300);
	read_ok(0, &r0);
	read_ok(1, &r1);
	cr_assert_eq(r0.temp_c, 88);
	cr_assert_eq(r0.clocks_event, 0x48);
	cr_assert_eq(r0.util_pct, 97, "keys not named again keep their value");
	cr_assert_eq(gpu_assess(&r0, &w0, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_DEGRADED);
	cr_assert_not_null(strstr(s[0].reason, "slowdown threshold 87 C"), "%s", s[0].reason);
	cr_assert_eq(r1.ecc_uncorrected_volatile, 1);
	cr_assert_eq(r1.remapped_pending, 1);
	cr_assert_eq(gpu_assess(&r1, &w1, s, GPU_ASSESS_MAX_SIGNALS), 2);
	cr_assert_eq(s[0].severity, GPU_UNHEALTHY);
	cr_assert_eq(s[1].action, GPU_ACTION_REBOOT);

	sleep_until_ms(t0, 2300);
	read_ok(1, &r1);
	cr_assert(r1.lost, "GPU 1 fell off the bus at 2 s");
	cr_assert_lt(r1.temp_c, 0, "nothing else is read from a lost GPU");
	cr_assert_eq(gpu_assess(&r1, &w1, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_UNHEALTHY);
	cr_assert_not_null(strstr(s[0].reason, "lost"), "%s", s[0].reason);
	read_ok(0, &r0);
	cr_assert_not(r0.lost, "the other GPU is unaffected");
	cr_assert_eq(r0.temp_c, 88);
}

Test(gpu_nvml, a_gpu_lost_on_any_call_is_a_reading_not_an_error)
{
	write_scenario(TWO_H100 "reading " UUID0 " 0 temp=40\n"
				"fail nvmlDeviceGetTotalEccErrors 15\n");
	struct gpu_reading r;
	read_ok(0, &r);
	cr_assert(r.lost);
	cr_assert_not(r.reset_required);
}

Test(gpu_nvml, reset_required_is_a_reading)
{
	write_scenario(TWO_H100 "reading " UUID0 " 0 temp=40\n"
				"fail nvmlDeviceGetTemperature 16\n");
	struct gpu_reading r;
	read_ok(0, &r);
	cr_assert(r.reset_required);
	cr_assert_not(r.lost);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	struct gpu_assess_window w;
	gpu_assess_window_init(&w, 0);
	cr_assert_eq(gpu_assess(&r, &w, s, GPU_ASSESS_MAX_SIGNALS), 1);
	cr_assert_eq(s[0].severity, GPU_UNHEALTHY);
}

Test(gpu_nvml, an_unknown_gpu_index_fails_naming_the_call)
{
	write_scenario(TWO_H100);
	struct gpu_reading r;
	struct err e;
	cr_assert_lt(gpu_nvml_read(2000, 5, &r, &e), 0);
	cr_assert_eq(e.code, ERR_UNAVAILABLE);
	cr_assert_not_null(strstr(e.msg, "nvmlDeviceGetHandleByIndex_v2"), "%s", e.msg);
	cr_assert_lt(gpu_nvml_read(2000, -1, &r, &e), 0);
	cr_assert_eq(e.code, ERR_INVALID);
}

Test(gpu_nvml, a_hung_read_call_times_out_and_no_new_call_is_made_until_it_returns)
{
	write_scenario(TWO_H100 "reading " UUID0 " 0 temp=40 remap_pending=0\n"
				"hang nvmlDeviceGetRemappedRows 1500\n");
	struct gpu_reading r;
	struct err e;
	int64_t t0 = mono_ns();
	cr_assert_lt(gpu_nvml_read(200, 0, &r, &e), 0);
	cr_assert_lt((mono_ns() - t0) / 1000000, 1000, "gave up within the timeout");
	cr_assert_eq(e.code, ERR_UNAVAILABLE);
	cr_assert_not_null(strstr(e.msg, "nvmlDeviceGetRemappedRows"), "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, "200 ms"), "%s", e.msg);

	/* The driver is still stuck: the next read refuses at once. */
	int64_t t1 = mono_ns();
	cr_assert_lt(gpu_nvml_read(200, 0, &r, &e), 0);
	cr_assert_lt((mono_ns() - t1) / 1000000, 100, "no waiting on a known-stuck driver");
	cr_assert_not_null(strstr(e.msg, "nvmlDeviceGetRemappedRows has not returned"), "%s", e.msg);

	/* Once the stuck call returns, reads go on. The fake rereads its
	 * scenario at nvmlInit_v2, which discovery calls: drop the hang. */
	sleep_until_ms(t0, 1800);
	write_scenario(TWO_H100 "reading " UUID0 " 0 temp=41\n");
	struct gpu *g;
	struct gpu_facts *f;
	int n;
	cr_assert_eq(gpu_nvml_discover(2000, &g, &f, &n, &e), 0, "%s", e.msg);
	free(g);
	free(f);
	read_ok(0, &r);
	cr_assert_eq(r.temp_c, 41);
}

Test(gpu_nvml, throttling_read_from_the_driver_over_real_time)
{
	/* The hardware brakes GPU 0 from the start; a 400 ms window sampled
	 * every 20 ms must call it Degraded once more than half is covered. */
	write_scenario(TWO_H100 "reading " UUID0 " 0 clocks_event=0x80\n"
				"reading " UUID1 " 0 clocks_event=0x4\n");
	struct gpu_assess_window w0, w1;
	gpu_assess_window_init(&w0, 400);
	gpu_assess_window_init(&w1, 400);
	struct gpu_signal s[GPU_ASSESS_MAX_SIGNALS];
	int n0 = 0, n1 = 0;
	int64_t t0 = mono_ns();
	while ((mono_ns() - t0) / 1000000 < 700) {
		struct gpu_reading r;
		read_ok(0, &r);
		n0 = gpu_assess(&r, &w0, s, GPU_ASSESS_MAX_SIGNALS);
		read_ok(1, &r);
		n1 += gpu_assess(&r, &w1, s, GPU_ASSESS_MAX_SIGNALS);
		usleep(20 * 1000);
	}
	cr_assert_eq(n0, 1, "GPU 0 power-braked for the whole window");
	cr_assert_eq(n1, 0, "a software power cap (0x4) is not a hardware slowdown");
}
