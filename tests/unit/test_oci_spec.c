/* Unit tests of the OCI spec generator: the isolation defaults and what the
 * task may change. (That runc and crun accept it, and enforce it, is shown
 * by tests/integration/test_container_oci*.sh.) */
#include <criterion/criterion.h>
#include <string.h>

#include "oci_spec.h"

static char *argv_[] = {"sh", "-c", "true", NULL};
static char *env_[] = {"PATH=/bin", "A=1", NULL};

static struct oci_spec_input input(void)
{
	return (struct oci_spec_input){
		.task_id = "0000000000aa00000001",
		.host = "host-a",
		.argv = argv_,
		.env = env_,
		.rootfs = "rootfs",
		.scratch_dir = "/var/lib/gpunode/agent/tasks/0000000000aa00000001",
		.cgroups_path = "/gpunode/host-a-0000000000aa00000001",
	};
}

static json_t *build(const struct oci_spec_input *in)
{
	struct err e;
	json_t *s = oci_spec_build(in, &e);
	cr_assert_not_null(s, "%s", e.msg);
	return s;
}

static json_t *at(json_t *v, const char *path)
{
	char buf[128];
	strcpy(buf, path);
	for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	return v;
}

static bool array_has_string(json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

static bool has_namespace(json_t *spec, const char *type)
{
	size_t i;
	json_t *v;
	json_array_foreach(at(spec, "linux.namespaces"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "type")), type) == 0)
			return true;
	return false;
}

Test(oci_spec, isolation_defaults)
{
	struct oci_spec_input in = input();
	json_t *s = build(&in);
	cr_assert(json_is_true(at(s, "process.noNewPrivileges")));
	json_t *eff = at(s, "process.capabilities.effective");
	cr_assert_eq(json_array_size(eff), 8);
	cr_assert(array_has_string(eff, "CAP_KILL"));
	cr_assert_not(array_has_string(eff, "CAP_SYS_ADMIN"));
	cr_assert_not(array_has_string(eff, "CAP_MKNOD"), "no mknod: a task cannot make another GPU's node");
	cr_assert_not(array_has_string(eff, "CAP_NET_RAW"));
	cr_assert_eq(json_array_size(at(s, "process.capabilities.ambient")), 0);
	const char *ns[] = {"pid", "mount", "ipc", "uts", "cgroup", "network"};
	for (size_t i = 0; i < 6; i++)
		cr_assert(has_namespace(s, ns[i]), "no %s namespace", ns[i]);
	cr_assert(array_has_string(at(s, "linux.maskedPaths"), "/proc/kcore"));
	cr_assert(array_has_string(at(s, "linux.readonlyPaths"), "/proc/sys"));
	json_t *rule = json_array_get(at(s, "linux.seccomp.syscalls"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(rule, "action")), "SCMP_ACT_ERRNO");
	cr_assert(array_has_string(json_object_get(rule, "names"), "mount"));
	cr_assert(array_has_string(json_object_get(rule, "names"), "open_by_handle_at"));
	json_t *ann = json_object_get(s, "annotations");
	cr_assert_str_eq(json_string_value(json_object_get(ann, OCI_ANNOTATION_TASK)), in.task_id);
	cr_assert_str_eq(json_string_value(json_object_get(ann, OCI_ANNOTATION_HOST)), "host-a");
	cr_assert_str_eq(json_string_value(at(s, "process.cwd")), OCI_SCRATCH_PATH);
	cr_assert_str_eq(json_string_value(at(s, "linux.cgroupsPath")), in.cgroups_path);
	cr_assert(json_is_false(at(s, "root.readonly")));
	cr_assert_null(at(s, "linux.resources.memory"), "no limit unless asked");
	json_decref(s);
}

Test(oci_spec, scratch_is_the_only_host_path)
{
	struct oci_spec_input in = input();
	json_t *s = build(&in);
	size_t i;
	json_t *m;
	int binds = 0;
	json_array_foreach(json_object_get(s, "mounts"), i, m) {
		if (strcmp(json_string_value(json_object_get(m, "type")), "bind") != 0)
			continue;
		binds++;
		cr_assert_str_eq(json_string_value(json_object_get(m, "source")), in.scratch_dir);
		cr_assert_str_eq(json_string_value(json_object_get(m, "destination")), OCI_SCRATCH_PATH);
	}
	cr_assert_eq(binds, 1);
	json_decref(s);
}

Test(oci_spec, limits_network_and_readonly_root_from_the_task)
{
	struct oci_spec_input in = input();
	in.memory_bytes = 64 << 20;
	in.cpu_milli = 1500;
	in.pids_limit = 100;
	in.network = true;
	in.readonly_rootfs = true;
	json_t *s = build(&in);
	cr_assert_eq(json_integer_value(at(s, "linux.resources.memory.limit")), 64 << 20);
	cr_assert_eq(json_integer_value(at(s, "linux.resources.memory.swap")), 64 << 20);
	cr_assert_eq(json_integer_value(at(s, "linux.resources.cpu.quota")), 150000);
	cr_assert_eq(json_integer_value(at(s, "linux.resources.cpu.period")), 100000);
	cr_assert_eq(json_integer_value(at(s, "linux.resources.pids.limit")), 100);
	cr_assert_not(has_namespace(s, "network"), "asked for the network: the host's");
	cr_assert(has_namespace(s, "pid"));
	cr_assert(json_is_true(at(s, "root.readonly")));
	json_decref(s);
}

Test(oci_spec, devices_are_exactly_the_tasks_gpus)
{
	struct gpu_devnode nodes[2] = {
		{.container_path = "/dev/nvidia1", .type = 'c', .major = 120, .minor = 33, .file_mode = 0666,
		 .access = "rwm"},
		{.container_path = "/dev/nvidia3", .type = 'c', .major = 120, .minor = 35, .file_mode = 0666,
		 .access = "rwm"},
	};
	struct oci_spec_input in = input();
	in.devnodes = nodes;
	in.n_devnodes = 2;
	json_t *s = build(&in);
	json_t *devs = at(s, "linux.devices");
	cr_assert_eq(json_array_size(devs), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(devs, 1), "path")), "/dev/nvidia3");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(devs, 1), "fileMode")), 0666);
	json_t *rules = at(s, "linux.resources.devices");
	json_t *first = json_array_get(rules, 0);
	cr_assert(json_is_false(json_object_get(first, "allow")), "deny all comes first");
	cr_assert_null(json_object_get(first, "major"));
	int gpu_rules = 0;
	size_t i;
	json_t *r;
	json_array_foreach(rules, i, r)
		if (json_integer_value(json_object_get(r, "major")) == 120) {
			cr_assert(json_is_true(json_object_get(r, "allow")));
			gpu_rules++;
		}
	cr_assert_eq(gpu_rules, 2, "one allow rule per GPU node, no wildcard on the stand-in major");
	json_decref(s);
}

Test(oci_spec, bad_input_is_refused)
{
	struct oci_spec_input in = input();
	char *empty[] = {NULL};
	in.argv = empty;
	struct err e;
	cr_assert_null(oci_spec_build(&in, &e));
	cr_assert_not_null(strstr(e.msg, "command"));
	in = input();
	in.memory_bytes = -1;
	cr_assert_null(oci_spec_build(&in, &e));
	in = input();
	in.rootfs = NULL;
	cr_assert_null(oci_spec_build(&in, &e));
}
