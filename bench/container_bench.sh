#!/usr/bin/env bash
# container_bench.sh BUILD_DIR — the Docker executor's costs, against a
# private dockerd (scripts/dockerd.sh) started and stopped here:
#   container_start_ms_p50_docker / _p99: submit (POST /v1/tasks) -> the first
#     process running inside the task's container, N sequential tasks;
#   container_start_ms_p50_docker_direct / _p99: the same container (same image,
#     isolation and limits) created and started straight through the Engine API,
#     the bare-runtime baseline, measured in the same run;
#   container_start_overhead_ratio_docker: p50 through gpunode / p50 direct;
#   e2e_container_tasks_per_s_docker: 500 trivial tasks on 8 simulated GPUs,
#     first submit to last completion;
#   e2e_container_tasks_per_s_docker_direct: its baseline, 100 such containers
#     created, started, waited for and removed straight through the Engine API
#     by 8 workers (one per GPU); e2e_container_ratio_docker_vs_direct.
# The first process is busybox `adjtimex`, which prints the wall clock in
# microseconds; containers share the host's clock, so the delay is that
# time minus the host's time just before the request.
# Prints one flat JSON object on stdout; progress on stderr.
#   BENCH_CONTAINER_STARTS (30), BENCH_CONTAINER_TASKS (500), BENCH_CONTAINER_DIRECT_TASKS (100)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${1:?usage: bench/container_bench.sh BUILD_DIR}
BIN="$BUILD/gpunode"
STARTS=${BENCH_CONTAINER_STARTS:-30}
TASKS=${BENCH_CONTAINER_TASKS:-500}
DIRECT_TASKS=${BENCH_CONTAINER_DIRECT_TASKS:-100}
[[ -x "$BIN" ]] || {
	echo "container_bench.sh: $BIN is not built" >&2
	exit 1
}

work=$(mktemp -d /tmp/gpunode-cbench.XXXXXX)
node_pid=
cleanup() {
	[[ -n "$node_pid" ]] && kill -INT "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
	scripts/dockerd.sh stop "$work/dockerd" || true
	rm -rf "$work"
}
trap cleanup EXIT
say() { echo "container_bench: $*" >&2; }

say "starting dockerd"
export DOCKER_HOST
DOCKER_HOST=$(scripts/dockerd.sh start "$work/dockerd" | sed -n 's/^DOCKER_HOST=//p')
scripts/dockerd.sh image "$work/dockerd" >/dev/null
sock=${DOCKER_HOST#unix://}
engine() { curl -fsS --unix-socket "$sock" -H 'Content-Type: application/json' -X "$1" "http://docker/v1.41$2" ${3:+-d "$3"}; }

host=cbench$$
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export HOME="$work/home" GPUNODE_URL="http://127.0.0.1:$port"
mkdir -p "$HOME"
"$BIN" up --data "$work/node" --listen "127.0.0.1:$port" --sim-gpus 8xH100-80GB --executor docker --host "$host" \
	>"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 200); do
	curl -fsS --max-time 1 "$GPUNODE_URL/healthz" >/dev/null 2>&1 && [[ -s "$work/node/admin.token" ]] && break
	sleep 0.1
done
export GPUNODE_TOKEN
GPUNODE_TOKEN=$(tr -d '[:space:]' <"$work/node/admin.token")
api() { curl -fsS -H "Authorization: Bearer $GPUNODE_TOKEN" -H 'Content-Type: application/json' -X "$1" "$GPUNODE_URL$2" ${3:+-d "$3"}; }
until api GET /v1/gpus 2>/dev/null | jq -e '.gpus | length == 8' >/dev/null; do sleep 0.1; done

now_us() { date +%s%6N; }
# adjtimex output -> microseconds since the epoch
# (the direct baseline's stream has frame headers: take only the digits after the labels)
clock_us() { LC_ALL=C tr -c '[:print:]\n' ' ' | sed -n 's/.*tv_sec: *\([0-9]*\).*/s \1/p; s/.*tv_usec: *\([0-9]*\).*/u \1/p' |
	awk '$1 == "s" {s=$2} $1 == "u" {u=$2} END {printf "%d%06d\n", s, u}'; }
wait_ended() { # ID
	local state
	for _ in $(seq 600); do
		state=$(api GET "/v1/tasks/$1" | jq -r .state)
		case $state in succeeded | failed | cancelled | lost | expired) echo "$state"; return 0 ;; esac
		sleep 0.05
	done
	echo timeout
}

say "start latency through gpunode ($STARTS tasks)"
: >"$work/gpunode.ms"
for _ in $(seq "$STARTS"); do
	t0=$(now_us)
	id=$(api POST /v1/tasks '{"command":["adjtimex"],"image":"busybox:local","memory_mb":64}' | jq -r .id)
	[[ "$(wait_ended "$id")" == succeeded ]] || { say "task $id did not succeed"; exit 1; }
	t1=$(api GET "/v1/tasks/$id/logs" | clock_us)
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", (b - a) / 1000}' >>"$work/gpunode.ms"
done

