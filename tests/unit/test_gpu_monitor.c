/* Unit tests of the agent's GPU monitor without its threads' timing: bus-id
 * matching between NVML's and the kernel's spellings, kernel-log lines fed
 * to the real parser and health machine (mapping to the right GPU, bursts
 * counted once, replayed /dev/kmsg records skipped, lines for other buses
 * ignored), drills, operator clears with their generation, and the state
 * file across a restart in the same boot and after a reboot. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu.h"
#include "gpu_monitor.h"

static char dir[64], boot_path[96], state_path[96];
static struct gpu *gpus;
static int n_gpus;
static int changes;

static void count_change(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&changes, 1, __ATOMIC_SEQ_CST);
}

static void write_boot(const char *id)
{
	FILE *f = fopen(boot_path, "w");
	cr_assert(f);
	fprintf(f, "%s\n", id);
	fclose(f);
}

static void setup(void)
{
	strcpy(dir, "/tmp/gpunode-mon-XXXXXX");
	cr_assert(mkdtemp(dir));
	snprintf(boot_path, sizeof boot_path, "%s/boot_id", dir);
	snprintf(state_path, sizeof state_path, "%s/gpu-health.json", dir);
	write_boot("boot-a");
	struct err e;
	cr_assert_eq(gpu_sim_parse("2xH100-80GB", "h", &gpus, &n_gpus, &e), 0);
	changes = 0;
}

static void teardown(void)
{
	free(gpus);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(gpu_monitor, .init = setup, .fini = teardown);

static struct gpu_monitor *start(void)
{
	struct gpu_monitor_config c = {.gpus = gpus, .n_gpus = n_gpus, .boot_id_path = boot_path,
				       .state_path = state_path, .sample_ms = 60000, .on_change = count_change};
	gpu_health_cfg_default(&c.health);
	struct gpu_monitor *m;
	struct err e;
	cr_assert_eq(gpu_monitor_start(&c, &m, &e), 0, "%s", e.msg);
	return m;
}

/* The field of GPU uuid in the monitor's report. */
static const char *field(struct gpu_monitor *m, const char *uuid, const char *key, char *buf, size_t cap)
{
	uint64_t v;
	json_t *r = gpu_monitor_report(m, &v), *g;
	size_t i;
	buf[0] = '\0';
	json_array_foreach(json_object_get(r, "gpus"), i, g)
		if (strcmp(json_string_value(json_object_get(g, "uuid")), uuid) == 0) {
			json_t *f = json_object_get(g, key);
			if (json_is_string(f))
				snprintf(buf, cap, "%s", json_string_value(f));
			else
				snprintf(buf, cap, "%lld", (long long)json_integer_value(f));
		}
	json_decref(r);
	return buf;
}

Test(gpu_monitor, pci_ids_match_across_spellings)
{
	cr_assert(gpu_pci_same("00000000:1B:00.0", "0000:1b:00"));
	cr_assert(gpu_pci_same("0000:1b:00", "00000000:1B:00.0"));
	cr_assert(!gpu_pci_same("00000000:1B:00.0", "0000:1c:00"));
	cr_assert(!gpu_pci_same("00000001:1B:00.0", "0000:1b:00"));
	cr_assert(!gpu_pci_same("", "0000:1b:00"));
	cr_assert(!gpu_pci_same("zz:1b:00", "0000:1b:00"));
}

Test(gpu_monitor, xid_line_maps_to_its_gpu_by_bus_id)
{
	struct gpu_monitor *m = start();
	char b[200];
	/* gpu_sim gives index i the bus 0x10 + i. */
	cr_assert_eq(gpu_monitor_feed_line(m, "[ 9.1] NVRM: Xid (PCI:0000:11:00): 79, pid=0, GPU has fallen off the bus."), 1);
	cr_assert_str_eq(field(m, gpus[1].uuid, "health", b, sizeof b), "unhealthy");
	cr_assert_str_eq(field(m, gpus[0].uuid, "health", b, sizeof b), "healthy");
	cr_assert(strstr(field(m, gpus[1].uuid, "reason", b, sizeof b), "Xid 79"));
	cr_assert_str_eq(field(m, gpus[1].uuid, "action", b, sizeof b), "reboot_host");
	cr_assert_eq(changes, 1);
	gpu_monitor_stop(m);
}

