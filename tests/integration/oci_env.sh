# oci_env.sh — sourced by the OCI executor's tests after lib.sh: the real
# runtime (OCI_RUNTIME: crun by default, or runc) and real images built
# from busybox-static in the docker-save and OCI-layout formats.
# Exports OCI_RUNTIME, OCI_IMAGES (the dir with docker-save.tar,
# oci-layout.tar and rootfs/), and GPUNODE_OCI_RUNTIME for the agent.
# shellcheck shell=bash

OCI_RUNTIME=${OCI_RUNTIME:-crun}
command -v "$OCI_RUNTIME" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
command -v "$OCI_RUNTIME" >/dev/null 2>&1 ||
	fail "$OCI_RUNTIME is not installed (scripts/deps.sh installs runc and crun)"
# crun refuses hybrid cgroup hosts until their last cgroup2 controller moves
# to v1; the fix is idempotent and a no-op elsewhere.
if [[ $OCI_RUNTIME == crun ]]; then
	"$REPO_ROOT/scripts/crun_cgroup_fix.sh" || fail "crun cannot run on this host's cgroups"
fi
export GPUNODE_OCI_RUNTIME=$OCI_RUNTIME
OCI_IMAGES=$TEST_DIR/images
"$REPO_ROOT/tests/images/make_busybox_images.sh" "$OCI_IMAGES"

# oci_runtime ARGS... — the runtime on the agent's state (its --root).
oci_runtime() {
	"$OCI_RUNTIME" --root "$NODE_DATA/agent/oci/root" "$@"
}
