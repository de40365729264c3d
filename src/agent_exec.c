/* agent_exec.c — see agent_exec.h. */
#include "agent_exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec_docker.h"
#include "exec_oci.h"
#include "util.h"

static bool is_container_backend(const struct exec_backend *b)
{
	return strcmp(b->name, "process") != 0;
}

/* True when an executable named name is on PATH (or in the sbin dirs, where
 * Debian puts runc). */
static bool program_installed(const char *name)
{
	const char *path = getenv("PATH");
	char dirs[2048], file[2300];
	snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof file, "%s/%s", d, name);
		if (access(file, X_OK) == 0)
			return true;
	}
	return false;
}

/* runc or crun, whichever exec_oci picks (crun when the host's cgroups
 * let it run), with the image store under the agent's state dir. */
static struct exec_backend *open_oci(const struct agent_config *cfg, struct err *e)
{
	return exec_oci_new(cfg->state_dir, NULL, e);
}

static struct exec_backend *open_named(const struct agent_config *cfg, const char *name, struct err *e)
{
	if (strcmp(name, "docker") == 0)
		return exec_docker_new(exec_docker_default_socket(), cfg->host, cfg->state_dir, e);
	if (strcmp(name, "oci") == 0)
		return open_oci(cfg, e);
	if (strcmp(name, "process") == 0)
		return exec_process_new(e);
	err_set(e, ERR_INVALID, "executor \"%s\": want docker, oci or process", name);
	return NULL;
}

/* docker when the socket answers, else oci when a runtime is installed,
 * else process; each refusal is said, so an operator knows why. */
static struct exec_backend *open_auto(const struct agent_config *cfg, struct err *e)
{
	struct exec_backend *b = open_named(cfg, "docker", e);
	if (b) {
		log_msg("info", "agent", "executor docker: the Docker Engine answers on %s", exec_docker_default_socket());
		return b;
	}
	log_msg("info", "agent", "executor docker not used: %s", e->msg);
	if (program_installed("crun") || program_installed("runc")) {
		if ((b = open_oci(cfg, e))) {
			log_msg("info", "agent", "executor oci: an OCI runtime is installed");
			return b;
		}
		log_msg("info", "agent", "executor oci not used: %s", e->msg);
	} else {
		log_msg("info", "agent", "executor oci not used: neither crun nor runc is installed");
	}
	log_msg("warn", "agent", "executor process: tasks run as plain processes, NOT isolated (development only)");
	return exec_process_new(e);
}

static int make_standins(const struct agent_config *cfg, struct err *e)
{
	char dir[600];
	snprintf(dir, sizeof dir, "%s/dev", cfg->state_dir);
	return gpu_devnodes_create_standins(dir, cfg->host, cfg->gpus, cfg->n_gpus, e);
}

struct exec_backend *agent_exec_open(const struct agent_config *cfg, struct err *e)
{
	struct exec_backend *b = cfg->executor[0] ? open_named(cfg, cfg->executor, e) : open_auto(cfg, e);
	if (!b)
		return NULL;
	if (is_container_backend(b) && make_standins(cfg, e) < 0) {
		b->destroy(b);
		return NULL;
	}
	return b;
}

bool agent_exec_admits(const struct exec_backend *b, const struct agent_config *cfg, char *first_client,
		       size_t cap, const char *client, struct err *e)
{
	if (is_container_backend(b) || cfg->process_shared)
		return true;
	if (!first_client[0])
		str_copy(first_client, cap, client ? client : "");
	if (strcmp(first_client, client ? client : "") == 0)
		return true;
	err_set(e, ERR_FORBIDDEN,
		"the process executor does not isolate clients and runs only %s's tasks here; use a container "
		"executor (--executor docker|oci) or start the agent with --allow-shared-process",
		first_client);
	return false;
}

