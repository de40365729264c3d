/* oci_spec.h — the OCI runtime spec (config.json) of one task's container.
 *
 * Isolation by default, from the task only where that is safe: no new
 * privileges; capabilities cut to OCI_SPEC_CAPS (the file-ownership, kill
 * and setuid family a normal program uses, and binding low ports); a seccomp
 * deny list (oci_spec_linux.c says which calls and why); its own pid, mount,
 * ipc, uts and cgroup namespaces and a network namespace with nothing in it
 * unless the task asks for the network; memory (no swap beyond it), pids and
 * CPU limits; /proc and /sys paths masked or read-only as Docker does; the
 * device cgroup denies everything but the standard /dev nodes and exactly
 * the task's GPU nodes; the only host path is the task's scratch dir (and,
 * for real GPUs, the driver files named by the host's CDI spec, read-only).
 * Annotations name the task and host, so a restarted agent can tell its
 * containers from anyone else's. */
#ifndef GPUNODE_OCI_SPEC_H
#define GPUNODE_OCI_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "gpu_devnodes.h"

#define OCI_ANNOTATION_TASK "org.gpunode.task-id"
#define OCI_ANNOTATION_HOST "org.gpunode.host"
/* Where the scratch dir appears, and the task's working directory (the
 * same path as under the docker executor). */
#define OCI_SCRATCH_PATH "/work"
/* CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL,
 * CAP_SETGID, CAP_SETUID, CAP_NET_BIND_SERVICE: CapEff 0x4fb. Docker's
 * default adds MKNOD, NET_RAW, SYS_CHROOT, SETPCAP, SETFCAP, AUDIT_WRITE,
 * which a GPU job has no use for. */
#define OCI_SPEC_CAPEFF 0x4fbULL

struct oci_spec_input {
	const char *task_id;
	const char *host;
	char *const *argv; /* NULL-terminated */
	char *const *env;  /* the final KEY=VALUE list, NULL-terminated */
	const char *rootfs;        /* path of the root filesystem (absolute, or relative to the bundle) */
	bool readonly_rootfs;
	const char *scratch_dir;   /* host dir bind-mounted read-write at OCI_SCRATCH_PATH; NULL: none */
	const char *cwd;           /* in the container; NULL: OCI_SCRATCH_PATH, or "/" without scratch */
	int64_t memory_bytes;      /* 0: no limit */
	int64_t cpu_milli;         /* 0: no limit */
	int64_t pids_limit;        /* 0: no limit */
	bool network;              /* true: the host's network (no network namespace) */
	const char *cgroups_path;  /* "/gpunode/HOST-ID"; NULL: the runtime's default */
	const struct gpu_devnode *devnodes;
	int n_devnodes;
	const struct gpu_mount *mounts; /* driver files, bound read-only */
	int n_mounts;
};

/* Builds config.json's object; NULL with e set on bad input (no argv...). */
json_t *oci_spec_build(const struct oci_spec_input *in, struct err *e);
/* Writes bundle/config.json. */
int oci_spec_write(const char *bundle, const struct oci_spec_input *in, struct err *e);

/* The parts in oci_spec_linux.c: the "linux" object (namespaces, resources,
 * devices, masked paths, seccomp). */
json_t *oci_spec_linux(const struct oci_spec_input *in);

#endif
