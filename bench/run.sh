#!/usr/bin/env bash
# run.sh — the benchmarks behind `make bench` (binaries from $BUILD, default
# build-release, built with -Dbuildtype=release):
#   1. bench_sched: the scheduler core alone (prints its own JSON figures);
#   2. api_submits_per_s: bench_api against `gpunode up --sim-gpus 8xH100-80GB`,
#      tasks that stay queued (8 and 64 clients), then tasks the node runs meanwhile;
#   3. e2e_tasks_per_s: 2,000 `true` tasks through a fresh `gpunode up`, first
#      submit to last completion;
#   4. node_rss_bytes_100k_queued: VmRSS of `gpunode up` holding 100,000 queued
#      tasks (they ask for a GPU model no one has, so they stay queued);
#   5. agent_rss_bytes_idle: VmRSS of a `gpunode agent` registered with a
#      `gpunode serve`, idle for 2 s.
# Writes every figure of this run to bench/results/latest.json (one flat
# object) and a table to stdout and bench/results/latest.md. Progress goes to
# stderr. Every process it starts is stopped by pid on exit, failure or not.
#   BENCH_API_COUNT (20000), BENCH_API_THREADS (8), BENCH_E2E_COUNT (2000), BENCH_QUEUED (100000)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build-release}
BIN="$BUILD/gpunode"
API_COUNT=${BENCH_API_COUNT:-20000}
API_THREADS=${BENCH_API_THREADS:-8}
E2E_COUNT=${BENCH_E2E_COUNT:-2000}
QUEUED=${BENCH_QUEUED:-100000}
RESULTS=bench/results
mkdir -p "$RESULTS"

for b in "$BIN" "$BUILD/bench_sched" "$BUILD/bench_api"; do
	[[ -x "$b" ]] || {
		echo "bench/run.sh: $b is not built (make bench builds it)" >&2
		exit 1
	}
done

work=$(mktemp -d /tmp/gpunode-bench.XXXXXX)
pids=()
export HOME="$work/home" # the node's pointer file goes here, not in the real $HOME
mkdir -p "$HOME"

