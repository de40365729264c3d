/* gpu_devnodes.c — which device nodes a task's GPUs are, and the stand-in
 * nodes of simulated GPUs (numbering explained in gpu_devnodes.h). */
#include "gpu_devnodes.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"

/* FNV-1a: a stable, well-spread hash of the host name (stable across
 * restarts and builds, so a restarted agent recreates the same numbers). */
static unsigned host_hash12(const char *host)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)(host ? host : ""); *p; p++)
		h = (h ^ *p) * 16777619u;
	return (h ^ (h >> 12) ^ (h >> 24)) & 0xfff;
}

void gpu_devnodes_standin_numbers(const char *host, int index, unsigned *major, unsigned *minor)
{
	*major = GPU_STANDIN_MAJOR;
	*minor = host_hash12(host) * TASK_MAX_GPUS + (unsigned)index;
}

/* Makes path a char node major:minor, replacing whatever else is there. */
static int ensure_char_node(const char *path, unsigned major, unsigned minor, struct err *e)
{
	struct stat st;
	dev_t want = makedev(major, minor);
	if (lstat(path, &st) == 0) {
		if (S_ISCHR(st.st_mode) && st.st_rdev == want)
			return chmod(path, 0666) == 0 ? 0 : err_set(e, ERR_INTERNAL, "chmod %s: %s", path, strerror(errno));
		if (unlink(path) < 0)
			return err_set(e, ERR_INTERNAL, "cannot replace %s: %s", path, strerror(errno));
	}
	if (mknod(path, S_IFCHR | 0666, want) < 0)
		return err_set(e, ERR_INTERNAL, "mknod %s (char %u:%u): %s", path, major, minor, strerror(errno));
	/* mknod's mode is masked by the umask; the driver's nodes are 0666. */
	if (chmod(path, 0666) < 0)
		return err_set(e, ERR_INTERNAL, "chmod %s: %s", path, strerror(errno));
	return 0;
}

int gpu_devnodes_create_standins(const char *dir, const char *host, const struct gpu *gpus, int n_gpus,
				 struct err *e)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_set(e, ERR_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
	for (int i = 0; i < n_gpus; i++) {
		if (!gpus[i].simulated)
			continue;
		if (gpus[i].index < 0 || gpus[i].index >= TASK_MAX_GPUS)
			return err_set(e, ERR_INVALID, "GPU %s: index %d out of 0..%d", gpus[i].uuid, gpus[i].index,
				       TASK_MAX_GPUS - 1);
		char path[512];
		snprintf(path, sizeof path, "%s/nvidia%d", dir, gpus[i].index);
		unsigned major, minor;
		gpu_devnodes_standin_numbers(host, gpus[i].index, &major, &minor);
		if (ensure_char_node(path, major, minor, e) < 0)
			return -1;
	}
	return 0;
}

/* The major of the driver named name in a /proc/devices text, or -1. */
static int char_major_of(const char *proc_devices, const char *name)
{
	FILE *f = fopen(proc_devices ? proc_devices : "/proc/devices", "re");
	if (!f)
		return -1;
	char line[128];
	int major = -1;
	bool in_char = false;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "Character devices:", 18) == 0) {
			in_char = true;
			continue;
		}
		if (strncmp(line, "Block devices:", 14) == 0)
			break;
		int m;
		char n[64];
		if (in_char && sscanf(line, "%d %63s", &m, n) == 2 && strcmp(n, name) == 0) {
			major = m;
			break;
		}
	}
	fclose(f);
	return major;
}

static void set_node(struct gpu_devnode *d, const char *host_path, const char *container_path, unsigned major,
		     unsigned minor)
{
	memset(d, 0, sizeof *d);
	str_copy(d->host_path, sizeof d->host_path, host_path);
	str_copy(d->container_path, sizeof d->container_path, container_path);
	d->type = 'c';
	d->major = major;
	d->minor = minor;
	d->file_mode = 0666;
	str_copy(d->access, sizeof d->access, "rwm");
}

/* The control nodes every process using a real GPU opens. */
static int add_real_control_nodes(const char *proc_devices, struct gpu_devnode *out, int n)
{
	set_node(&out[n++], "/dev/nvidiactl", "/dev/nvidiactl", GPU_REAL_MAJOR, GPU_REAL_CTL_MINOR);
	int uvm = char_major_of(proc_devices, "nvidia-uvm");
	if (uvm >= 0) {
		set_node(&out[n++], "/dev/nvidia-uvm", "/dev/nvidia-uvm", (unsigned)uvm, 0);
		set_node(&out[n++], "/dev/nvidia-uvm-tools", "/dev/nvidia-uvm-tools", (unsigned)uvm, 1);
	}
	return n;
}

static const struct gpu *gpu_by_uuid(const struct gpu *gpus, int n, const char *uuid)
{
	for (int i = 0; i < n; i++)
		if (strcmp(gpus[i].uuid, uuid) == 0)
			return &gpus[i];
	return NULL;
}

int gpu_devnodes_for_task(const struct gpu *gpus, int n_gpus, const char (*uuids)[TASK_GPU_UUID_MAX], int n_uuids,
			  const char *host, const char *standin_dir, const char *proc_devices, struct gpu_devnode *out,
			  int *n_out, struct err *e)
{
	if (n_uuids < 0 || n_uuids > TASK_MAX_GPUS)
		return err_set(e, ERR_INVALID, "%d GPUs: at most %d per task", n_uuids, TASK_MAX_GPUS);
	int n = 0;
	bool any_real = false;
	for (int i = 0; i < n_uuids; i++) {
		const struct gpu *g = gpu_by_uuid(gpus, n_gpus, uuids[i]);
		if (!g)
			return err_set(e, ERR_INVALID, "GPU %s is not on this host", uuids[i]);
		char host_path[512], container_path[32];
		snprintf(container_path, sizeof container_path, "/dev/nvidia%d", g->index);
		if (g->simulated) {
			unsigned major, minor;
			gpu_devnodes_standin_numbers(host, g->index, &major, &minor);
			snprintf(host_path, sizeof host_path, "%s/nvidia%d", standin_dir ? standin_dir : "", g->index);
			set_node(&out[n++], host_path, container_path, major, minor);
		} else {
			set_node(&out[n++], container_path, container_path, GPU_REAL_MAJOR, (unsigned)g->index);
			any_real = true;
		}
	}
	if (any_real)
		n = add_real_control_nodes(proc_devices, out, n);
	*n_out = n;
	return 0;
}