static int fill_devnodes(struct agent_start_spec *rs, const struct agent_config *cfg, struct err *e)
{
	char standins[600];
	snprintf(standins, sizeof standins, "%s/dev", cfg->state_dir);
	if (gpu_devnodes_for_task(cfg->gpus, cfg->n_gpus, rs->s.gpu_uuids, rs->s.n_gpus, cfg->host, standins, NULL,
				  rs->devnodes, &rs->s.n_devnodes, e) < 0)
		return -1;
	rs->s.devnodes = rs->devnodes;
	rs->s.real_gpus = cfg->n_gpus > 0 && !cfg->gpus[0].simulated;
	return 0;
}

static int64_t json_int_or(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* How the task runs: image, limits, network, timeout. */
static void fill_run_options(struct exec_spec *s, json_t *spec, const struct agent_config *cfg)
{
	s->client = json_string_value(json_object_get(spec, "client"));
	s->image = json_string_value(json_object_get(spec, "image"));
	s->memory_bytes = json_int_or(spec, "memory_mb", 0) * 1024 * 1024;
	s->cpu_milli = json_int_or(spec, "cpu_milli", 0);
	s->pids_limit = json_int_or(spec, "pids_limit", 0);
	s->timeout_ms = json_int_or(spec, "timeout_ms", 0);
	s->network = json_is_true(json_object_get(spec, "network"));
	s->readonly_rootfs = json_is_true(json_object_get(spec, "read_only"));
	s->reuse_warm = json_is_true(json_object_get(spec, "reuse_warm"));
	s->stop_grace_ms = cfg->stop_grace_ms;
}

int agent_start_spec_fill(struct agent_start_spec *rs, json_t *spec, const struct agent_config *cfg,
			  const struct exec_backend *b, const char *workdir, const char *log_path, struct err *e)
{
	memset(rs, 0, sizeof *rs);
	json_t *argv_j = json_object_get(spec, "command"), *env_j = json_object_get(spec, "env"),
	       *gpus_j = json_object_get(spec, "gpus");
	int argc = (int)json_array_size(argv_j), n_env = (int)json_array_size(env_j);
	int n_gpus = (int)json_array_size(gpus_j);
	if (n_gpus > TASK_MAX_GPUS)
		n_gpus = TASK_MAX_GPUS;
	rs->argv = xcalloc((size_t)argc + 1, sizeof *rs->argv);
	rs->env = xcalloc((size_t)n_env + 1, sizeof *rs->env);
	rs->uuids = xcalloc((size_t)n_gpus + 1, sizeof *rs->uuids);
	for (int i = 0; i < argc; i++)
		rs->argv[i] = (char *)json_string_value(json_array_get(argv_j, (size_t)i));
	for (int i = 0; i < n_env; i++)
		rs->env[i] = (char *)json_string_value(json_array_get(env_j, (size_t)i));
	for (int i = 0; i < n_gpus; i++)
		str_copy(rs->uuids[i], TASK_GPU_UUID_MAX, json_string_value(json_array_get(gpus_j, (size_t)i)));
	rs->s = (struct exec_spec){
		.task_id = json_string_value(json_object_get(spec, "id")), .host = cfg->host, .argv = rs->argv,
		.argc = argc, .env = rs->env, .n_env = n_env, .gpu_uuids = (const char(*)[TASK_GPU_UUID_MAX])rs->uuids,
		.n_gpus = n_gpus, .milli = (int)json_int_or(spec, "gpu_milli", TASK_MILLI_FULL), .workdir = workdir,
		.log_path = log_path,
	};
	fill_run_options(&rs->s, spec, cfg);
	if (argc < 1 || !rs->argv[0] || !rs->argv[0][0])
		return err_set(e, ERR_INVALID, "empty command");
	if (is_container_backend(b) && fill_devnodes(rs, cfg, e) < 0)
		return -1;
	return 0;
}

void agent_start_spec_free(struct agent_start_spec *rs)
{
	free(rs->argv);
	free(rs->env);
	free(rs->uuids);
	rs->argv = rs->env = NULL;
	rs->uuids = NULL;
}
