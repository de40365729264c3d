/* Unit tests of the nvidia-smi CSV fallback, on rows derived from the real
 * `nvidia-smi -q` captures (tests/data/gpu/README.md) and on hand-written
 * edge cases ([N/A], [Not Supported], malformed rows). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_source.h"
#include "gpu_test_data.h"

struct parsed {
	struct gpu *g;
	struct gpu_facts *f;
	struct gpu_smi_reading *r;
	int n;
};

static void parse_fixture(const char *rel, struct parsed *p)
{
	char path[512];
	char *text = gpu_test_slurp(gpu_test_data(rel, path, sizeof path));
	cr_assert_not_null(text, "cannot read %s", path);
	struct err e;
	cr_assert_eq(gpu_smi_parse(text, &p->g, &p->f, &p->r, &p->n, &e), 0, "%s: %s", rel, e.msg);
	free(text);
}

static void parsed_free(struct parsed *p)
{
	free(p->g);
	free(p->f);
	free(p->r);
}

Test(gpu_smi, the_field_list_is_the_one_from_the_research_note)
{
	cr_assert_str_eq(GPU_SMI_QUERY_FIELDS, "index,uuid,name,pci.bus_id,memory.total,memory.used,utilization.gpu,"
					       "temperature.gpu,power.draw,clocks_event_reasons.active,"
					       "ecc.errors.uncorrected.volatile.total");
}

Test(gpu_smi, h100_sxm_x8)
{
	struct parsed p;
	parse_fixture("smi/H100SXMx8.csv", &p);
	cr_assert_eq(p.n, 8);
	for (int i = 0; i < p.n; i++) {
		cr_assert_eq(p.g[i].index, i);
		cr_assert_str_eq(p.g[i].model, "H100-80GB");
		cr_assert_eq(p.g[i].vram_mb, 81559);
		cr_assert_eq(p.g[i].nvlink_group, -1);
		cr_assert_not(p.g[i].simulated);
		cr_assert_eq(strlen(p.g[i].uuid), 40);
		cr_assert_str_eq(p.f[i].name, "NVIDIA H100 80GB HBM3");
		cr_assert_eq(p.r[i].clocks_event, 1, "idle");
		cr_assert_eq(p.r[i].ecc_uncorrected_volatile, 0);
	}
	cr_assert_str_eq(p.g[0].uuid, "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1");
	cr_assert_str_eq(p.f[0].pci_bus_id, "00000000:18:00.0");
	cr_assert_float_eq(p.r[0].power_w, 100.89, 1e-9);
	cr_assert_eq(p.r[0].temp_c, 30);
	cr_assert_str_eq(p.g[0].arch, "", "compute capability is not in the query: unknown");
	parsed_free(&p);
}

Test(gpu_smi, every_capture)
{
	struct {
		const char *file;
		int n;
		const char *model;
		int64_t vram;
	} want[] = {
		{"smi/A100SXMx4.csv", 4, "A100-80GB", 81920},   {"smi/H100NVLx2.csv", 2, "H100-94GB", 95830},
		{"smi/L40S.csv", 1, "L40S-45GB", 46068},         {"smi/RTX4090.csv", 8, "RTX4090-24GB", 24564},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		struct parsed p;
		parse_fixture(want[i].file, &p);
		cr_assert_eq(p.n, want[i].n, "%s", want[i].file);
		cr_assert_str_eq(p.g[0].model, want[i].model, "%s", want[i].file);
		cr_assert_eq(p.g[0].vram_mb, want[i].vram);
		parsed_free(&p);
	}
}

Test(gpu_smi, geforce_without_ecc_reads_na_as_unknown)
{
	struct parsed p;
	parse_fixture("smi/RTX4090.csv", &p);
	for (int i = 0; i < p.n; i++)
		cr_assert_eq(p.r[i].ecc_uncorrected_volatile, -1);
	parsed_free(&p);
}

Test(gpu_smi, not_supported_and_na_everywhere_optional)
{
	struct parsed p;
	struct err e;
	const char *text = "0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA A10, [N/A], 23028, [N/A], "
			   "[Not Supported], [N/A], [Not Supported], [Not Supported], [N/A]\n\n";
	cr_assert_eq(gpu_smi_parse(text, &p.g, &p.f, &p.r, &p.n, &e), 0, "%s", e.msg);
	cr_assert_eq(p.n, 1);
	cr_assert_str_eq(p.g[0].model, "A10-22GB");
	cr_assert_str_eq(p.f[0].pci_bus_id, "");
	cr_assert_eq(p.r[0].util_pct, -1);
	cr_assert_eq(p.r[0].mem_used_mb, -1);
	cr_assert(p.r[0].power_w < 0);
	cr_assert_eq(p.r[0].clocks_event, -1);
	parsed_free(&p);
}

Test(gpu_smi, malformed_rows_fail_and_name_the_line)
{
	struct parsed p;
	struct err e;
	cr_assert_lt(gpu_smi_parse("0, GPU-1, NVIDIA H100, 00:01.0, 81559\n", &p.g, &p.f, &p.r, &p.n, &e), 0);
	cr_assert_eq(e.code, ERR_INVALID);
	cr_assert_not_null(strstr(e.msg, "line 1"), "%s", e.msg);
	cr_assert_null(p.g);
	cr_assert_lt(gpu_smi_parse("\n0, GPU-1, X, b, 10, 1, 1, 1, 1.0, 0x0, 0, extra\n", &p.g, &p.f, &p.r, &p.n, &e), 0);
	cr_assert_not_null(strstr(e.msg, "line 2"), "%s", e.msg);
	cr_assert_lt(gpu_smi_parse("0, GPU-1, X, b, lots, 1, 1, 1, 1.0, 0x0, 0\n", &p.g, &p.f, &p.r, &p.n, &e), 0);
	cr_assert_lt(gpu_smi_parse("0, nouuid, X, b, 10, 1, 1, 1, 1.0, 0x0, 0\n", &p.g, &p.f, &p.r, &p.n, &e), 0);
	cr_assert_eq(gpu_smi_parse("", &p.g, &p.f, &p.r, &p.n, &e), 0);
	cr_assert_eq(p.n, 0);
}

Test(gpu_smi, every_prefix_of_a_capture_parses_or_fails_cleanly)
{
	char path[512];
	char *text = gpu_test_slurp(gpu_test_data("smi/RTX4090.csv", path, sizeof path));
	cr_assert_not_null(text);
	size_t len = strlen(text);
	for (size_t k = 0; k <= len; k++) {
		char *cut = strndup(text, k);
		struct parsed p;
		struct err e;
		if (gpu_smi_parse(cut, &p.g, &p.f, &p.r, &p.n, &e) == 0)
			parsed_free(&p);
		else
			cr_assert_null(p.g);
		free(cut);
	}
	free(text);
}
