/* Unit tests of the Docker backend's pure parts: the container a task gets
 * (exec_docker_create_body: isolation defaults, limits, devices, env) and
 * the demultiplexer of container output streams. The daemon itself is
 * exercised by tests/integration/test_container_docker*.sh. */
#include <criterion/criterion.h>
#include <string.h>

#include "docker_api.h"
#include "exec_docker.h"

static const char uuids[2][TASK_GPU_UUID_MAX] = {"GPU-aaaa", "GPU-bbbb"};
static struct gpu_devnode nodes[1] = {
	{.host_path = "/state/dev/nvidia1", .container_path = "/dev/nvidia1", .type = 'c', .major = 120, .minor = 17,
	 .file_mode = 0666, .access = "rwm"},
};
static char *argv_[] = {"sh", "-c", "echo hi", NULL};
static char *env_[] = {"MINE=1", "CUDA_VISIBLE_DEVICES=GPU-bbbb", NULL};

static struct exec_spec spec(void)
{
	return (struct exec_spec){.task_id = "0123456789abcdef0123", .host = "h1", .client = "alice", .argv = argv_,
				  .argc = 3, .env = env_, .n_env = 2, .gpu_uuids = uuids, .n_gpus = 1, .milli = 1000,
				  .workdir = "/state/tasks/x", .log_path = "/state/logs/x.log", .image = "busybox:local",
				  .devnodes = nodes, .n_devnodes = 1};
}

static json_t *hc(json_t *body)
{
	return json_object_get(body, "HostConfig");
}

