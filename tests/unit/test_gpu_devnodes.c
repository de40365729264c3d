/* Unit tests of gpu_devnodes: stand-in nodes made with the real mknod, the
 * node list for simulated and real GPUs, /proc/devices and CDI parsing from
 * files written here. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gpu_devnodes.h"
#include "util.h"

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/gpunode-devnodes-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(devnodes, .init = setup, .fini = teardown);

static struct gpu gpu_at(const char *uuid, int index, bool simulated)
{
	struct gpu g = {.index = index, .simulated = simulated};
	str_copy(g.uuid, sizeof g.uuid, uuid);
	return g;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(devnodes, standin_numbers_distinct_per_index_and_host)
{
	unsigned ma, mi0, mi1, mj0;
	gpu_devnodes_standin_numbers("host-a", 0, &ma, &mi0);
	cr_assert_eq(ma, GPU_STANDIN_MAJOR);
	gpu_devnodes_standin_numbers("host-a", 1, &ma, &mi1);
	gpu_devnodes_standin_numbers("host-b", 0, &ma, &mj0);
	cr_assert_eq(mi1, mi0 + 1);
	cr_assert_neq(mi0, mj0, "two hosts on one machine should not share stand-in numbers");
	cr_assert_lt(mi0, 1u << 20, "minor must fit the kernel's 20 bits");
}

Test(devnodes, creates_standins_for_simulated_gpus_only)
{
	struct gpu gpus[] = {gpu_at("GPU-s0", 0, true), gpu_at("GPU-r1", 1, false), gpu_at("GPU-s2", 2, true)};
	struct err e;
	cr_assert_eq(gpu_devnodes_create_standins(dir, "h", gpus, 3, &e), 0, "%s", e.msg);
	/* A second call (agent restart) is a no-op, not an error. */
	cr_assert_eq(gpu_devnodes_create_standins(dir, "h", gpus, 3, &e), 0, "%s", e.msg);
	char path[128];
	struct stat st;
	unsigned major, minor;
	snprintf(path, sizeof path, "%s/nvidia2", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISCHR(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0666);
	gpu_devnodes_standin_numbers("h", 2, &major, &minor);
	cr_assert_eq(major(st.st_rdev), major);
	cr_assert_eq(minor(st.st_rdev), minor);
	snprintf(path, sizeof path, "%s/nvidia1", dir);
	cr_assert_neq(stat(path, &st), 0, "no stand-in for a real GPU");
}

Test(devnodes, replaces_a_node_with_stale_numbers)
{
	char path[128];
	snprintf(path, sizeof path, "%s/nvidia0", dir);
	write_text(path, "not a device");
	struct gpu g = gpu_at("GPU-s0", 0, true);
	struct err e;
	cr_assert_eq(gpu_devnodes_create_standins(dir, "h", &g, 1, &e), 0, "%s", e.msg);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISCHR(st.st_mode));
}

