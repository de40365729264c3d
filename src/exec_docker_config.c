/* exec_docker_config.c — the container a task gets (exec_docker.h). Pure:
 * builds JSON from the spec, so the isolation defaults are unit-tested
 * without a daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec_docker.h"
#include "util.h"

#define CONTAINER_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Keeps a warm container alive doing nothing, and lets it stop at once. */
static const char *const warm_idle_cmd[] = {"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"};

static json_t *strv_json(char *const *v, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *exec_docker_env(const struct exec_spec *s)
{
	int n;
	char **env = exec_env_build(s, CONTAINER_PATH, EXEC_DOCKER_WORKDIR, &n);
	json_t *a = strv_json(env, n);
	exec_env_free(env);
	return a;
}

static json_t *labels(const struct exec_spec *s, bool warm)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "gpunode.task", warm ? "" : s->task_id, "gpunode.host", s->host,
			      "gpunode.client", s->client ? s->client : "");
	if (warm)
		json_object_set_new(o, "gpunode.warm", json_string("1"));
	return o;
}

/* Simulated GPUs: their stand-in nodes; real ones: the same nodes (the
 * control devices matter there too). The device cgroup allows exactly these. */
static json_t *devices(const struct exec_spec *s)
{
	json_t *a = json_array();
	for (int i = 0; i < s->n_devnodes; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "PathOnHost", s->devnodes[i].host_path,
						   "PathInContainer", s->devnodes[i].container_path, "CgroupPermissions",
						   s->devnodes[i].access));
	return a;
}

/* Real GPUs also go through the nvidia driver, which mounts the driver
 * libraries: exactly the assigned UUIDs. */
static json_t *device_requests(const struct exec_spec *s)
{
	json_t *ids = json_array();
	for (int i = 0; i < s->n_gpus; i++)
		json_array_append_new(ids, json_string(s->gpu_uuids[i]));
	return json_pack("[{s:s, s:o, s:[[s]]}]", "Driver", "nvidia", "DeviceIDs", ids, "Capabilities", "gpu");
}

static json_t *capabilities(void)
{
	static const char *const caps[] = EXEC_DOCKER_CAPS;
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		json_array_append_new(a, json_string(caps[i]));
	return a;
}

static json_t *host_config(const struct exec_spec *s, const char *scratch_dir)
{
	json_t *h = json_object();
	json_object_set_new(h, "Privileged", json_false());
	json_object_set_new(h, "SecurityOpt", json_pack("[s]", "no-new-privileges"));
	json_object_set_new(h, "CapDrop", json_pack("[s]", "ALL"));
	json_object_set_new(h, "CapAdd", capabilities());
	json_object_set_new(h, "IpcMode", json_string("private"));
	/* docker-init as PID 1: a stop's SIGTERM reaches the task (a shell as
	 * PID 1 would ignore it and every stop would wait for the SIGKILL). */
	json_object_set_new(h, "Init", json_true());
	json_object_set_new(h, "NetworkMode", json_string(s->network ? EXEC_DOCKER_NETWORK : "none"));
	json_object_set_new(h, "Mounts", json_pack("[{s:s, s:s, s:s, s:b}]", "Type", "bind", "Source", scratch_dir,
						   "Target", EXEC_DOCKER_WORKDIR, "ReadOnly", 0));
	json_object_set_new(h, "ReadonlyRootfs", json_boolean(s->readonly_rootfs));
	if (s->readonly_rootfs) /* memory, not a host path */
		json_object_set_new(h, "Tmpfs", json_pack("{s:s}", "/tmp", "rw,nosuid,nodev,size=64m"));
	if (s->memory_bytes > 0) {
		json_object_set_new(h, "Memory", json_integer(s->memory_bytes));
		json_object_set_new(h, "MemorySwap", json_integer(s->memory_bytes)); /* no swap on top */
	}
	if (s->cpu_milli > 0)
		json_object_set_new(h, "NanoCpus", json_integer(s->cpu_milli * 1000000));
	json_object_set_new(h, "PidsLimit", json_integer(s->pids_limit > 0 ? s->pids_limit : EXEC_PIDS_DEFAULT));
	json_object_set_new(h, "Devices", devices(s));
	if (s->real_gpus && s->n_gpus > 0)
		json_object_set_new(h, "DeviceRequests", device_requests(s));
	return h;
}

json_t *exec_docker_create_body(const struct exec_spec *s, const char *scratch_dir, bool warm)
{
	json_t *cmd = warm ? strv_json((char *const *)warm_idle_cmd, 3) : strv_json(s->argv, s->argc);
	json_t *o = json_object();
	json_object_set_new(o, "Image", json_string(s->image));
	/* The command replaces the image's entrypoint and cmd both. */
	json_object_set_new(o, "Entrypoint", cmd);
	json_object_set_new(o, "Env", exec_docker_env(s));
	json_object_set_new(o, "WorkingDir", json_string(EXEC_DOCKER_WORKDIR));
	json_object_set_new(o, "Labels", labels(s, warm));
	json_object_set_new(o, "Tty", json_false());
	json_object_set_new(o, "OpenStdin", json_false());
	json_object_set_new(o, "HostConfig", host_config(s, scratch_dir));
	return o;
}

const char *exec_docker_default_socket(void)
{
	const char *h = getenv("DOCKER_HOST");
	if (h && strncmp(h, "unix://", 7) == 0 && h[7])
		return h + 7;
	return "/var/run/docker.sock";
}
