/* gpu_discover.c — which GPUs this host has, from the best source present:
 * NVML (dlopen, every call bounded), then `nvidia-smi` (a hung one is
 * killed), and simulated devices only when asked for (--sim-gpus) or when
 * the caller falls back to them, clearly marked as such. */
#include "gpu.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpu_source.h"
#include "util.h"

#define NVML_DISCOVER_TIMEOUT_MS 5000
#define SMI_TIMEOUT_MS 10000
#define SMI_OUTPUT_MAX (256 * 1024)

extern char **environ;

static void copy_facts(struct gpu *gpus, const struct gpu_facts *facts, int n, struct gpu_found *out)
{
	for (int i = 0; i < n; i++)
		str_copy(gpus[i].pci_bus_id, sizeof gpus[i].pci_bus_id, facts[i].pci_bus_id);
	if (n > 0)
		snprintf(out->detail, sizeof out->detail, "driver %s, CUDA %s", facts[0].driver_version[0] ? facts[0].driver_version : "?",
			 facts[0].cuda_version[0] ? facts[0].cuda_version : "?");
}

/* Reads a child's stdout until EOF, the deadline, or the size cap. */
static int read_child(int fd, pid_t pid, char **text, struct err *e)
{
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	int64_t end = now_ms() + SMI_TIMEOUT_MS;
	for (;;) {
		int64_t left = end - now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			kill(pid, SIGKILL);
			free(buf);
			return err_set(e, ERR_UNAVAILABLE, "nvidia-smi did not answer within %d s (hung driver?)",
				       SMI_TIMEOUT_MS / 1000);
		}
		if (len + 1 >= cap) {
			if (cap >= SMI_OUTPUT_MAX)
				break;
			buf = xrealloc(buf, cap *= 2);
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*text = buf;
	return 0;
}

int gpu_smi_query(char **text, struct err *e)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_set(e, ERR_INTERNAL, "pipe: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = {"nvidia-smi", "--query-gpu=" GPU_SMI_QUERY_FIELDS, "--format=csv,noheader,nounits", NULL};
	pid_t pid;
	int rc = posix_spawnp(&pid, "nvidia-smi", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		return err_set(e, ERR_UNAVAILABLE, "nvidia-smi: %s", strerror(rc));
	}
	int r = read_child(pipefd[0], pid, text, e);
	close(pipefd[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		free(*text);
		return err_set(e, ERR_UNAVAILABLE, "nvidia-smi failed (status %d)", status);
	}
	return r;
}

static int discover_smi(struct gpu_found *out, struct err *e)
{
	char *text = NULL;
	if (gpu_smi_query(&text, e) < 0)
		return -1;
	struct gpu_facts *facts;
	struct gpu_smi_reading *readings;
	int rc = gpu_smi_parse(text, &out->gpus, &facts, &readings, &out->n, e);
	free(text);
	if (rc < 0)
		return -1;
	copy_facts(out->gpus, facts, out->n, out);
	free(facts);
	free(readings);
	out->source = "nvidia-smi";
	return 0;
}

int gpu_discover(const char *sim_spec, const char *host, struct gpu_found *out, struct err *e)
{
	memset(out, 0, sizeof *out);
	if (sim_spec) {
		out->source = "simulated";
		str_copy(out->detail, sizeof out->detail, sim_spec);
		return gpu_sim_parse(sim_spec, host, &out->gpus, &out->n, e);
	}
	struct gpu_facts *facts;
	struct err nvml_e, smi_e;
	if (gpu_nvml_discover(NVML_DISCOVER_TIMEOUT_MS, &out->gpus, &facts, &out->n, &nvml_e) == 0 && out->n > 0) {
		copy_facts(out->gpus, facts, out->n, out);
		free(facts);
		out->source = "nvml";
		return 0;
	}
	free(out->gpus);
	out->gpus = NULL;
	if (discover_smi(out, &smi_e) == 0 && out->n > 0)
		return 0;
	free(out->gpus);
	memset(out, 0, sizeof *out);
	return err_set(e, ERR_UNAVAILABLE, "no GPU found (NVML: %s; nvidia-smi: %s)", nvml_e.msg, smi_e.msg);
}