# The container the docker executor makes for such a task (exec_docker_create_body).
dev=$(ls "$work/node/agent/dev" | head -1)
body=$(jq -nc --arg dev "$work/node/agent/dev/$dev" --arg scratch "$work/scratch" '{
	Image: "busybox:local", Entrypoint: ["adjtimex"], WorkingDir: "/work", Labels: {"gpunode.bench": "1"},
	HostConfig: {Privileged: false, SecurityOpt: ["no-new-privileges"], CapDrop: ["ALL"],
		CapAdd: ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"], IpcMode: "private", Init: true,
		NetworkMode: "none", Mounts: [{Type: "bind", Source: $scratch, Target: "/work"}],
		Memory: 67108864, MemorySwap: 67108864, PidsLimit: 4096,
		Devices: [{PathOnHost: $dev, PathInContainer: "/dev/nvidia0", CgroupPermissions: "rwm"}]}}')
mkdir -p "$work/scratch"
say "start latency straight through the Engine API ($STARTS containers)"
: >"$work/direct.ms"
for _ in $(seq "$STARTS"); do
	t0=$(now_us)
	cid=$(engine POST /containers/create "$body" | jq -r .Id)
	engine POST "/containers/$cid/start" >/dev/null
	engine POST "/containers/$cid/wait" >/dev/null
	t1=$(curl -fsS --unix-socket "$sock" "http://docker/v1.41/containers/$cid/logs?stdout=1" | clock_us)
	engine DELETE "/containers/$cid?force=1" >/dev/null
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", (b - a) / 1000}' >>"$work/direct.ms"
done

pct() { # FILE P — nearest-rank percentile
	sort -n "$1" | awk -v p="$2" '{v[NR]=$1} END {i=int((p/100)*NR+0.999999); if (i<1) i=1; print v[i]}'
}

say "throughput: $TASKS trivial tasks on 8 simulated GPUs"
t0=$(now_us)
for _ in $(seq "$TASKS"); do
	api POST /v1/tasks '{"command":["true"],"image":"busybox:local"}' | jq -r .id
done >"$work/ids"
last=$(tail -1 "$work/ids")
in_state() { api GET "/v1/tasks?state=$1&limit=1" | jq '.tasks | length'; }
while (($(in_state queued) + $(in_state assigned) + $(in_state running) > 0)); do
	sleep 0.2
done
t1=$(now_us)
failed=$(api GET "/v1/tasks?state=failed&limit=1000" | jq '.tasks | length')
[[ "$failed" == 0 ]] || say "warning: $failed of the $TASKS tasks did not succeed (last id $last)"
tps=$(awk -v n="$TASKS" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", n * 1000000 / (b - a)}')

# The baseline of that rate: the same trivial container run straight through
# the Engine API (create, start, wait, remove) by 8 workers, one per GPU.
say "throughput baseline: $DIRECT_TASKS trivial containers straight through the Engine API, 8 at a time"
direct_worker() { # N
	local cid
	for _ in $(seq "$1"); do
		cid=$(engine POST /containers/create "$(jq -c '.Entrypoint = ["true"]' <<<"$body")" | jq -r .Id)
		engine POST "/containers/$cid/start" >/dev/null
		engine POST "/containers/$cid/wait" >/dev/null
		engine DELETE "/containers/$cid?force=1" >/dev/null
	done
}
t0=$(now_us)
workers=()
for w in $(seq 0 7); do
	direct_worker $(((DIRECT_TASKS + 7 - w) / 8)) &
	workers+=($!)
done
for w in "${workers[@]}"; do wait "$w"; done
t1=$(now_us)
dtps=$(awk -v n="$DIRECT_TASKS" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", n * 1000000 / (b - a)}')

p50=$(pct "$work/gpunode.ms" 50)
p99=$(pct "$work/gpunode.ms" 99)
d50=$(pct "$work/direct.ms" 50)
d99=$(pct "$work/direct.ms" 99)
jq -nc --argjson p50 "$p50" --argjson p99 "$p99" --argjson d50 "$d50" --argjson d99 "$d99" --argjson tps "$tps" --argjson dtps "$dtps" '{
	container_start_ms_p50_docker: $p50, container_start_ms_p99_docker: $p99,
	container_start_ms_p50_docker_direct: $d50, container_start_ms_p99_docker_direct: $d99,
	container_start_overhead_ratio_docker: (($p50 / $d50) * 1000 | round / 1000),
	e2e_container_tasks_per_s_docker: $tps, e2e_container_tasks_per_s_docker_direct: $dtps,
	e2e_container_ratio_docker_vs_direct: (($tps / $dtps) * 100 | round / 100)}'
