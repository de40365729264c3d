/* Unit tests of NVML discovery (gpu_nvml.c). No GPU exists on the machines
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
