/* exec_env.c — what every backend shares: the task's environment, the
 * shape of a failed exit, and the warm containers' key and scratch wipe. */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "util.h"

/* The variables a task must not set itself: they name its GPUs and itself. */
static bool env_reserved(const char *kv)
{
	static const char *const reserved[] = {"CUDA_VISIBLE_DEVICES=", "NVIDIA_VISIBLE_DEVICES=", "GPUNODE_TASK_ID=",
					       "GPUNODE_HOST=", "GPUNODE_GPU_MILLI="};
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strncmp(kv, reserved[i], strlen(reserved[i])) == 0)
			return true;
	return false;
}

static char *env_entry(const char *key, const char *value)
{
	char *s;
	if (asprintf(&s, "%s=%s", key, value) < 0)
		abort();
	return s;
}

char **exec_env_build(const struct exec_spec *s, const char *path, const char *home, int *n_out)
{
	char **env = xcalloc((size_t)s->n_env + 9, sizeof *env);
	int k = 0;
	env[k++] = env_entry("PATH", path);
	env[k++] = env_entry("HOME", home);
	for (int i = 0; i < s->n_env; i++)
		if (!env_reserved(s->env[i]))
			env[k++] = xstrdup(s->env[i]);
	char list[TASK_MAX_GPUS * TASK_GPU_UUID_MAX] = "";
	size_t off = 0;
	for (int i = 0; i < s->n_gpus; i++)
		off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? "," : "", s->gpu_uuids[i]);
	char milli[16];
	snprintf(milli, sizeof milli, "%d", s->milli);
	env[k++] = env_entry("CUDA_VISIBLE_DEVICES", list);
	env[k++] = env_entry("NVIDIA_VISIBLE_DEVICES", list);
	env[k++] = env_entry("GPUNODE_TASK_ID", s->task_id);
	env[k++] = env_entry("GPUNODE_HOST", s->host ? s->host : "");
	env[k++] = env_entry("GPUNODE_GPU_MILLI", milli);
	if (n_out)
		*n_out = k;
	return env;
}

void exec_env_free(char **env)
{
	for (char **p = env; p && *p; p++)
		free(*p);
	free(env);
}

void exec_exit_set_failure(struct exec_exit *x, const char *reason, const char *fmt, ...)
{
	str_copy(x->failure_reason, sizeof x->failure_reason, reason);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->failure_message, sizeof x->failure_message, fmt, ap);
	va_end(ap);
}

void exec_warm_key(const struct exec_spec *s, char *key, size_t cap)
{
	int off = snprintf(key, cap, "%s|%s|%lld|%lld|%lld|%d|%d", s->client ? s->client : "", s->image,
			   (long long)s->memory_bytes, (long long)s->cpu_milli, (long long)s->pids_limit, s->network,
			   s->readonly_rootfs);
	for (int i = 0; i < s->n_devnodes && off > 0 && (size_t)off < cap; i++)
		off += snprintf(key + off, cap - (size_t)off, "|%s", s->devnodes[i].host_path);
}

static int remove_below_top(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (ftw->level == 0)
		return 0; /* the scratch dir itself stays: it is mounted */
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

void exec_wipe_scratch(const char *dir)
{
	nftw(dir, remove_below_top, 16, FTW_DEPTH | FTW_PHYS);
}