Test(devnodes, simulated_task_gets_exactly_its_standins)
{
	struct gpu gpus[] = {gpu_at("GPU-s0", 0, true), gpu_at("GPU-s1", 1, true), gpu_at("GPU-s2", 2, true)};
	const char uuids[2][TASK_GPU_UUID_MAX] = {"GPU-s2", "GPU-s0"};
	struct gpu_devnode out[GPU_DEVNODES_MAX];
	int n;
	struct err e;
	cr_assert_eq(gpu_devnodes_for_task(gpus, 3, uuids, 2, "h", "/sd", NULL, out, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2, "no control nodes for simulated GPUs");
	cr_assert_str_eq(out[0].container_path, "/dev/nvidia2");
	cr_assert_str_eq(out[0].host_path, "/sd/nvidia2");
	cr_assert_str_eq(out[1].container_path, "/dev/nvidia0");
	cr_assert_eq(out[0].major, GPU_STANDIN_MAJOR);
	cr_assert_neq(out[0].minor, out[1].minor);
	cr_assert_eq(out[0].type, 'c');
	cr_assert_str_eq(out[0].access, "rwm");
}

Test(devnodes, real_task_gets_195_and_control_nodes_with_uvm_from_proc_devices)
{
	char devices[128];
	snprintf(devices, sizeof devices, "%s/devices", dir);
	write_text(devices, "Character devices:\n  1 mem\n195 nvidia-frontend\n235 nvidia-uvm\n\nBlock devices:\n"
			    "  7 loop\n");
	struct gpu gpus[] = {gpu_at("GPU-r0", 0, false), gpu_at("GPU-r3", 3, false)};
	const char uuids[1][TASK_GPU_UUID_MAX] = {"GPU-r3"};
	struct gpu_devnode out[GPU_DEVNODES_MAX];
	int n;
	struct err e;
	cr_assert_eq(gpu_devnodes_for_task(gpus, 2, uuids, 1, "h", "/sd", devices, out, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(out[0].host_path, "/dev/nvidia3");
	cr_assert_eq(out[0].major, 195);
	cr_assert_eq(out[0].minor, 3);
	cr_assert_str_eq(out[1].container_path, "/dev/nvidiactl");
	cr_assert_eq(out[1].minor, 255);
	cr_assert_str_eq(out[2].container_path, "/dev/nvidia-uvm");
	cr_assert_eq(out[2].major, 235);
	cr_assert_eq(out[3].minor, 1);
}

Test(devnodes, uvm_left_out_when_driver_not_loaded)
{
	char devices[128];
	snprintf(devices, sizeof devices, "%s/devices", dir);
	/* A block device of that name must not be mistaken for the char driver. */
	write_text(devices, "Character devices:\n195 nvidia-frontend\nBlock devices:\n235 nvidia-uvm\n");
	struct gpu g = gpu_at("GPU-r0", 0, false);
	const char uuids[1][TASK_GPU_UUID_MAX] = {"GPU-r0"};
	struct gpu_devnode out[GPU_DEVNODES_MAX];
	int n;
	struct err e;
	cr_assert_eq(gpu_devnodes_for_task(&g, 1, uuids, 1, "h", "/sd", devices, out, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2);
}

Test(devnodes, unknown_uuid_is_refused)
{
	struct gpu g = gpu_at("GPU-s0", 0, true);
	const char uuids[1][TASK_GPU_UUID_MAX] = {"GPU-elsewhere"};
	struct gpu_devnode out[GPU_DEVNODES_MAX];
	int n;
	struct err e;
	cr_assert_eq(gpu_devnodes_for_task(&g, 1, uuids, 1, "h", "/sd", NULL, out, &n, &e), -1);
	cr_assert_eq(e.code, ERR_INVALID);
	cr_assert_not_null(strstr(e.msg, "GPU-elsewhere"));
}

Test(devnodes, cdi_mounts_from_nvidia_json_specs_only)
{
	char path[128];
	snprintf(path, sizeof path, "%s/nvidia.json", dir);
	write_text(path, "{\"cdiVersion\":\"0.5.0\",\"kind\":\"nvidia.com/gpu\",\"devices\":[],"
			 "\"containerEdits\":{\"mounts\":[{\"hostPath\":\"/usr/lib/x86_64-linux-gnu/libcuda.so.535\","
			 "\"containerPath\":\"/usr/lib/x86_64-linux-gnu/libcuda.so.535\",\"options\":[\"ro\"]},"
			 "{\"hostPath\":\"/usr/bin/nvidia-smi\",\"containerPath\":\"/usr/bin/nvidia-smi\"}]}}");
	snprintf(path, sizeof path, "%s/other.json", dir);
	write_text(path, "{\"kind\":\"vendor.com/fpga\",\"containerEdits\":{\"mounts\":[{\"hostPath\":\"/x\","
			 "\"containerPath\":\"/x\"}]}}");
	snprintf(path, sizeof path, "%s/nvidia.yaml", dir);
	write_text(path, "kind: nvidia.com/gpu\n");
	struct gpu_mount *m;
	int n;
	struct err e;
	cr_assert_eq(gpu_cdi_mounts(dir, &m, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(m[1].container_path, "/usr/bin/nvidia-smi");
	gpu_mounts_free(m, n);
}

Test(devnodes, cdi_bad_spec_is_a_clear_error)
{
	char path[128];
	snprintf(path, sizeof path, "%s/nvidia.json", dir);
	write_text(path, "{\"kind\":\"nvidia.com/gpu\",\"containerEdits\":{\"mounts\":[{\"hostPath\":\"relative\","
			 "\"containerPath\":\"/x\"}]}}");
	struct gpu_mount *m;
	int n;
	struct err e;
	cr_assert_eq(gpu_cdi_mounts(dir, &m, &n, &e), -1);
	cr_assert_not_null(strstr(e.msg, "absolute"), "%s", e.msg);
	snprintf(path, sizeof path, "%s/missing", dir);
	cr_assert_eq(gpu_cdi_mounts(path, &m, &n, &e), 0, "a missing CDI dir means no spec");
	cr_assert_eq(n, 0);
}