static bool array_has(json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

Test(exec_docker, the_container_is_unprivileged_with_all_but_a_minimal_set_of_capabilities_dropped)
{
	struct exec_spec s = spec();
	json_t *b = exec_docker_create_body(&s, "/state/tasks/x", false);
	cr_assert(json_is_false(json_object_get(hc(b), "Privileged")));
	cr_assert(array_has(json_object_get(hc(b), "SecurityOpt"), "no-new-privileges"));
	cr_assert(array_has(json_object_get(hc(b), "CapDrop"), "ALL"));
	json_t *add = json_object_get(hc(b), "CapAdd");
	cr_assert_eq(json_array_size(add), 5);
	cr_assert(!array_has(add, "NET_RAW") && !array_has(add, "MKNOD") && !array_has(add, "SYS_ADMIN"));
	cr_assert_null(json_object_get(hc(b), "SeccompProfile"), "no seccomp override: the daemon's default applies");
	cr_assert_str_eq(json_string_value(json_object_get(hc(b), "NetworkMode")), "none");
	json_decref(b);
}

Test(exec_docker, the_scratch_dir_is_the_only_host_path)
{
	struct exec_spec s = spec();
	json_t *b = exec_docker_create_body(&s, "/state/tasks/x", false);
	json_t *mounts = json_object_get(hc(b), "Mounts");
	cr_assert_eq(json_array_size(mounts), 1);
	json_t *m = json_array_get(mounts, 0);
	cr_assert_str_eq(json_string_value(json_object_get(m, "Source")), "/state/tasks/x");
	cr_assert_str_eq(json_string_value(json_object_get(m, "Target")), EXEC_DOCKER_WORKDIR);
	cr_assert_null(json_object_get(hc(b), "Binds"));
	cr_assert_str_eq(json_string_value(json_object_get(b, "WorkingDir")), EXEC_DOCKER_WORKDIR);
	json_decref(b);
}

Test(exec_docker, limits_come_from_the_task_and_the_pids_default_applies)
{
	struct exec_spec s = spec();
	s.memory_bytes = 64 << 20;
	s.cpu_milli = 500;
	json_t *b = exec_docker_create_body(&s, "/x", false);
	cr_assert_eq(json_integer_value(json_object_get(hc(b), "Memory")), 64 << 20);
	cr_assert_eq(json_integer_value(json_object_get(hc(b), "MemorySwap")), 64 << 20, "no swap on top");
	cr_assert_eq(json_integer_value(json_object_get(hc(b), "NanoCpus")), 500000000);
	cr_assert_eq(json_integer_value(json_object_get(hc(b), "PidsLimit")), EXEC_PIDS_DEFAULT);
	json_decref(b);
	s.memory_bytes = 0;
	s.pids_limit = 7;
	b = exec_docker_create_body(&s, "/x", false);
	cr_assert_null(json_object_get(hc(b), "Memory"), "0: no memory limit");
	cr_assert_eq(json_integer_value(json_object_get(hc(b), "PidsLimit")), 7);
	json_decref(b);
}

Test(exec_docker, network_and_read_only_root_only_when_asked)
{
	struct exec_spec s = spec();
	s.network = true;
	s.readonly_rootfs = true;
	json_t *b = exec_docker_create_body(&s, "/x", false);
	cr_assert_str_eq(json_string_value(json_object_get(hc(b), "NetworkMode")), EXEC_DOCKER_NETWORK);
	cr_assert(json_is_true(json_object_get(hc(b), "ReadonlyRootfs")));
	cr_assert_not_null(json_object_get(json_object_get(hc(b), "Tmpfs"), "/tmp"));
	json_decref(b);
}

Test(exec_docker, exactly_the_tasks_device_nodes_and_gpu_variables_it_cannot_override)
{
	struct exec_spec s = spec();
	json_t *b = exec_docker_create_body(&s, "/x", false);
	json_t *devs = json_object_get(hc(b), "Devices");
	cr_assert_eq(json_array_size(devs), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(devs, 0), "PathOnHost")), "/state/dev/nvidia1");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(devs, 0), "PathInContainer")), "/dev/nvidia1");
	cr_assert_null(json_object_get(hc(b), "DeviceRequests"), "simulated GPUs: no nvidia driver request");
	json_t *env = json_object_get(b, "Env");
	cr_assert(array_has(env, "CUDA_VISIBLE_DEVICES=GPU-aaaa"));
	cr_assert(array_has(env, "NVIDIA_VISIBLE_DEVICES=GPU-aaaa"));
	cr_assert(!array_has(env, "CUDA_VISIBLE_DEVICES=GPU-bbbb"), "the task's own value is dropped");
	cr_assert(array_has(env, "MINE=1"));
	json_t *labels = json_object_get(b, "Labels");
	cr_assert_str_eq(json_string_value(json_object_get(labels, "gpunode.task")), s.task_id);
	cr_assert_str_eq(json_string_value(json_object_get(labels, "gpunode.host")), "h1");
	json_decref(b);
	s.real_gpus = true;
	b = exec_docker_create_body(&s, "/x", false);
	json_t *req = json_array_get(json_object_get(hc(b), "DeviceRequests"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(req, "Driver")), "nvidia");
	cr_assert(array_has(json_object_get(req, "DeviceIDs"), "GPU-aaaa"));
	cr_assert_eq(json_array_size(json_object_get(req, "DeviceIDs")), 1);
	json_decref(b);
}

static char out[256];
static size_t out_len;

static void collect(const char *data, size_t len, void *arg)
{
	memcpy(out + out_len, data, len);
	out_len += len;
}

Test(exec_docker, demux_strips_frame_headers_split_anywhere)
{
	/* stdout "hello\n" then stderr "err\n" */
	const char stream[] = "\x01\0\0\0\0\0\0\x06hello\n\x02\0\0\0\0\0\0\x04" "err\n";
	size_t n = sizeof stream - 1;
	for (size_t cut = 0; cut <= n; cut++) {
		struct docker_demux d = {0};
		out_len = 0;
		docker_demux_feed(&d, stream, cut, collect, NULL);
		docker_demux_feed(&d, stream + cut, n - cut, collect, NULL);
		cr_assert_eq(out_len, 10, "cut at %zu", cut);
		cr_assert(memcmp(out, "hello\nerr\n", 10) == 0, "cut at %zu", cut);
	}
}
