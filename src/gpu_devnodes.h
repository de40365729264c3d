/* gpu_devnodes.h — the device nodes a task's container needs for its GPUs,
 * for every container backend (OCI runtime spec devices, Docker Devices).
 *
 * Real GPUs: /dev/nvidiaN (char 195:N, N the GPU's index on its host), plus
 * the control nodes every CUDA process opens: /dev/nvidiactl (195:255) and
 * /dev/nvidia-uvm, /dev/nvidia-uvm-tools (major read from /proc/devices:
 * the uvm driver's major is allocated dynamically).
 *
 * Simulated GPUs: a stand-in character node per GPU, created by the agent,
 * so a container sees exactly its own /dev/nvidiaN and the device cgroup can
 * be shown to refuse every other one. Stand-ins use major
 * GPU_STANDIN_MAJOR (120): Linux reserves 120-127 for local/experimental
 * use and never hands them out dynamically, and no driver sits behind them,
 * so opening one that the cgroup allows fails with ENXIO and does nothing,
 * while one it refuses fails with EPERM: the two outcomes tell "mine" from
 * "not mine". The minor is index + 16 * (a 12-bit hash of the host name),
 * so the simulated hosts of a multi-agent test on one machine get distinct
 * numbers too (distinct within a host always: at most 16 GPUs per host). */
#ifndef GPUNODE_GPU_DEVNODES_H
#define GPUNODE_GPU_DEVNODES_H

#include <stdbool.h>
#include <sys/types.h>

#include "err.h"
#include "pool.h"

#define GPU_REAL_MAJOR 195
#define GPU_REAL_CTL_MINOR 255
#define GPU_STANDIN_MAJOR 120
/* nvidiaN per GPU, plus nvidiactl, nvidia-uvm, nvidia-uvm-tools. */
#define GPU_DEVNODES_MAX (TASK_MAX_GPUS + 3)

struct gpu_devnode {
	char host_path[512];     /* the node on the host: "/dev/nvidia0", or STANDIN_DIR/nvidia0 */
	char container_path[32]; /* where the container sees it: "/dev/nvidia0" */
	char type;               /* 'c': all of these are character devices */
	unsigned major, minor;
	mode_t file_mode;        /* 0666, as the NVIDIA driver creates them */
	char access[4];          /* device cgroup permissions: "rwm" (the runtime mknods it inside; the
	                          * task cannot: CAP_MKNOD is dropped) */
};

/* The node numbers of the stand-in for a simulated GPU. */
void gpu_devnodes_standin_numbers(const char *host, int index, unsigned *major, unsigned *minor);

/* Creates (or re-creates, if their numbers differ) the stand-in nodes
 * dir/nvidiaN for the simulated GPUs among gpus; creates dir (0755) if
 * missing. Real GPUs in the list are skipped. Needs CAP_MKNOD (root). */
int gpu_devnodes_create_standins(const char *dir, const char *host, const struct gpu *gpus, int n_gpus,
				 struct err *e);

/* Fills out (room for GPU_DEVNODES_MAX) with the nodes a task assigned the
 * GPUs named in uuids needs; every uuid must be one of gpus (ERR_INVALID
 * otherwise). Simulated GPUs give their stand-in under standin_dir and no
 * control nodes; real ones give /dev/nvidiaN plus the control nodes, the
 * uvm major read from proc_devices (NULL: "/proc/devices"; uvm nodes are
 * left out when the driver is not loaded). */
int gpu_devnodes_for_task(const struct gpu *gpus, int n_gpus, const char (*uuids)[TASK_GPU_UUID_MAX], int n_uuids,
			  const char *host, const char *standin_dir, const char *proc_devices, struct gpu_devnode *out,
			  int *n_out, struct err *e);

/* A read-only bind mount of a host file the GPU driver needs inside the
 * container (libcuda.so.1, nvidia-smi...), from the host's CDI spec. */
struct gpu_mount {
	char *host_path;
	char *container_path;
};

/* Reads the driver mounts of the NVIDIA CDI specs (kind "nvidia.com/gpu",
 * top-level containerEdits.mounts) from the *.json files in cdi_dir (NULL:
 * /etc/cdi, then /var/run/cdi). No spec: 0 mounts, not an error. *out is
 * malloc'd; free with gpu_mounts_free. YAML specs are not read (generate
 * JSON with `nvidia-ctk cdi generate --format json`). */
int gpu_cdi_mounts(const char *cdi_dir, struct gpu_mount **out, int *n_out, struct err *e);
void gpu_mounts_free(struct gpu_mount *m, int n);

#endif
