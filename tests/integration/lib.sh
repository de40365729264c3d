# lib.sh — helpers for the integration tests, sourced by every test_*.sh.
# Tests start a real `gpunode up` on a free loopback port in a fresh data dir
# and drive it over HTTP (curl) and through the CLI ($GPUNODE_BIN).
#
# Set by run.sh (defaults make a test runnable alone: `bash tests/integration/test_x.sh`):
#   GPUNODE_BIN  the binary (default build/gpunode)
#   TEST_DIR     a fresh temp dir for this test
# Exported by start_node: GPUNODE_URL, GPUNODE_TOKEN (admin), NODE_PID, NODE_DATA.
#
# Every assertion failure says what was expected and what came, then the test
# exits 1; on any failure the EXIT trap prints the tail of the node logs.
# shellcheck shell=bash

set -Eeuo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GPUNODE_BIN=${GPUNODE_BIN:-build/gpunode}
[[ "$GPUNODE_BIN" == /* ]] || GPUNODE_BIN="$REPO_ROOT/$GPUNODE_BIN"
export GPUNODE_BIN
if [[ -z "${TEST_DIR:-}" ]]; then
	TEST_DIR=$(mktemp -d /tmp/gpunode-test.XXXXXX)
	export HOME="$TEST_DIR/home" # the CLI's pointer file goes here, not in the real $HOME
	mkdir -p "$HOME"
fi
export TEST_DIR
cd "$REPO_ROOT"

# Sanitized builds start and stop more slowly.
SLOW=1
[[ -n "${GPUNODE_SANITIZED:-}" ]] && SLOW=3
NODE_START_TIMEOUT=$((15 * SLOW))
NODE_STOP_TIMEOUT=$((10 * SLOW))

NODE_PID=
NODE_DATA=
_lib_failed_reported=
# A command prefix for api and cli: empty, or `ip netns exec NS` once a test
# of several hosts calls netns_client (the node is then only reachable there).
_LIB_CLIENT_WRAP=()

# Prints a failure message to stderr and exits the test (or the subshell it
# is called in; with set -e the caller then fails too).
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Records a pid we started, so run.sh can kill what a timed-out test left.
_track_pid() {
	echo "$1" >>"$TEST_DIR/.pids"
}

_print_node_logs() {
	local f
	for f in "$TEST_DIR"/*/node.log "$TEST_DIR"/node*.log "$TEST_DIR"/*/agent.log; do
		[[ -f "$f" ]] || continue
		echo "---- last 40 lines of $f ----" >&2
		tail -n 40 "$f" >&2
		echo "----" >&2
	done
}

_lib_on_err() {
	local rc=$? line=$1 cmd=$2
	if [[ -z "$_lib_failed_reported" ]]; then
		_lib_failed_reported=1
		echo "FAIL: status $rc at line $line: $cmd" >&2
	fi
}

_lib_on_exit() {
	local rc=$?
	trap - ERR
	if ((rc != 0)); then
		_print_node_logs
	fi
	# Leave nothing running: SIGINT first so the node can clean up, then SIGKILL.
	if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
		kill -INT "$NODE_PID" 2>/dev/null || true
		local i
		for ((i = 0; i < 20; i++)); do
			kill -0 "$NODE_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$NODE_PID" 2>/dev/null || true
	fi
	local p
	for p in ${_LIB_BG_PIDS:-}; do
		kill -KILL "$p" 2>/dev/null || true
	done
	# Hooks registered with on_exit (e.g. netns_cleanup), last: they may need
	# the processes above gone. Each gets the test's exit status.
	local h
	for h in ${_LIB_EXIT_HOOKS:-}; do
		"$h" "$rc" || true
	done
	exit "$rc"
}
trap '_lib_on_err "$LINENO" "$BASH_COMMAND"' ERR
trap _lib_on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# on_exit FUNC — runs FUNC STATUS when the test exits (pass or fail), after
# the node and the tracked helpers are killed.
on_exit() {
	_LIB_EXIT_HOOKS="${_LIB_EXIT_HOOKS:-} $1"
}

# Remembers a background helper (e.g. a submitter loop) for cleanup.
track_bg() {
	_LIB_BG_PIDS="${_LIB_BG_PIDS:-} $1"
	_track_pid "$1"
}

# --- assertions ------------------------------------------------------------

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
	if [[ "$1" != "$2" ]]; then
		fail "${3:-value}: expected '$1', got '$2'"
	fi
}

# assert_ne UNEXPECTED ACTUAL [WHAT]
assert_ne() {
	if [[ "$1" == "$2" ]]; then
		fail "${3:-value}: expected anything but '$1'"
	fi
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
	if [[ "$1" != *"$2"* ]]; then
		fail "${3:-output}: expected to contain '$2', got: $1"
	fi
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
	if [[ "$1" == *"$2"* ]]; then
		fail "${3:-output}: expected NOT to contain '$2', got: $1"
	fi
}

# assert_match STRING ERE [WHAT]
assert_match() {
	if ! [[ "$1" =~ $2 ]]; then
		fail "${3:-value}: expected to match /$2/, got '$1'"
	fi
}

# json_get JSON FILTER — jq -r FILTER on JSON; fails the test if JSON is not JSON.
json_get() {
	local out
	if ! out=$(jq -r "$2" <<<"$1" 2>&1); then
		fail "json_get '$2': not valid JSON or bad filter ($out); input: ${1:0:500}"
	fi
	printf '%s\n' "$out"
}

# --- HTTP ------------------------------------------------------------------

# api [-t TOKEN | -n] METHOD PATH [BODY]
# One request to $GPUNODE_URL. BODY is sent as-is (a leading @ names a file,
# as with curl --data-binary). Uses the admin token unless -t gives another or
# -n gives none. Sets HTTP_STATUS, HTTP_BODY and HTTP_HEADERS (the raw
# response headers, lower-cased names). Never fails by itself.
api() {
	local token=${GPUNODE_TOKEN:-} args=()
	if [[ "$1" == -t ]]; then
		token=$2
		shift 2
	elif [[ "$1" == -n ]]; then
		token=
		shift
	fi
	local method=$1 path=$2
	args=(-sS -X "$method" -o "$TEST_DIR/.body" -D "$TEST_DIR/.headers" -w '%{http_code}' --max-time 30)
	[[ -n "$token" ]] && args+=(-H "Authorization: Bearer $token")
	if (($# >= 3)); then
		args+=(-H 'Content-Type: application/json' --data-binary "$3")
	fi
	: >"$TEST_DIR/.body"
	: >"$TEST_DIR/.headers"
	HTTP_STATUS=$("${_LIB_CLIENT_WRAP[@]}" curl "${args[@]}" "$GPUNODE_URL$path" 2>"$TEST_DIR/.curlerr") || true
	HTTP_BODY=$(cat "$TEST_DIR/.body")
	HTTP_HEADERS=$(tr '[:upper:]' '[:lower:]' <"$TEST_DIR/.headers" | tr -d '\r')
}

# header_value NAME — a header of the last api response (NAME lower-case).
header_value() {
	sed -n "s/^$1: *//p" <<<"$HTTP_HEADERS" | tail -n 1
}

# assert_status EXPECTED [WHAT] — checks the last api response's status.
assert_status() {
	if [[ "$HTTP_STATUS" != "$1" ]]; then
		fail "${2:-request}: expected HTTP $1, got $HTTP_STATUS; body: ${HTTP_BODY:0:500} $(cat "$TEST_DIR/.curlerr" 2>/dev/null)"
	fi
}

# assert_api_error STATUS CODE [WHAT] — the last response is STATUS with
# {"error":{"code":CODE,"message":<non-empty string>}} as JSON.
assert_api_error() {
	local what=${3:-request}
	assert_status "$1" "$what"
	if ! jq -e . >/dev/null 2>&1 <<<"$HTTP_BODY"; then
		fail "$what: error body is not JSON: ${HTTP_BODY:0:300}"
	fi
	local code msg
	code=$(jq -r '.error | objects | .code | strings' <<<"$HTTP_BODY")
	msg=$(jq -r '.error | objects | .message | strings' <<<"$HTTP_BODY")
	assert_eq "$2" "$code" "$what: error.code (body $HTTP_BODY)"
	if [[ -z "$msg" ]]; then
		fail "$what: error.message should be a non-empty string; body: $HTTP_BODY"
	fi
	assert_contains "$(header_value content-type)" "application/json" "$what: Content-Type"
}

# --- the node --------------------------------------------------------------

# free_port — prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# gpus_in_spec SPEC — number of GPUs in a --sim-gpus spec ("2xA100-40GB,4xRTX4090-24GB" -> 6).
gpus_in_spec() {
	local total=0 part n
	IFS=, read -ra parts <<<"$1"
	for part in "${parts[@]}"; do
		if [[ "$part" =~ ^([0-9]+)x ]]; then
			n=${BASH_REMATCH[1]}
		else
			n=1
		fi
		total=$((total + n))
	done
	echo "$total"
}

# start_node DATA_DIR SIM_GPUS [EXTRA_ARGS...]
# Starts `gpunode up` in the background (log: DATA_DIR/node.log, appended so a
# restart keeps the first run's lines), waits until /healthz answers and the
# local agent's GPUs are in the pool, and exports GPUNODE_URL, GPUNODE_TOKEN,
# NODE_PID and NODE_DATA.
start_node() {
	local data=$1 spec=$2
	shift 2
	local port
	port=$(free_port)
	mkdir -p "$data"
	NODE_DATA=$data
	echo "=== start $(date +%T.%N) port $port sim-gpus $spec" >>"$data/node.log"
	"$GPUNODE_BIN" up --data "$data" --listen "127.0.0.1:$port" --sim-gpus "$spec" \
		--executor process --allow-shared-process "$@" >>"$data/node.log" 2>&1 &
	NODE_PID=$!
	_track_pid "$NODE_PID"
	export GPUNODE_URL="http://127.0.0.1:$port" NODE_PID NODE_DATA

	local deadline=$((SECONDS + NODE_START_TIMEOUT))
	until curl -fsS --max-time 1 "$GPUNODE_URL/healthz" >/dev/null 2>&1; do
		if ! kill -0 "$NODE_PID" 2>/dev/null; then
			local rc=0
			wait "$NODE_PID" || rc=$?
			NODE_PID=
			fail "gpunode up exited (status $rc) before /healthz answered"
		fi
		if ((SECONDS >= deadline)); then
			fail "gpunode up did not answer $GPUNODE_URL/healthz within ${NODE_START_TIMEOUT}s"
		fi
		sleep 0.05
	done
	if [[ ! -s "$data/admin.token" ]]; then
		fail "gpunode up serves /healthz but $data/admin.token is missing or empty"
	fi
	GPUNODE_TOKEN=$(tr -d '[:space:]' <"$data/admin.token")
	export GPUNODE_TOKEN

	# The local agent registers over loopback after the node listens; wait
	# for its GPUs so tests see the whole pool from their first request.
	local want have
	want=$(gpus_in_spec "$spec")
	while :; do
		api GET /v1/gpus
		have=$(jq -r '.gpus | length' <<<"$HTTP_BODY" 2>/dev/null || echo "?")
		[[ "$HTTP_STATUS" == 200 && "$have" == "$want" ]] && break
		if ! kill -0 "$NODE_PID" 2>/dev/null; then
			local rc=0
			wait "$NODE_PID" || rc=$?
			NODE_PID=
			fail "gpunode up exited (status $rc) while waiting for its local agent's $want GPUs"
		fi
		if ((SECONDS >= deadline)); then
			fail "the pool did not reach $want GPUs within ${NODE_START_TIMEOUT}s (last: HTTP $HTTP_STATUS, $have GPUs, body ${HTTP_BODY:0:300})"
		fi
		sleep 0.05
	done
}

# _check_sanitizer_log FILE — fails if a sanitizer report is in FILE.
_check_sanitizer_log() {
	if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)' "$1" 2>/dev/null; then
		fail "sanitizer report in $1"
	fi
}

