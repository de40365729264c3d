#!/usr/bin/env bash
# Several hosts, a network partition (issue 3): the node and two agents each in
# their own network namespace on a private LAN (as in test_multi_host.sh).
# Host b's link to the LAN goes down while its agent and tasks keep running:
#  - after --host-grace the node marks b lost and runs b's tasks again on a
#    (attempt 2), while b's first runs still go on behind the partition;
#  - the link comes back: b's agent, never restarted, is told it must
#    register again, registers with what it holds, and is told to stop the
#    runs the node moved away; it stops them, and holds nothing on the node;
#  - every task succeeds and completes exactly once (each task appends a line
#    to its own marker file when it completes).
# Tasks run until the test creates their release file; every wait polls with a
# generous deadline.
# EXECUTOR=NAME runs the agents with --executor NAME (default process). The
# tasks are a host shell script writing marker files under $TEST_DIR, which
# only the process executor lets them see: a container backend would need the
# tasks rewritten (an image, markers reachable from inside).
source "$(dirname "$0")/lib.sh"

LAN=10.213.0
NODE_ADDR=$LAN.1:7070
MARKS=$TEST_DIR/marks
mkdir -p "$MARKS"

netns_lan mhp
netns_host node "$LAN.1/24"
netns_host a "$LAN.2/24"
netns_host b "$LAN.3/24"
netns_client node

# Short, but several heartbeats (1 s apart) long: see test_multi_host.sh.
netns_serve node "$NODE_ADDR" "$TEST_DIR/node" --host-grace $((4 * SLOW))
agent_token=$(cli token create --client hosts --role agent)
netns_agent a "$agent_token" "$TEST_DIR/agent-a" 4xA100-80GB
pid_a=$AGENT_PID
netns_agent b "$agent_token" "$TEST_DIR/agent-b" 2xA100-80GB
pid_b=$AGENT_PID

host_online() { # HOST true|false
	api GET /v1/hosts
	[[ "$HTTP_STATUS" == 200 && $(jq -r --arg h "$1" '.hosts[] | select(.id == $h) | .online' <<<"$HTTP_BODY") == "$2" ]]
}
gpus_online() {
	api GET /v1/gpus
	[[ "$HTTP_STATUS" == 200 && $(jq '[.gpus[] | select(.host_online)] | length' <<<"$HTTP_BODY") == "$1" ]]
}
wait_until 30 "hosts a and b online with 6 GPUs" gpus_online 6

cat >"$TEST_DIR/task.sh" <<'EOF'
#!/bin/sh
m=$1
echo "$GPUNODE_HOST" >>"$m/$GPUNODE_TASK_ID.starts"
while [ ! -e "$m/$GPUNODE_TASK_ID.release" ]; do sleep 0.2; done
echo "$GPUNODE_HOST" >>"$m/$GPUNODE_TASK_ID.done"
EOF
release() { local id; for id in "$@"; do : >"$MARKS/$id.release"; done; }
# runs_of ID — the hosts (namespaces) where a run of task ID is alive now.
runs_of() {
	local pid id
	for pid in $(pgrep -f -- "$TEST_DIR/task.sh" || true); do
		id=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^GPUNODE_TASK_ID=//p') || true
		if [[ "$id" == "$1" ]]; then netns_host_of_pid "$pid"; fi
	done | sort | xargs
}

# 6 tasks on 4 + 2 GPUs: both hosts full. Then two of a's complete, so a has
# room for b's two.
ids=()
for _ in 1 2 3 4 5 6; do ids+=("$(cli submit --gpus 1 -- sh "$TEST_DIR/task.sh" "$MARKS")"); done
for id in "${ids[@]}"; do wait_for_state "$id" running 30; done
on_a=() on_b=()
for id in "${ids[@]}"; do
	if [[ $(json_get "$(task_json "$id")" .host) == a ]]; then on_a+=("$id"); else on_b+=("$id"); fi
done
assert_eq "4 2" "${#on_a[@]} ${#on_b[@]}" "tasks on a and b"
for id in "${on_b[@]}"; do wait_until 10 "task $id's run on b" test "$(runs_of "$id")" == b; done
release "${on_a[0]}" "${on_a[1]}"
wait_for_state "${on_a[0]}" succeeded 30
wait_for_state "${on_a[1]}" succeeded 30

# --- partition: b's port on the LAN's bridge goes down ------------------------
ip -n "$(netns_name lan)" link set v-b down
wait_until 30 "host b marked offline" host_online b false
moved() {
	local id
	for id in "${on_b[@]}"; do
		api GET "/v1/tasks/$id"
		[[ $(jq -r '"\(.host) \(.state) \(.attempts)"' <<<"$HTTP_BODY") == "a running 2" ]] || return 1
	done
}
wait_until 30 "both of b's tasks running on a, attempt 2" moved
# b's agent is alive and still runs its first runs: two runs of each task now.
_running "$pid_b" || fail "agent b exited during the partition"
for id in "${on_b[@]}"; do
	wait_until 10 "task $id running on a and, cut off, on b" test "$(runs_of "$id")" == "a b"
done

# --- the partition heals ---------------------------------------------------------
ip -n "$(netns_name lan)" link set v-b up
# The agent's requests time out within 30 s (the client's limit) and it retries,
# so it is back well within this deadline.
wait_until 60 "host b online again" host_online b true
for id in "${on_b[@]}"; do
	wait_until 30 "task $id's first run on b stopped" test "$(runs_of "$id")" == a
	assert_eq "a running 2" "$(jq -r '"\(.host) \(.state) \(.attempts)"' <<<"$(task_json "$id")")" "task $id after the partition"
done
_running "$pid_b" || fail "agent b exited after the partition"
hosts=$(cli hosts --json)
assert_eq "a:true:4:4000 b:true:0:0" \
	"$(jq -r '[.hosts[] | "\(.id):\(.online):\(.tasks):\(.milli_allocated)"] | sort | join(" ")' <<<"$hosts")" \
	"hosts --json after the partition"

# b takes new work again (a is full).
new=("$(cli submit --gpus 1 -- sh "$TEST_DIR/task.sh" "$MARKS")")
wait_for_state "${new[0]}" running 30
assert_eq b "$(json_get "$(task_json "${new[0]}")" .host)" "host of a task submitted after the partition"

# --- everything completes, each task exactly once ---------------------------------
all=("${ids[@]}" "${new[@]}")
release "${all[@]}"
for id in "${all[@]}"; do wait_for_state "$id" succeeded 30; done
for id in "${all[@]}"; do
	host=$(json_get "$(task_json "$id")" .host)
	assert_eq 1 "$(wc -l <"$MARKS/$id.done")" "completions of task $id ($(xargs <"$MARKS/$id.done"))"
	assert_eq "$host" "$(cat "$MARKS/$id.done")" "host that completed $id"
done
for id in "${on_b[@]}"; do
	assert_eq "b a" "$(xargs <"$MARKS/$id.starts")" "runs of moved task $id"
done

stop_agents "$pid_a" "$pid_b"
for f in "$TEST_DIR"/agent-*/agent.log; do _check_sanitizer_log "$f"; done
stop_node
echo "ok"
