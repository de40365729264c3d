/* exec_oci.h — the OCI runtime backend: runs each task with runc or crun
 * (from Debian) from a generated config.json (oci_spec.h) and a root
 * filesystem from the local image store (image_store.h), for GPU hosts
 * without Docker.
 *
 * On disk, under state_dir: images/ (the store), oci/bundles/ID/ (config.json,
 * the overlay's upper and work dirs, rootfs/ mount point, the shim's pid and
 * exit files), oci/warm/ID/ (warm containers' bundles), oci/root/ (the
 * runtime's own state, --root). Each run has a small shim process
 * (gpunode-shim, in its own process group) that creates and starts the
 * container (or execs a run in a warm container), waits for it, reads the
 * cgroup's OOM count and usage before the container is deleted, and writes
 * them to the bundle: so an exit is never lost, even when the agent is
 * killed meanwhile.
 *
 * Tasks that set reuse_warm run in a warm container of their client, image,
 * limits and GPUs (exec_oci_warm.c), never shared between two clients,
 * removed after OCI_WARM_IDLE_MS idle ($GPUNODE_OCI_WARM_IDLE_MS for
 * tests). */
#ifndef GPUNODE_EXEC_OCI_H
#define GPUNODE_EXEC_OCI_H

#include "exec.h"

#define OCI_WARM_IDLE_MS 30000

/* state_dir: the agent's state dir. runtime: "runc", "crun" or a path;
 * NULL: $GPUNODE_OCI_RUNTIME if set, else crun if it works here, else runc. Fails (ERR_UNAVAILABLE, with
 * what to install) when no runtime is found. */
struct exec_backend *exec_oci_new(const char *state_dir, const char *runtime, struct err *e);

/* The runtime exec_oci_new would pick (NULL picks), or NULL when none is
 * installed: lets the agent choose a backend and say why. */
const char *exec_oci_find_runtime(const char *runtime);

#endif
