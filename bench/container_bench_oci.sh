#!/usr/bin/env bash
# container_bench_oci.sh BUILD_DIR — the OCI executor's costs, with the real
# runtimes, against a fresh `gpunode up --executor oci` per runtime:
#   container_start_ms_p50_oci / _p99: submit (POST /v1/tasks) -> the first
#     process running inside the task's container, N sequential tasks, with
#     the runtime the agent picks by itself (crun where it runs, else runc);
#     each task is submitted once the previous one's bundle is removed, as each
#     bare run starts after the previous one's delete;
#   container_start_ms_p50_oci_bare / _p99: `RUNTIME run` of the same bundle
#     (the config.json the agent wrote for such a task, same rootfs overlay),
#     the bare-runtime baseline, measured in the same run: each task is
#     followed by one bare run, so that other work on the host (its load
#     comes and goes) weighs on both alike, and each of them starts
#     BENCH_SETTLE_MS (100) after the one before, so that neither overlaps
#     the other's tail (the agent reporting an exit, its janitor);
#   container_start_overhead_ratio_oci: p50 through gpunode / p50 bare;
#   the same three for the other runtime, suffixed _runc or _crun;
#   e2e_container_tasks_per_s_oci: 500 trivial tasks on 8 simulated GPUs,
#     first submit to last completion, with the runtime the agent picks.
# The first process is busybox `adjtimex`, which prints the wall clock to the
# microsecond; containers share the host's clock, so the delay is that time
# minus the host's clock read just before the request (or the spawn).
# Prints one flat JSON object on stdout; progress on stderr.
#   BENCH_CONTAINER_STARTS (30), BENCH_CONTAINER_TASKS (500)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${1:?usage: bench/container_bench_oci.sh BUILD_DIR}
BIN="$BUILD/gpunode"
STARTS=${BENCH_CONTAINER_STARTS:-30}
TASKS=${BENCH_CONTAINER_TASKS:-500}
[[ -x "$BIN" && -x "$BUILD/gpunode-shim" ]] || {
	echo "container_bench_oci.sh: $BIN or its gpunode-shim is not built" >&2
	exit 1
}
PATH=$PATH:/usr/sbin:/sbin

work=$(mktemp -d /tmp/gpunode-obench.XXXXXX)
node_pid=
stop_node() {
	[[ -n "$node_pid" ]] || return 0
	kill -INT "$node_pid" 2>/dev/null || true
	wait "$node_pid" 2>/dev/null || true
	node_pid=
}
cleanup() {
	stop_node
	umount "$work"/bare*/rootfs 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
say() { echo "container_bench_oci: $*" >&2; }

scripts/crun_cgroup_fix.sh || say "crun cannot run here; runc only"
tests/images/make_busybox_images.sh "$work/images"
"$BIN" image import "$work/images/oci-layout.tar" --name busybox:local --data "$work/node" >/dev/null
export HOME="$work/home"
mkdir -p "$HOME"

# start_node RUNTIME — gpunode up with the oci executor on that runtime ("" : its own pick).
start_node() {
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	export GPUNODE_URL="http://127.0.0.1:$port"
	GPUNODE_OCI_RUNTIME=$1 "$BIN" up --data "$work/node" --listen "127.0.0.1:$port" --sim-gpus 8xH100-80GB \
		--executor oci --host obench$$ >>"$work/node.log" 2>&1 &
	node_pid=$!
	for _ in $(seq 200); do
		curl -fsS --max-time 1 "$GPUNODE_URL/healthz" >/dev/null 2>&1 && [[ -s "$work/node/admin.token" ]] && break
		sleep 0.1
	done
	export GPUNODE_TOKEN
	GPUNODE_TOKEN=$(tr -d '[:space:]' <"$work/node/admin.token")
	until python3 bench/oci_bench.py gpus 2>/dev/null | grep -qx 8; do sleep 0.1; done
}

# measure RUNTIME SUFFIX — start latencies through gpunode and bare, for one runtime.
measure() {
	local rt=$1 suffix=$2
	start_node "$rt"
	local picked
	picked=$(sed -n 's/.*oci executor: runtime=\([^ ]*\).*/\1/p' "$work/node.log" | tail -1)
	# The bundle the agent writes for such a task, copied while one runs.
	local bundle=$work/bare$suffix
	python3 bench/oci_bench.py bundle "$work/node/agent/oci/bundles" "$bundle" "$work/node/agent/images/busybox@local/rootfs"
	say "runtime $picked: $STARTS starts through gpunode, each followed by a bare \`$(basename "$picked") run\` of that bundle"
	python3 bench/oci_bench.py starts "$STARTS" "$work/node/agent/oci/bundles" "$picked" "$work/bare-root$suffix" \
		"$bundle" "$work/gpunode$suffix.ms" "$work/bare$suffix.ms"
	umount "$bundle/rootfs"
	if [[ -z $suffix ]]; then
		say "throughput: $TASKS trivial tasks on 8 simulated GPUs"
		python3 bench/oci_bench.py throughput "$TASKS" >"$work/tps"
	fi
	stop_node
	echo "$picked"
}

default_rt=$(measure "" "")
case $default_rt in */crun) other=runc ;; *) other=crun ;; esac
if [[ $other == crun ]] && ! scripts/crun_cgroup_fix.sh 2>/dev/null; then
	other=
fi
[[ -n $other ]] && measure "$other" "_$other" >/dev/null

python3 bench/oci_bench.py report "$work" "$(basename "$default_rt")" "$other"