Test(gpu_monitor, other_lines_and_other_buses_change_nothing)
{
	struct gpu_monitor *m = start();
	char b[200];
	cr_assert_eq(gpu_monitor_feed_line(m, "[ 9.1] usb 1-1: new high-speed USB device"), 0);
	cr_assert_eq(gpu_monitor_feed_line(m, "[ 9.1] NVRM: Xid (PCI:0000:ee:00): 79, pid=0, off the bus"), 0);
	cr_assert_str_eq(field(m, gpus[0].uuid, "health", b, sizeof b), "healthy");
	cr_assert_str_eq(field(m, gpus[1].uuid, "health", b, sizeof b), "healthy");
	cr_assert_eq(changes, 0);
	gpu_monitor_stop(m);
}

Test(gpu_monitor, a_burst_counts_once_and_replayed_records_are_skipped)
{
	struct gpu_monitor *m = start();
	const char *rec = "3,500,1000,-;NVRM: Xid (PCI:0000:10:00): 13, pid=1, name=x, Graphics Exception";
	cr_assert_eq(gpu_monitor_feed_line(m, rec), 1);
	cr_assert_eq(gpu_monitor_feed_line(m, rec), 0, "the same /dev/kmsg record (seq 500) again");
	cr_assert_eq(gpu_monitor_feed_line(m, "3,501,1001,-;NVRM: Xid (PCI:0000:10:00): 13, pid=1, name=x, again"), 1);
	uint64_t v;
	json_t *r = gpu_monitor_report(m, &v);
	json_t *g = json_array_get(json_object_get(r, "gpus"), 0);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(g, "xid_errors"), "13")), 1,
		     "two records within the burst window are one event");
	cr_assert_str_eq(json_string_value(json_object_get(g, "health")), "degraded");
	json_decref(r);
	gpu_monitor_stop(m);
}

Test(gpu_monitor, drill_on_simulated_gpu_and_clear)
{
	struct gpu_monitor *m = start();
	char b[200];
	struct err e;
	cr_assert_eq(gpu_monitor_inject(m, gpus[0].uuid, 48, &e), 0, "%s", e.msg);
	cr_assert_str_eq(field(m, gpus[0].uuid, "health", b, sizeof b), "unhealthy");
	cr_assert(strstr(field(m, gpus[0].uuid, "reason", b, sizeof b), "Xid 48"));
	cr_assert_eq(gpu_monitor_clear(m, gpus[0].uuid, 3, &e), 0);
	cr_assert_str_eq(field(m, gpus[0].uuid, "health", b, sizeof b), "healthy");
	cr_assert_str_eq(field(m, gpus[0].uuid, "clear_gen", b, sizeof b), "3");
	/* Right after the clear, the same Xid is a new incident. */
	cr_assert_eq(gpu_monitor_inject(m, gpus[0].uuid, 48, &e), 0);
	cr_assert_str_eq(field(m, gpus[0].uuid, "health", b, sizeof b), "unhealthy");
	cr_assert_eq(gpu_monitor_inject(m, "GPU-none", 48, &e), -1);
	cr_assert_eq(e.code, ERR_NOT_FOUND);
	gpu_monitor_stop(m);
}

Test(gpu_monitor, unhealthy_survives_a_restart_and_clears_after_a_reboot)
{
	struct gpu_monitor *m = start();
	char b[200];
	cr_assert_eq(gpu_monitor_feed_line(m, "[ 9.1] NVRM: Xid (PCI:0000:10:00): 79, pid=0, off the bus"), 1);
	gpu_monitor_stop(m);

	m = start(); /* same boot */
	cr_assert_str_eq(field(m, gpus[0].uuid, "health", b, sizeof b), "unhealthy");
	cr_assert_str_eq(field(m, gpus[0].uuid, "xid_errors", b, sizeof b), "0"); /* an object, not a number */
	gpu_monitor_stop(m);

	write_boot("boot-b");
	m = start();
	cr_assert_str_eq(field(m, gpus[0].uuid, "health", b, sizeof b), "healthy");
	gpu_monitor_stop(m);
}

Test(gpu_monitor, a_corrupt_state_file_is_ignored)
{
	FILE *f = fopen(state_path, "w");
	cr_assert(f);
	fputs("{not json", f);
	fclose(f);
	struct gpu_monitor *m = start();
	char b[200];
	cr_assert_str_eq(field(m, gpus[0].uuid, "health", b, sizeof b), "healthy");
	gpu_monitor_stop(m);
}
