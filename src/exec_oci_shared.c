/* exec_oci_shared.c — what the OCI backend and its shim both read: a
 * container's cgroup (OOM kills, peak memory, CPU time), the exit record
 * and pid files in a bundle. cgroup v2 (memory.events, memory.peak,
 * cpu.stat) and v1, which Debian 12 hosts without systemd often still run
 * (memory.oom_control's oom_kill, memory.max_usage_in_bytes,
 * cpuacct.usage). Libc only: the shim links this file. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "exec_oci_impl.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

/* The value of "key N" in a flat-keyed file, or -1. */
static int64_t keyed_value(const char *path, const char *key)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[256];
	int64_t v = -1;
	size_t n = strlen(key);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, n) == 0 && line[n] == ' ') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int64_t single_value(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long long v;
	int ok = fscanf(f, "%lld", &v) == 1;
	fclose(f);
	return ok ? v : -1;
}

static void file_in(char *buf, size_t cap, const char *hierarchy, const char *cg, const char *file)
{
	snprintf(buf, cap, "%s%s%s/%s", CGROUP_ROOT, hierarchy, cg, file);
}

void oci_cgroup_read(const char *cg, struct oci_cgroup_stats *out)
{
	char path[1024];
	out->oom_kills = out->peak_bytes = out->cpu_ns = -1;
	if (access(CGROUP_ROOT "/cgroup.controllers", F_OK) == 0) {
		file_in(path, sizeof path, "", cg, "memory.events");
		out->oom_kills = keyed_value(path, "oom_kill");
		file_in(path, sizeof path, "", cg, "memory.peak");
		out->peak_bytes = single_value(path);
		file_in(path, sizeof path, "", cg, "cpu.stat");
		int64_t us = keyed_value(path, "usage_usec");
		out->cpu_ns = us < 0 ? -1 : us * 1000;
		return;
	}
	file_in(path, sizeof path, "/memory", cg, "memory.oom_control");
	out->oom_kills = keyed_value(path, "oom_kill");
	file_in(path, sizeof path, "/memory", cg, "memory.max_usage_in_bytes");
	out->peak_bytes = single_value(path);
	file_in(path, sizeof path, "/cpuacct", cg, "cpuacct.usage");
	out->cpu_ns = single_value(path);
	if (out->cpu_ns < 0) {
		file_in(path, sizeof path, "/cpu,cpuacct", cg, "cpuacct.usage");
		out->cpu_ns = single_value(path);
	}
}

int oci_exit_record_parse(const char *text, struct oci_exit_record *out)
{
	long long oom, peak, cpu;
	if (sscanf(text, "%d %d %lld %lld %lld", &out->exit_code, &out->signal, &oom, &cpu, &peak) != 5)
		return -1;
	out->stats.oom_kills = oom;
	out->stats.cpu_ns = cpu;
	out->stats.peak_bytes = peak;
	return 0;
}

pid_t oci_pid_read(const char *bundle, const char *file)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", bundle, file);
	FILE *f = fopen(path, "re");
	long pid = -1;
	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return (pid_t)pid;
}

/* rmdir of dir in one hierarchy root (v2: the root itself; v1: each
 * controller's mount under it). Fails harmlessly while another run of the
 * same agent still has a cgroup below. */
void oci_cgroup_remove_parent(const char *cg)
{
	const char *slash = strrchr(cg, '/');
	if (!slash || slash == cg)
		return;
	int n = (int)(slash - cg);
	char path[1024];
	if (access(CGROUP_ROOT "/cgroup.controllers", F_OK) == 0) {
		snprintf(path, sizeof path, "%s%.*s", CGROUP_ROOT, n, cg);
		rmdir(path);
		return;
	}
	DIR *d = opendir(CGROUP_ROOT);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s%.*s", CGROUP_ROOT, de->d_name, n, cg);
		rmdir(path);
	}
	closedir(d);
}
