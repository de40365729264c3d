#!/usr/bin/env bash
# Several hosts, the node crashes (issue 3): the node and two agents each in
# their own network namespace on a private LAN (as in test_multi_host.sh).
# With 4 tasks running (2 per host) and 4 queued, `gpunode serve` is killed
# with SIGKILL. While it is down, one running task on each host completes.
# The node restarts on the same --data and the same address:
#  - both agents (never restarted) reconnect and are online again;
#  - no acknowledged task is lost: all 8 exist; the 2 that completed while the
#    node was down end succeeded from their agents' held exits, the 2 still
#    running are claimed by their agents (same host, attempt 1, not started
#    again), the queued ones run once GPUs free;
#  - all 8 end succeeded, each started once and completed exactly once (each
#    task appends a line to its own marker files).
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

netns_lan mhr
netns_host node "$LAN.1/24"
netns_host a "$LAN.2/24"
netns_host b "$LAN.3/24"
netns_client node

# The host grace is generous on purpose: after the restart the node keeps the
# placed tasks for their hosts this long, and the agents (which retry every
# half second) re-register well within it, so their running tasks are claimed
# rather than requeued. A shorter grace would make "started once" a race.
SERVE_ARGS=(--host-grace 30)
netns_serve node "$NODE_ADDR" "$TEST_DIR/node" "${SERVE_ARGS[@]}"
agent_token=$(cli token create --client hosts --role agent)
netns_agent a "$agent_token" "$TEST_DIR/agent-a" 2xH100-80GB
pid_a=$AGENT_PID
netns_agent b "$agent_token" "$TEST_DIR/agent-b" 2xH100-80GB
pid_b=$AGENT_PID

host_online() { # HOST true|false
	api GET /v1/hosts
	[[ "$HTTP_STATUS" == 200 && $(jq -r --arg h "$1" '.hosts[] | select(.id == $h) | .online' <<<"$HTTP_BODY") == "$2" ]]
}
gpus_online() {
	api GET /v1/gpus
	[[ "$HTTP_STATUS" == 200 && $(jq '[.gpus[] | select(.host_online)] | length' <<<"$HTTP_BODY") == "$1" ]]
}
wait_until 30 "hosts a and b online with 4 GPUs" gpus_online 4

cat >"$TEST_DIR/task.sh" <<'EOF'
#!/bin/sh
m=$1
echo "$GPUNODE_HOST" >>"$m/$GPUNODE_TASK_ID.starts"
while [ ! -e "$m/$GPUNODE_TASK_ID.release" ]; do sleep 0.2; done
echo "$GPUNODE_HOST" >>"$m/$GPUNODE_TASK_ID.done"
EOF
release() { local id; for id in "$@"; do : >"$MARKS/$id.release"; done; }

# 8 acknowledged tasks (submit prints the id only after the 201): 4 run, 4 wait.
ids=()
for _ in 1 2 3 4 5 6 7 8; do ids+=("$(cli submit --gpus 1 -- sh "$TEST_DIR/task.sh" "$MARKS")"); done
four_running() {
	api GET "/v1/tasks?state=running"
	[[ $(jq '.tasks | length' <<<"$HTTP_BODY") == 4 ]]
}
wait_until 30 "4 tasks running" four_running
running_on() { # HOST — the ids of our running tasks on HOST
	cli tasks --json --all --state running | jq -r --arg h "$1" '.tasks[] | select(.host == $h) | .id' | sort
}
mapfile -t run_a < <(running_on a)
mapfile -t run_b < <(running_on b)
assert_eq "2 2" "${#run_a[@]} ${#run_b[@]}" "running tasks on a and b"
queued=$(cli tasks --json --all --state queued | jq -r '.tasks[].id' | sort)
assert_eq 4 "$(wc -w <<<"$queued")" "queued tasks"
for id in "${run_a[@]}" "${run_b[@]}"; do
	wait_until 10 "task $id's start marker" test -s "$MARKS/$id.starts"
done

# --- the node dies ------------------------------------------------------------
echo "kill -9 of the node (pid $NODE_PID)"
kill_node_hard
# One running task per host completes while the node is down: only its agent
# knows, and must tell the node once it is back.
release "${run_a[0]}" "${run_b[0]}"
wait_until 20 "tasks ${run_a[0]} and ${run_b[0]} completed while the node is down" \
	test -s "$MARKS/${run_a[0]}.done" -a -s "$MARKS/${run_b[0]}.done"
_running "$pid_a" || fail "agent a exited when the node died"
_running "$pid_b" || fail "agent b exited when the node died"

# --- the node restarts on the same data dir and address ------------------------
netns_serve node "$NODE_ADDR" "$TEST_DIR/node" "${SERVE_ARGS[@]}"
wait_until 30 "host a online again" host_online a true
wait_until 30 "host b online again" host_online b true
for id in "${ids[@]}"; do
	api GET "/v1/tasks/$id"
	assert_status 200 "acknowledged task $id after the restart"
done
wait_for_state "${run_a[0]}" succeeded 30
wait_for_state "${run_b[0]}" succeeded 30
# The two still running were claimed by their agents: same host, same run.
for id in "${run_a[1]}" "${run_b[1]}"; do
	doc=$(task_json "$id")
	assert_eq "running 1" "$(jq -r '"\(.state) \(.attempts)"' <<<"$doc")" "task $id after the restart"
done
assert_eq a "$(json_get "$(task_json "${run_a[1]}")" .host)" "host of ${run_a[1]}"
assert_eq b "$(json_get "$(task_json "${run_b[1]}")" .host)" "host of ${run_b[1]}"
# The two GPUs freed by the completed tasks take two queued ones.
wait_until 30 "4 tasks running after the restart" four_running

# --- everything completes, each task started and completed exactly once --------
release "${ids[@]}"
for id in "${ids[@]}"; do wait_for_state "$id" succeeded 30; done
for id in "${ids[@]}"; do
	doc=$(task_json "$id")
	host=$(json_get "$doc" .host)
	assert_eq 1 "$(wc -l <"$MARKS/$id.done")" "completions of task $id ($(xargs <"$MARKS/$id.done"))"
	assert_eq 1 "$(wc -l <"$MARKS/$id.starts")" "starts of task $id ($(xargs <"$MARKS/$id.starts"))"
	assert_eq "$host" "$(cat "$MARKS/$id.done")" "host that completed $id"
	assert_eq "1 0" "$(jq -r '"\(.attempts) \(.exit_code)"' <<<"$doc")" "attempts and exit code of $id"
	history=$(cli show "$id" --history)
	assert_not_contains "$history" "requeued" "history of $id"
done

stop_agents "$pid_a" "$pid_b"
for f in "$TEST_DIR"/agent-*/agent.log; do _check_sanitizer_log "$f"; done
stop_node
echo "ok"