# Stops one process we started: SIGINT, up to 10 s, then SIGKILL.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -INT "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench/run.sh: warning: pid $pid did not stop within 10 s of SIGINT; killed" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	local rc=0
	wait "$pid" 2>/dev/null || rc=$?
	if ((rc != 0 && rc != 130 && rc != 137)); then
		echo "bench/run.sh: warning: pid $pid exited with status $rc on SIGINT (not a clean stop)" >&2
	fi
	return 0
}
cleanup() {
	local rc=$? p
	for p in "${pids[@]}"; do
		stop_pid "$p"
	done
	if ((rc != 0)); then
		echo "bench/run.sh: failed (status $rc); logs kept in $work" >&2
		for p in "$work"/*.log; do
			[[ -f "$p" ]] || continue
			echo "---- tail of $p ----" >&2
			tail -n 20 "$p" >&2
		done
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

progress() { echo "bench: $*" >&2; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_healthz URL PID LOG — waits up to 20 s for URL/healthz.
wait_healthz() {
	local i
	for ((i = 0; i < 400; i++)); do
		curl -fsS --max-time 1 "$1/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || {
			echo "bench/run.sh: the process (log $3) exited before $1/healthz answered" >&2
			return 1
		}
		sleep 0.05
	done
	echo "bench/run.sh: $1/healthz did not answer in 20 s" >&2
	return 1
}

# wait_gpus URL TOKEN N — waits up to 20 s for N GPUs in the pool.
wait_gpus() {
	local i n
	for ((i = 0; i < 400; i++)); do
		n=$(curl -fsS --max-time 1 -H "Authorization: Bearer $2" "$1/v1/gpus" 2>/dev/null | jq '.gpus | length' 2>/dev/null || echo 0)
		[[ "$n" == "$3" ]] && return 0
		sleep 0.05
	done
	echo "bench/run.sh: the pool at $1 did not reach $3 GPUs in 20 s (has $n)" >&2
	return 1
}

# start_up NAME — starts `gpunode up --sim-gpus 8xH100-80GB` in $work/NAME;
# sets URL, TOKEN, NODE_PID.
start_up() {
	local port
	port=$(free_port)
	mkdir -p "$work/$1"
	"$BIN" up --data "$work/$1" --listen "127.0.0.1:$port" --sim-gpus 8xH100-80GB \
		--executor process --allow-shared-process >"$work/$1.log" 2>&1 &
	NODE_PID=$!
	pids+=("$NODE_PID")
	URL="http://127.0.0.1:$port"
	wait_healthz "$URL" "$NODE_PID" "$work/$1.log"
	TOKEN=$(tr -d '[:space:]' <"$work/$1/admin.token")
	wait_gpus "$URL" "$TOKEN" 8
}

rss_bytes() { # PID
	awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"
}
# Private (anonymous) resident memory: RSS less the shared library pages.
anon_bytes() { # PID
	awk '/^RssAnon:/ { print $2 * 1024 }' "/proc/$1/status"
}

figures='{}'
# merge JSON [PREFIX] — adds the numeric fields of a flat JSON object to the
# figures; keys that do not start with PREFIX get it, so that generic names
# ("threads", "tasks") of different steps do not collide.
merge() {
	figures=$(jq -c --argjson acc "$figures" --arg p "${2:-}" \
		'$acc + (with_entries(select(.value | type == "number") | .key |= (if startswith($p) then . else $p + . end)))' <<<"$1")
}
failures=0

# --- 1. scheduler core ---
progress "[1/5] bench_sched (scheduler core, 10,000 GPUs, 100,000 queued tasks)"
if out=$("$BUILD/bench_sched" 2>"$work/bench_sched.log"); then
	merge "$(tail -n 1 <<<"$out")" sched_
else
	echo "bench/run.sh: bench_sched failed: $(tail -n 5 "$work/bench_sched.log")" >&2
	failures=$((failures + 1))
fi

# --- 2. durable submissions over HTTP ---
# The submit path itself: tasks that stay queued (a GPU model no host has), so
# the figure is not the cost of running them. Every 201 comes after COMMIT.
# Then the same with the node running every task it accepts (true, on 8
# GPUs): on 2 cores that shares the CPU with ~1,000 spawns/s.
QUEUED_BODY='{"command":["true"],"models":["NONE"]}'
for threads in "$API_THREADS" 64; do
	progress "[2/5] api: $API_COUNT submits that stay queued, $threads clients"
	start_up "api$threads"
	if out=$("$BUILD/bench_api" --url "$URL" --token "$TOKEN" --threads "$threads" --count "$API_COUNT" \
		--body "$QUEUED_BODY"); then
		if [[ $threads == "$API_THREADS" ]]; then
			merge "$out" api_
		else
			merge "{\"api_submits_per_s_${threads}_clients\": $(jq .api_submits_per_s <<<"$out")}"
		fi
	else
		echo "bench/run.sh: bench_api failed: $out" >&2
		failures=$((failures + 1))
	fi
	stop_pid "$NODE_PID"
done
progress "[2/5] api: $API_COUNT submits of 'true' tasks that the node runs meanwhile, $API_THREADS clients"
start_up apirun
if out=$("$BUILD/bench_api" --url "$URL" --token "$TOKEN" --threads "$API_THREADS" --count "$API_COUNT"); then
	merge "{\"api_submits_per_s_while_running\": $(jq .api_submits_per_s <<<"$out")}"
else
	echo "bench/run.sh: bench_api failed: $out" >&2
	failures=$((failures + 1))
fi
stop_pid "$NODE_PID"

# --- 3. end to end ---
progress "[3/5] e2e: $E2E_COUNT 'true' tasks through a fresh gpunode up (8 simulated H100s, process executor)"
start_up e2e
if out=$("$BUILD/bench_api" --url "$URL" --token "$TOKEN" --threads "$API_THREADS" --count "$E2E_COUNT" --e2e); then
	merge "$out" e2e_
else
	echo "bench/run.sh: e2e failed: $out" >&2
	failures=$((failures + 1))
fi
stop_pid "$NODE_PID"

# --- 4. node memory with 100k queued tasks ---
progress "[4/5] node RSS: $QUEUED queued tasks (model NONE: never placed)"
start_up rss
merge "{\"node_rss_bytes_idle\": $(rss_bytes "$NODE_PID")}"
if out=$("$BUILD/bench_api" --url "$URL" --token "$TOKEN" --threads "$API_THREADS" --count "$QUEUED" \
	--body '{"command":["true"],"models":["NONE"]}'); then
	sleep 1
	merge "{\"node_rss_bytes_100k_queued\": $(rss_bytes "$NODE_PID"), \"api_submits_per_s_100k_queued\": $(jq .api_submits_per_s <<<"$out")}"
else
	echo "bench/run.sh: submitting $QUEUED queued tasks failed: $out" >&2
	failures=$((failures + 1))
fi
stop_pid "$NODE_PID"

# --- 5. an idle agent ---
progress "[5/5] agent RSS: gpunode agent registered with gpunode serve, idle 2 s"
port=$(free_port)
mkdir -p "$work/serve"
"$BIN" serve --data "$work/serve" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
URL="http://127.0.0.1:$port"
wait_healthz "$URL" "$serve_pid" "$work/serve.log"
TOKEN=$(tr -d '[:space:]' <"$work/serve/admin.token")
"$BIN" agent --node "$URL" --token "$TOKEN" --sim-gpus 8xH100-80GB --host bench-agent --state "$work/agent" >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_gpus "$URL" "$TOKEN" 8
sleep 2
kill -0 "$agent_pid" || {
	echo "bench/run.sh: the agent exited" >&2
	exit 1
}
merge "{\"agent_rss_bytes_idle\": $(rss_bytes "$agent_pid"), \"agent_private_bytes_idle\": $(anon_bytes "$agent_pid")}"
stop_pid "$agent_pid"
stop_pid "$serve_pid"

# --- results ---
jq -S . <<<"$figures" >"$RESULTS/latest.json.tmp"
mv "$RESULTS/latest.json.tmp" "$RESULTS/latest.json"

# The table: goals and outside baselines from the issue; ratio > 1 is better.
python3 - "$RESULTS/latest.json" >"$RESULTS/latest.md.tmp" <<'EOF'
import json, sys
figs = json.load(open(sys.argv[1]))
# name: (goal, "min" = at least / "max" = at most, baseline value, baseline name)
GOALS = {
    "sched_placements_per_s": (100_000, "min", 3_750, "Nomad record"),
    "api_submits_per_s": (25_000, "min", 245, "Slurm sbatch"),
    "e2e_tasks_per_s": (1_000, "min", 9.5, "Slurm, 8 GPUs"),
    "agent_rss_bytes_idle": (10_000_000, "max", None, None),
}
FIRST = ["sched_placements_per_s", "api_submits_per_s", "e2e_tasks_per_s",
         "node_rss_bytes_100k_queued", "agent_rss_bytes_idle"]
def fmt(v):
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.3g}" if abs(v) < 10 else f"{v:,.1f}"
    return f"{int(v):,}"
print("| figure | value | goal | vs goal | baseline | vs baseline |")
print("|---|---:|---:|---:|---|---:|")
order = FIRST + sorted(k for k in figs if k not in FIRST)
for name in order:
    if name not in figs:
        continue
    v = figs[name]
    goal, kind, base, base_name = GOALS.get(name, (None, None, None, None))
    g = vs_g = b = vs_b = ""
    if goal is not None:
        g = ("≥ " if kind == "min" else "< ") + fmt(goal)
        r = (v / goal) if kind == "min" else (goal / v if v else 0)
        vs_g = f"{r:.2f}×" + (" ✓" if (v >= goal if kind == "min" else v < goal) else " ✗")
    if base is not None:
        b = f"{base_name} {fmt(base)}"
        vs_b = f"{v / base:,.1f}×"
    print(f"| {name} | {fmt(v)} | {g} | {vs_g} | {b} | {vs_b} |")
EOF
mv "$RESULTS/latest.md.tmp" "$RESULTS/latest.md"
cat "$RESULTS/latest.md"
echo "bench: figures in $RESULTS/latest.json and $RESULTS/latest.md" >&2
((failures == 0))
