/* Unit tests of simulated GPU profiles (--sim-gpus). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"

Test(gpu_sim, a_mixed_profile_gives_models_memory_and_arch)
{
	struct gpu *g;
	int n;
	struct err e;
	cr_assert_eq(gpu_sim_parse("2xA100-40GB,4xRTX4090-24GB", "h1", &g, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 6);
	cr_assert_str_eq(g[0].model, "A100-40GB");
	cr_assert_eq(g[0].vram_mb, 40 * 1024);
	cr_assert_str_eq(g[0].arch, "sm_80");
	cr_assert_eq(g[0].nvlink_group, 0);
	cr_assert_str_eq(g[5].model, "RTX4090-24GB");
	cr_assert_str_eq(g[5].arch, "sm_89");
	cr_assert_eq(g[5].nvlink_group, -1, "consumer boards have no NVLink group");
	for (int i = 0; i < n; i++) {
		cr_assert_eq(g[i].index, i);
		cr_assert(g[i].simulated);
		cr_assert_eq(strncmp(g[i].uuid, "GPU-", 4), 0);
		cr_assert_eq(strlen(g[i].uuid), 40, "uuid %s", g[i].uuid);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(g[i].uuid, g[j].uuid);
	}
	free(g);
}

Test(gpu_sim, uuids_are_stable_per_host_and_differ_between_hosts)
{
	struct gpu *a, *b, *c;
	int n;
	struct err e;
	cr_assert_eq(gpu_sim_parse("8xH100-80GB", "host-a", &a, &n, &e), 0);
	cr_assert_eq(gpu_sim_parse("8xH100-80GB", "host-a", &b, &n, &e), 0);
	cr_assert_eq(gpu_sim_parse("8xH100-80GB", "host-b", &c, &n, &e), 0);
	for (int i = 0; i < n; i++) {
		cr_assert_str_eq(a[i].uuid, b[i].uuid, "a restarted agent must report the same devices");
		cr_assert_str_neq(a[i].uuid, c[i].uuid);
	}
	free(a);
	free(b);
	free(c);
}

Test(gpu_sim, sixteen_data_centre_gpus_form_two_nvlink_groups)
{
	struct gpu *g;
	int n;
	struct err e;
	cr_assert_eq(gpu_sim_parse("16xH100-80GB", "h", &g, &n, &e), 0);
	cr_assert_eq(g[7].nvlink_group, 0);
	cr_assert_eq(g[8].nvlink_group, 1);
	free(g);
}

Test(gpu_sim, bad_profiles_are_refused_with_the_reason)
{
	const char *bad[] = {"", "8", "x H100-80GB", "0xH100-80GB", "17xH100-80GB", "8xH100", "8xH100-80TB",
			     "2xA100-40GB,", "8xH100-80GB,8xH100-80GB,8xH100-80GB,8xH100-80GB,8xH100-80GB", "1xbad\"name-8GB"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct gpu *g = (struct gpu *)1;
		int n = 7;
		struct err e = {0};
		cr_assert_eq(gpu_sim_parse(bad[i], "h", &g, &n, &e), -1, "accepted \"%s\"", bad[i]);
		cr_assert_eq(e.code, ERR_INVALID);
		cr_assert(strstr(e.msg, "--sim-gpus"), "message for \"%s\": %s", bad[i], e.msg);
		cr_assert_null(g);
		cr_assert_eq(n, 0);
	}
	struct gpu *g;
	int n;
	struct err e;
	cr_assert_eq(gpu_sim_parse("none", "h", &g, &n, &e), 0);
	cr_assert_eq(n, 0);
}