# stop_node — SIGINT, wait for a clean exit (status 0, or 130 for death by
# SIGINT), SIGKILL if it does not stop in time (a failure). Also fails on a
# sanitizer report in the node log.
stop_node() {
	[[ -n "$NODE_PID" ]] || return 0
	local pid=$NODE_PID rc=0 i
	kill -INT "$pid" 2>/dev/null || true
	for ((i = 0; i < NODE_STOP_TIMEOUT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		NODE_PID=
		fail "gpunode up did not stop within ${NODE_STOP_TIMEOUT}s of SIGINT (killed)"
	fi
	wait "$pid" || rc=$?
	NODE_PID=
	_check_sanitizer_log "$NODE_DATA/node.log"
	if ((rc != 0 && rc != 130)); then
		fail "gpunode up exited with status $rc after SIGINT (expected 0)"
	fi
}

# kill_node_hard — kill -9 the node and reap it.
kill_node_hard() {
	[[ -n "$NODE_PID" ]] || return 0
	kill -KILL "$NODE_PID" 2>/dev/null || true
	wait "$NODE_PID" 2>/dev/null || true
	NODE_PID=
}

# --- tasks -----------------------------------------------------------------

# jq filter: a history document -> "from>to from>to ..." of its transitions.
# The first event records the creation (from is null, or from == to ==
# "queued"); it is not a transition and is left out.
# shellcheck disable=SC2034 # used by the tests that source this file
TRANSITIONS_JQ='.events | (if length > 0 and (.[0].from == null or .[0].from == "" or .[0].from == .[0].to) then .[1:] else . end) | map("\(.from)>\(.to)") | join(" ")'

# cli ARGS... — runs the CLI (output to stdout), failing the test if it fails.
cli() {
	local out rc=0
	out=$("${_LIB_CLIENT_WRAP[@]}" "$GPUNODE_BIN" "$@" 2>"$TEST_DIR/.clierr") || rc=$?
	if ((rc != 0)); then
		fail "gpunode $*: exit $rc; stdout: ${out:0:500}; stderr: $(head -c 500 "$TEST_DIR/.clierr")"
	fi
	printf '%s\n' "$out"
}

# submit_json BODY [TOKEN] — POST /v1/tasks, expects 201, prints the new id.
submit_json() {
	if (($# >= 2)); then
		api -t "$2" POST /v1/tasks "$1"
	else
		api POST /v1/tasks "$1"
	fi
	assert_status 201 "POST /v1/tasks $1"
	local id
	id=$(json_get "$HTTP_BODY" .id)
	assert_match "$id" '^[0-9a-f]{20}$' "id of the new task"
	printf '%s\n' "$id"
}

# task_json ID — prints GET /v1/tasks/ID (admin), failing on non-200.
task_json() {
	api GET "/v1/tasks/$1"
	assert_status 200 "GET /v1/tasks/$1"
	printf '%s\n' "$HTTP_BODY"
}

_is_terminal() {
	case $1 in
	succeeded | failed | cancelled | expired | lost) return 0 ;;
	*) return 1 ;;
	esac
}

# wait_for_state ID STATE TIMEOUT_S — polls the task until it is in STATE;
# fails at once if it ends in another terminal state, or at the timeout.
wait_for_state() {
	local id=$1 want=$2 timeout=$(($3 * SLOW)) state=
	local deadline=$((SECONDS + timeout))
	while :; do
		api GET "/v1/tasks/$id"
		if [[ "$HTTP_STATUS" == 200 ]]; then
			state=$(jq -r .state <<<"$HTTP_BODY")
			[[ "$state" == "$want" ]] && return 0
			if _is_terminal "$state"; then
				fail "task $id: expected state $want, but it ended $state: $HTTP_BODY"
			fi
		fi
		if ((SECONDS >= deadline)); then
			fail "task $id: expected state $want within ${timeout}s, last HTTP $HTTP_STATUS: ${HTTP_BODY:0:600}"
		fi
		sleep 0.05
	done
}

# wait_until TIMEOUT_S WHAT CMD... — polls CMD until it succeeds.
wait_until() {
	local timeout=$(($1 * SLOW)) what=$2
	shift 2
	local deadline=$((SECONDS + timeout))
	until "$@"; do
		if ((SECONDS >= deadline)); then
			fail "timed out after ${timeout}s waiting for: $what"
		fi
		sleep 0.05
	done
}

# --- several hosts on one machine: network namespaces -----------------------
# A test of several hosts builds a private LAN out of network namespaces: one
# namespace holds a bridge, and each host gets its own namespace joined to the
# bridge by a veth pair. Both ends of every veth are created directly inside
# these namespaces, so the machine's own interfaces, addresses and routes are
# never touched, and the LAN's addresses exist only inside the namespaces.
# Processes are started in a host's namespace with `ip netns exec`, which execs
# the command (the pid we get is the process's own).
#
# Namespaces are named gn-TAG-PID-NAME (PID: the test's shell). netns_lan
# removes what an earlier run of the same test left behind if that run was
# killed before its exit trap (its PID is dead), and registers netns_cleanup
# to run at exit, pass or fail.
#
#   netns_lan TAG               create the LAN (the bridge's namespace)
#   netns_host NAME ADDR/LEN    add host NAME with address ADDR on the LAN
#   netns_name NAME             print host NAME's namespace
#   in_netns NAME CMD...        run CMD in host NAME's namespace
#   netns_client NAME           from now on api and cli (and what is built on
#                               them: wait_for_state, submit_json...) run in
#                               host NAME's namespace
#   netns_host_of_pid PID       print the NAME of the host whose namespace PID
#                               runs in (nothing if none of ours)
#   netns_cleanup               kill every process left in the namespaces and
#                               delete them

_NETNS_PREFIX=
_NETNS_LIST=()

netns_lan() {
	local tag=$1 ns pid
	command -v ip >/dev/null || fail "netns_lan: iproute2 (ip) is not installed"
	# Leftovers of a killed earlier run of this test (their owner is dead).
	while read -r ns _; do
		[[ "$ns" =~ ^gn-$tag-([0-9]+)- ]] || continue
		pid=${BASH_REMATCH[1]}
		kill -0 "$pid" 2>/dev/null && continue
		echo "netns_lan: removing $ns, left by dead run $pid" >&2
		_netns_kill_all "$ns"
		ip netns del "$ns" 2>/dev/null || true
	done < <(ip netns list 2>/dev/null)
	_NETNS_PREFIX="gn-$tag-$$"
	on_exit netns_cleanup
	ns="$_NETNS_PREFIX-lan"
	_NETNS_LIST+=("$ns")
	ip netns add "$ns" || fail "ip netns add $ns failed (root and CAP_SYS_ADMIN needed)"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add br0 type bridge
	ip -n "$ns" link set br0 up
}

netns_host() {
	local name=$1 addr=$2 ns="$_NETNS_PREFIX-$1" lan="$_NETNS_PREFIX-lan"
	[[ -n "$_NETNS_PREFIX" ]] || fail "netns_host before netns_lan"
	_NETNS_LIST+=("$ns")
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	# eth0 in the host's namespace, its peer v-NAME straight in the LAN's.
	ip -n "$ns" link add eth0 type veth peer name "v-$name" netns "$lan"
	ip -n "$lan" link set "v-$name" master br0
	ip -n "$lan" link set "v-$name" up
	ip -n "$ns" addr add "$addr" dev eth0
	ip -n "$ns" link set eth0 up
}

netns_name() {
	printf '%s\n' "$_NETNS_PREFIX-$1"
}

in_netns() {
	local ns="$_NETNS_PREFIX-$1"
	shift
	ip netns exec "$ns" "$@"
}

netns_client() {
	_LIB_CLIENT_WRAP=(ip netns exec "$_NETNS_PREFIX-$1")
}

netns_host_of_pid() {
	local ns
	for ns in $(ip netns identify "$1" 2>/dev/null); do
		if [[ "$ns" == "$_NETNS_PREFIX"-* ]]; then printf '%s\n' "${ns#"$_NETNS_PREFIX"-}"; fi
	done
	return 0
}

# _netns_kill_all NS — SIGKILL every process in NS, wait (generously) until
# none is left: a namespace is only gone once its last process is.
_netns_kill_all() {
	local ns=$1 p i
	for ((i = 0; i < 100; i++)); do
		local pids
		pids=$(ip netns pids "$ns" 2>/dev/null) || return 0
		[[ -n "$pids" ]] || return 0
		for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
		sleep 0.1
	done
	echo "netns: processes still in $ns after 10s: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')" >&2
}

netns_cleanup() {
	local ns i
	# Hosts first, the LAN (first in the list) last.
	for ((i = ${#_NETNS_LIST[@]} - 1; i >= 0; i--)); do
		ns=${_NETNS_LIST[i]}
		_netns_kill_all "$ns"
		ip netns del "$ns" 2>/dev/null || true
	done
	_NETNS_LIST=()
}

# netns_serve HOST ADDR:PORT DATA [ARGS...] — starts `gpunode serve` in host
# HOST's namespace, listening on ADDR:PORT (log: DATA/node.log, appended),
# waits for /healthz from that namespace, and exports GPUNODE_URL,
# GPUNODE_TOKEN, NODE_PID and NODE_DATA (stop_node and kill_node_hard work).
netns_serve() {
	local host=$1 listen=$2 data=$3
	shift 3
	mkdir -p "$data"
	NODE_DATA=$data
	echo "=== serve $(date +%T.%N) in $(netns_name "$host") on $listen" >>"$data/node.log"
	# ip directly, not in_netns: a background shell function runs in a
	# subshell, and $! would be that subshell, not the node.
	ip netns exec "$_NETNS_PREFIX-$host" "$GPUNODE_BIN" serve --data "$data" --listen "$listen" "$@" >>"$data/node.log" 2>&1 &
	NODE_PID=$!
	_track_pid "$NODE_PID"
	export GPUNODE_URL="http://$listen" NODE_PID NODE_DATA
	local deadline=$((SECONDS + NODE_START_TIMEOUT))
	until in_netns "$host" curl -fsS --max-time 1 "$GPUNODE_URL/healthz" >/dev/null 2>&1; do
		if ! kill -0 "$NODE_PID" 2>/dev/null; then
			local rc=0
			wait "$NODE_PID" || rc=$?
			NODE_PID=
			fail "gpunode serve exited (status $rc) before $GPUNODE_URL/healthz answered"
		fi
		((SECONDS < deadline)) || fail "gpunode serve did not answer $GPUNODE_URL/healthz within ${NODE_START_TIMEOUT}s"
		sleep 0.05
	done
	[[ -s "$data/admin.token" ]] || fail "gpunode serve answers but $data/admin.token is missing or empty"
	GPUNODE_TOKEN=$(tr -d '[:space:]' <"$data/admin.token")
	export GPUNODE_TOKEN
}

# netns_agent HOST TOKEN STATE SIM_GPUS [ARGS...] — starts `gpunode agent
# --host HOST` in host HOST's namespace against $GPUNODE_URL (log:
# STATE/agent.log, appended); sets AGENT_PID (not printed: the agent must be
# the test shell's own child, so that the test can wait for it). The executor is
# ${EXECUTOR:-process}: the agent's own pick would be docker or oci on a
# machine that has them, and these tests' tasks are host scripts.
netns_agent() {
	local host=$1 token=$2 state=$3 spec=$4
	shift 4
	local ex=(--executor "${EXECUTOR:-process}")
	[[ "${EXECUTOR:-process}" == process ]] && ex+=(--allow-shared-process)
	mkdir -p "$state"
	echo "=== agent $(date +%T.%N) in $(netns_name "$host")" >>"$state/agent.log"
	ip netns exec "$_NETNS_PREFIX-$host" "$GPUNODE_BIN" agent --node "$GPUNODE_URL" --token "$token" --host "$host" \
		--state "$state" --sim-gpus "$spec" "${ex[@]}" "$@" >>"$state/agent.log" 2>&1 &
	AGENT_PID=$!
	_track_pid "$AGENT_PID"
}

# _running PID — true while PID exists and is not a zombie (an exited child
# stays a zombie until waited for, and kill -0 still succeeds on it).
_running() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n "$s" && "$s" != Z* ]]
}

# stop_agents PID... — SIGINT to agents the test started (its own children);
# each must exit within NODE_STOP_TIMEOUT with status 0 (or 130, death by
# SIGINT), else the test fails.
stop_agents() {
	local p rc deadline
	kill -INT "$@" 2>/dev/null || true
	for p in "$@"; do
		deadline=$((SECONDS + NODE_STOP_TIMEOUT))
		while _running "$p"; do
			if ((SECONDS >= deadline)); then
				kill -KILL "$p" 2>/dev/null || true
				wait "$p" 2>/dev/null || true
				fail "agent $p did not stop within ${NODE_STOP_TIMEOUT}s of SIGINT (killed)"
			fi
			sleep 0.1
		done
		rc=0
		wait "$p" || rc=$?
		((rc == 0 || rc == 130)) || fail "agent $p exited with status $rc after SIGINT (expected 0)"
	done
}

# --- warm containers (docker and oci executors) ---

# _warm_task TOKEN — one --reuse-warm task that reports its container's
# hostname and what the task before it left in /work; prints its log.
_warm_task() {
	local peek='echo "host=$(hostname) seen=$(cat /work/mark 2>/dev/null || echo none)"; echo left-by-$GPUNODE_TASK_ID > /work/mark'
	local tid
	tid=$(GPUNODE_TOKEN=$1 cli submit --image busybox:local --reuse-warm -- sh -c "$peek")
	wait_for_state "$tid" succeeded 60
	cli logs "$tid"
}

_warm_host() { sed -n 's/^host=\([^ ]*\).*/\1/p' <<<"$1"; }

# check_warm_reuse — two tasks of one client (alice) share one warm container
# with the scratch dir wiped between them; another client's (bob) never runs
# in it. Sets WARM_HOST to the hostname of alice's warm container.
check_warm_reuse() {
	local alice bob a1 a2 b1
	alice=$(cli token create --client alice)
	bob=$(cli token create --client bob)
	a1=$(_warm_task "$alice")
	a2=$(_warm_task "$alice")
	b1=$(_warm_task "$bob")
	assert_eq "$(_warm_host "$a1")" "$(_warm_host "$a2")" "alice's second task runs in her warm container"
	assert_contains "$a2" "seen=none" "the scratch dir is wiped between two tasks in one warm container"
	assert_ne "$(_warm_host "$a1")" "$(_warm_host "$b1")" "bob's task must not run in alice's warm container"
	WARM_HOST=$(_warm_host "$a1")
}

# start_node_discovering DATA HOST N [ARGS...] — `gpunode up` with no
# --sim-gpus, so that its agent discovers the host's GPUs (tests point it at
# a stand-in driver); waits until the pool has N GPUs.
start_node_discovering() {
	local data=$1 host=$2 want=$3
	shift 3
	local port
	port=$(free_port)
	NODE_DATA=$data
	mkdir -p "$data"
	"$GPUNODE_BIN" up --data "$data" --listen "127.0.0.1:$port" --host "$host" --executor process "$@" \
		>>"$data/node.log" 2>&1 &
	NODE_PID=$!
	_track_pid "$NODE_PID"
	export GPUNODE_URL="http://127.0.0.1:$port" NODE_PID NODE_DATA
	wait_until 20 "gpunode up answers /healthz" curl -fsS --max-time 1 "$GPUNODE_URL/healthz" -o /dev/null
	GPUNODE_TOKEN=$(tr -d '[:space:]' <"$data/admin.token")
	export GPUNODE_TOKEN
	_pool_has() { [[ "$(cli gpus --json | jq '.gpus | length')" == "$want" ]]; }
	wait_until 20 "$want GPUs in the pool" _pool_has
}
