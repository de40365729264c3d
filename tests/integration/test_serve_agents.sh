#!/usr/bin/env bash
# Separate roles on loopback: `gpunode serve` and two `gpunode agent`s (hosts
# a and b, 2 simulated GPUs each). Tasks spread over both; kill -9 of the
# agent holding a task makes the node declare its host lost after the grace
# period and run the task again on the other host (attempt counted); the
# restarted agent kills its orphaned process and registers again.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
export GPUNODE_URL="http://127.0.0.1:$port"
NODE_DATA=$TEST_DIR/node
mkdir -p "$NODE_DATA"
"$GPUNODE_BIN" serve --data "$NODE_DATA" --listen "127.0.0.1:$port" --host-grace 2 >>"$NODE_DATA/node.log" 2>&1 &
NODE_PID=$!
_track_pid "$NODE_PID"
healthy() { curl -fsS --max-time 1 "$GPUNODE_URL/healthz" >/dev/null 2>&1; }
wait_until 20 "gpunode serve to answer /healthz" healthy
GPUNODE_TOKEN=$(tr -d '[:space:]' <"$NODE_DATA/admin.token")
export GPUNODE_TOKEN

# Agents authenticate with an agent-role token; a client token may not.
agent_token=$(cli token create --client hosts --role agent)
client_token=$(cli token create --client carol)
api -t "$client_token" POST /v1/agents/register '{"host":"x","gpus":[]}'
assert_api_error 403 forbidden "a client token on an agent route"

start_agent() { # HOST
	"$GPUNODE_BIN" agent --node "$GPUNODE_URL" --token "$agent_token" --host "$1" \
		--state "$TEST_DIR/agent-$1" --sim-gpus 2xA100-80GB --executor process --allow-shared-process >>"$NODE_DATA/agent-$1.log" 2>&1 &
	local pid=$!
	_track_pid "$pid"
	echo "$pid"
}
pid_a=$(start_agent a)
pid_b=$(start_agent b)
gpus_online() { api GET /v1/gpus; [[ $(jq '[.gpus[] | select(.host_online)] | length' <<<"$HTTP_BODY") == "$1" ]]; }
wait_until 20 "4 GPUs of hosts a and b online" gpus_online 4

# Four tasks fill both hosts.
mark="40.$$$RANDOM"
ids=()
for i in 1 2 3 4; do ids+=("$(cli submit -- sleep "$mark$i")"); done
for id in "${ids[@]}"; do wait_for_state "$id" running 30; done
hosts=$(for id in "${ids[@]}"; do json_get "$(task_json "$id")" .host; done | sort | uniq -c | tr -s ' ')
assert_eq "2 a 2 b" "$(echo $hosts)" "tasks per host"

# Free one GPU on host a, then kill -9 host b's agent.
on_a=() on_b=()
for id in "${ids[@]}"; do
	if [[ $(json_get "$(task_json "$id")" .host) == a ]]; then on_a+=("$id"); else on_b+=("$id"); fi
done
cli cancel "${on_a[0]}" >/dev/null
kill -KILL "$pid_b"
wait "$pid_b" 2>/dev/null || true

# Within the grace (2 s) plus a pass, one of b's tasks runs again on a, on
# its second attempt; the other waits in the queue (a has one free GPU).
moved() {
	local n=0 id t
	for id in "${on_b[@]}"; do
		t=$(task_json "$id")
		[[ $(jq -r .host <<<"$t") == a && $(jq -r .state <<<"$t") == running && $(jq .attempts <<<"$t") == 2 ]] && n=$((n + 1))
	done
	((n == 1))
}
wait_until 15 "one of host b's tasks running on host a, attempt 2" moved
api GET /v1/hosts
assert_eq false "$(jq -r '.hosts[] | select(.id=="b") | .online' <<<"$HTTP_BODY")" "host b online after kill -9"
history=$(cli show "${on_b[0]}" --history)
assert_contains "$history" "requeued: host lost" "history of a task of host b"

# The old processes of b's tasks still run (their agent died, not them)...
orphans() { { pgrep -f -- "sleep $mark" || true; } | wc -l; }
# ...until b's agent restarts: it kills the orphans it cannot account for and
# registers again; the queued task then runs on b.
pid_b=$(start_agent b)
wait_until 20 "host b back online" gpus_online 4
both_running() {
	local id
	for id in "${on_b[@]}"; do [[ $(json_get "$(task_json "$id")" .state) == running ]] || return 1; done
}
wait_until 20 "both of b's former tasks running again" both_running
# a: on_a[1] + one moved task; b: the other moved task. 3 sleeps in all.
wait_until 10 "exactly 3 task processes (orphans killed)" test "$(orphans)" -eq 3

for id in "${ids[@]}"; do api POST "/v1/tasks/$id/cancel"; done
kill -INT "$pid_a" "$pid_b"
wait "$pid_a" "$pid_b" 2>/dev/null || true
wait_until 10 "no task process left" test "$(orphans)" -eq 0
stop_node
echo "ok"
