/* Unit tests of kernel-log Xid parsing and the Xid table, on every line of
 * the kernel-log fixtures in tests/data/gpu/kmsg/ (from gpud). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_source.h"
#include "gpu_test_data.h"

/* Parses every line of a fixture; returns lines seen, *xids the Xid hits. */
static int parse_file(const char *rel, int *xids, int *counts_by_xid, int cap)
{
	char path[512];
	char *text = gpu_test_slurp(gpu_test_data(rel, path, sizeof path));
	cr_assert_not_null(text, "cannot read %s", path);
	int lines = 0;
	*xids = 0;
	char *rest = text, *line;
	while ((line = strsep(&rest, "\n"))) {
		if (!*line)
			continue;
		lines++;
		struct gpu_xid_event ev;
		if (gpu_xid_parse_line(line, &ev)) {
			(*xids)++;
			cr_assert_gt(ev.xid, 0);
			cr_assert(ev.pci[0], "no bus id in: %s", line);
			if (counts_by_xid && ev.xid < cap)
				counts_by_xid[ev.xid]++;
		}
	}
	free(text);
	return lines;
}

Test(gpu_xid, every_line_of_gpud_xid_test_lines)
{
	int xids, by[200] = {0};
	int lines = parse_file("kmsg/xid_lines_from_tests.txt", &xids, by, 200);
	cr_assert_eq(lines, 96);
	/* All but "Xid (invalid)" and "Xid (...): %d," parse. */
	cr_assert_eq(xids, 94, "xids %d", xids);
	cr_assert_eq(by[79], 4);
	cr_assert_eq(by[31], 7, "Xid 31 lines saying 'fallen off the bus' stay Xid 31");
	cr_assert_eq(by[149], 27, "got %d", by[149]);
}

Test(gpu_xid, dmesg_with_xid_119)
{
	int xids;
	int lines = parse_file("kmsg/components_accelerator_nvidia_xid_testdata_dmesg-with-xid-119.log", &xids, NULL, 0);
	cr_assert_eq(lines, 43);
	cr_assert_eq(xids, 5);
}

Test(gpu_xid, kmsg_records_without_xids_and_sxid_lines_are_not_xids)
{
	int xids;
	cr_assert_eq(parse_file("kmsg/pkg_kmsg_testdata_kmsg.1.log", &xids, NULL, 0), 47);
	cr_assert_eq(xids, 0);
	cr_assert_eq(parse_file("kmsg/sxid_lines_from_src.txt", &xids, NULL, 0), 20);
	cr_assert_eq(xids, 0, "SXid (NVSwitch) lines are a different family");
}

Test(gpu_xid, kmsg_record_fields)
{
	struct gpu_xid_event ev;
	cr_assert_eq(gpu_xid_parse_line("3,4021,9184121699,-;NVRM: Xid (PCI:0000:9B:00): 119, pid=2024380, "
					"name=nvidia-smi, Timeout after 6s",
					&ev),
		     1);
	cr_assert_eq(ev.xid, 119);
	cr_assert_str_eq(ev.pci, "0000:9b:00");
	cr_assert_eq(ev.seq, 4021);
	cr_assert_eq(ev.ts_us, 9184121699LL);
	cr_assert_str_eq(ev.detail, "pid=2024380, name=nvidia-smi, Timeout after 6s");
	cr_assert_eq(gpu_xid_parse_line("[ 12.5] NVRM: Xid (PCI:0000:01:00): 13, Graphics Exception", &ev), 1);
	cr_assert_eq(ev.seq, -1);
	cr_assert_eq(ev.xid, 13);
}

Test(gpu_xid, fallen_off_the_bus_without_xid_is_79)
{
	struct gpu_xid_event ev;
	cr_assert_eq(gpu_xid_parse_line("4,812,3333,-;NVRM: GPU at PCI:0000:3b:00: GPU has fallen off the bus.", &ev), 1);
	cr_assert_eq(ev.xid, 79);
	cr_assert_str_eq(ev.pci, "0000:3b:00");
	cr_assert_eq(gpu_xid_parse_line("NVRM: Xid (invalid): GPU has fallen off the bus", &ev), 0);
	cr_assert_eq(gpu_xid_parse_line("", &ev), 0);
	cr_assert_eq(gpu_xid_parse_line("6,1,2,-;", &ev), 0);
	cr_assert_eq(gpu_xid_parse_line("NVRM: Xid (PCI:0000:01:00): 99999999999999999999, x", &ev), 0);
}

