# lib.sh — helpers shared by bench/run.sh and bench/slurm/run.sh (sourced).
# The caller sets BIN (the gpunode binary), work (a scratch directory) and
# pids (an array: every process started here is added to it, so that the
# caller's exit trap can stop each one by pid).

progress() { echo "bench: $*" >&2; }

# stop_pid PID — SIGINT (SIGTERM with STOP_SIGNAL=TERM), up to 10 s, then SIGKILL.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -"${STOP_SIGNAL:-INT}" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench: warning: pid $pid did not stop within 10 s; killed" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	local rc=0
	wait "$pid" 2>/dev/null || rc=$?
	if ((rc != 0 && rc != 130 && rc != 137 && rc != 143)); then
		echo "bench: warning: pid $pid exited with status $rc when stopped (not a clean stop)" >&2
	fi
	return 0
}

# stop_all — stops every pid in pids, newest first.
stop_all() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[i]}"
	done
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_healthz URL PID LOG — waits up to 20 s for URL/healthz.
wait_healthz() {
	local i
	for ((i = 0; i < 400; i++)); do
		curl -fsS --max-time 1 "$1/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || {
			echo "bench: the process (log $3) exited before $1/healthz answered" >&2
			return 1
		}
		sleep 0.05
	done
	echo "bench: $1/healthz did not answer in 20 s" >&2
	return 1
}

# wait_gpus URL TOKEN N — waits up to 20 s for N GPUs in the pool.
wait_gpus() {
	local i n=0
	for ((i = 0; i < 400; i++)); do
		n=$(curl -fsS --max-time 1 -H "Authorization: Bearer $2" "$1/v1/gpus" 2>/dev/null | jq '.gpus | length' 2>/dev/null || echo 0)
		[[ "$n" == "$3" ]] && return 0
		sleep 0.05
	done
	echo "bench: the pool at $1 did not reach $3 GPUs in 20 s (has $n)" >&2
	return 1
}

# start_up NAME [ARGS...] — starts `gpunode up --sim-gpus 8xH100-80GB ARGS` in
# $work/NAME; sets URL, TOKEN, NODE_PID.
start_up() {
	local name=$1 port
	shift
	port=$(free_port)
	mkdir -p "$work/$name"
	"$BIN" up --data "$work/$name" --listen "127.0.0.1:$port" --sim-gpus 8xH100-80GB "$@" >"$work/$name.log" 2>&1 &
	NODE_PID=$!
	pids+=("$NODE_PID")
	URL="http://127.0.0.1:$port"
	wait_healthz "$URL" "$NODE_PID" "$work/$name.log"
	TOKEN=$(tr -d '[:space:]' <"$work/$name/admin.token")
	wait_gpus "$URL" "$TOKEN" 8
}

# The process executor, named when this build's `up` has --executor (older
# builds run processes without the flag); one client's tasks, so sharing the
# unisolated executor between clients is not at stake.
process_executor_args() {
	local help
	help=$("$BIN" up --help 2>&1)
	if grep -q -- '--executor' <<<"$help"; then
		echo "--executor process"
	fi
	if grep -q -- '--allow-shared-process' <<<"$help"; then
		echo "--allow-shared-process"
	fi
}