Test(gpu_xid, classes_follow_gpud)
{
	struct {
		int xid;
		enum gpu_health sev;
		enum gpu_action act;
	} want[] = {
		{79, GPU_UNHEALTHY, GPU_ACTION_REBOOT},       {48, GPU_UNHEALTHY, GPU_ACTION_REBOOT},
		{81, GPU_UNHEALTHY, GPU_ACTION_HW_INSPECTION}, {143, GPU_UNHEALTHY, GPU_ACTION_HW_INSPECTION},
		{13, GPU_DEGRADED, GPU_ACTION_CHECK_APP},     {31, GPU_DEGRADED, GPU_ACTION_CHECK_APP},
		{45, GPU_HEALTHY, GPU_ACTION_NONE},           {92, GPU_HEALTHY, GPU_ACTION_NONE},
		{149, GPU_DEGRADED, GPU_ACTION_REBOOT},       {94, GPU_UNHEALTHY, GPU_ACTION_REBOOT},
		{99999, GPU_DEGRADED, GPU_ACTION_CHECK_APP},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const struct gpu_xid_info *x = gpu_xid_lookup(want[i].xid);
		cr_assert_eq(x->severity, want[i].sev, "xid %d", want[i].xid);
		cr_assert_eq(x->action, want[i].act, "xid %d", want[i].xid);
	}
	cr_assert(gpu_xid_lookup(79)->then_hw);
	cr_assert_str_eq(gpu_xid_lookup(79)->description, "GPU has fallen off the bus");
	/* gpud's lists from gpu-health.md, checked against the generated table. */
	int fatal_reboot[] = {9, 12, 16, 18, 19, 26, 27, 28, 29, 30, 33, 34, 35, 36, 42, 46, 47, 59, 60, 61, 78};
	for (size_t i = 0; i < sizeof fatal_reboot / sizeof fatal_reboot[0]; i++) {
		const struct gpu_xid_info *x = gpu_xid_lookup(fatal_reboot[i]);
		cr_assert(x->severity == GPU_UNHEALTHY && x->action == GPU_ACTION_REBOOT && !x->then_hw, "xid %d",
			  fatal_reboot[i]);
	}
	int reboot_then_hw[] = {32, 38, 44, 48, 62, 63, 64, 65, 68, 69, 74, 79, 95, 110, 119, 120, 121, 123, 140};
	for (size_t i = 0; i < sizeof reboot_then_hw / sizeof reboot_then_hw[0]; i++) {
		const struct gpu_xid_info *x = gpu_xid_lookup(reboot_then_hw[i]);
		cr_assert(x->severity == GPU_UNHEALTHY && x->action == GPU_ACTION_REBOOT && x->then_hw, "xid %d",
			  reboot_then_hw[i]);
	}
	for (int i = 1; i < gpu_xid_table_len; i++)
		cr_assert_lt(gpu_xid_table[i - 1].xid, gpu_xid_table[i].xid, "table must stay sorted");
}

Test(gpu_xid, every_fixture_xid_gets_a_class)
{
	char path[512];
	char *text = gpu_test_slurp(gpu_test_data("kmsg/xid_lines_from_tests.txt", path, sizeof path));
	cr_assert_not_null(text);
	int per_sev[3] = {0}, n = 0;
	char *rest = text, *line;
	while ((line = strsep(&rest, "\n"))) {
		struct gpu_xid_event ev;
		if (!gpu_xid_parse_line(line, &ev))
			continue;
		const struct gpu_xid_info *x = gpu_xid_lookup(ev.xid);
		cr_assert_not_null(x->description);
		per_sev[x->severity]++;
		n++;
	}
	free(text);
	cr_assert_eq(n, 94);
	cr_assert_eq(per_sev[0] + per_sev[1] + per_sev[2], 94);
	cr_log_info("fixture Xids: %d healthy/ignore, %d degraded, %d unhealthy", per_sev[0], per_sev[1], per_sev[2]);
}

Test(gpu_xid, every_prefix_of_every_fixture_line_is_safe)
{
	/* Truncated records (kmsg buffer overwrites, partial reads) must never
	 * read past the end; ASan builds check that. */
	const char *files[] = {"kmsg/xid_lines_from_tests.txt", "kmsg/pkg_kmsg_testdata_kmsg.1.log",
			       "kmsg/components_accelerator_nvidia_xid_testdata_dmesg-with-xid-119.log"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[512];
		char *text = gpu_test_slurp(gpu_test_data(files[i], path, sizeof path));
		cr_assert_not_null(text);
		char *rest = text, *line;
		while ((line = strsep(&rest, "\n"))) {
			size_t len = strlen(line);
			for (size_t k = 0; k <= len; k++) {
				char *cut = strndup(line, k);
				struct gpu_xid_event ev;
				gpu_xid_parse_line(cut, &ev);
				free(cut);
			}
		}
		free(text);
	}
}
