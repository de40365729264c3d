#!/usr/bin/env bash
# Several hosts (issue 3): the node and two agents on three "machines", each
# its own network namespace on a private LAN (10.213.0.0/24, a bridge in a
# fourth namespace). The node listens on its LAN address only, so the agents
# reach it over the LAN, not over loopback.
#  1. 1-GPU tasks spread over both hosts (6 tasks on 4+2 GPUs: both must be
#     used); the node's host for each task is the namespace its process
#     really runs in, and the GPUNODE_HOST the task itself saw.
#  2. kill -9 of agent b: after --host-grace the node marks b lost and
#     requeues b's running tasks onto a (attempt 2), where they run.
#  3. b's agent restarts: it registers again (online), kills its orphaned
#     runs of the moved tasks, holds nothing on the node, and takes new work.
#  4. Every task succeeds, and completes exactly once: each task appends a
#     line to its own marker file when it completes, and every marker file has
#     exactly one line (an orphan left running would add a second).
# Tasks run until the test creates their release file, so nothing here
# depends on timing; every wait polls with a generous deadline.
# EXECUTOR=NAME runs the agents with --executor NAME (default process). The
# tasks are a host shell script writing marker files under $TEST_DIR, which
# only the process executor lets them see: a container backend would need the
# tasks rewritten (an image, markers reachable from inside).
source "$(dirname "$0")/lib.sh"

LAN=10.213.0
NODE_ADDR=$LAN.1:7070
MARKS=$TEST_DIR/marks
mkdir -p "$MARKS"

netns_lan mh
netns_host node "$LAN.1/24"
netns_host a "$LAN.2/24"
netns_host b "$LAN.3/24"
netns_client node # the CLI and api calls run on the node's machine, over its LAN address

# A short host grace, so b's loss is declared soon (the test only waits for
# it), but several heartbeats (1 s apart) long, so that a busy machine cannot
# make the live agent a miss enough of them to be declared lost too.
netns_serve node "$NODE_ADDR" "$TEST_DIR/node" --host-grace $((4 * SLOW))
in_netns a curl -fsS --max-time 5 "$GPUNODE_URL/healthz" >/dev/null ||
	fail "host a cannot reach the node at $GPUNODE_URL over the LAN"
# Nothing listens on host a's own loopback: the agents really use the LAN.
if in_netns a curl -fsS --max-time 2 "http://127.0.0.1:7070/healthz" >/dev/null 2>&1; then
	fail "something answers on 127.0.0.1:7070 inside host a's namespace"
fi

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
hosts=$(cli hosts --json)
assert_eq "a:true:4 b:true:2" "$(jq -r '[.hosts[] | "\(.id):\(.online):\(.gpus)"] | sort | join(" ")' <<<"$hosts")" \
	"hosts --json after both agents joined"

# The task: marks its start, waits for its release file, marks its completion.
# Markers are named by the task id and hold the host the run saw.
cat >"$TEST_DIR/task.sh" <<'EOF'
#!/bin/sh
m=$1
echo "$GPUNODE_HOST" >>"$m/$GPUNODE_TASK_ID.starts"
while [ ! -e "$m/$GPUNODE_TASK_ID.release" ]; do sleep 0.2; done
echo "$GPUNODE_HOST" >>"$m/$GPUNODE_TASK_ID.done"
EOF
submit_task() { cli submit --gpus 1 -- sh "$TEST_DIR/task.sh" "$MARKS"; }
release() { local id; for id in "$@"; do : >"$MARKS/$id.release"; done; }

# task_procs — "ID HOST" for each live run of task.sh: the task id from its
# environment, the host from the network namespace it runs in.
task_procs() {
	local pid id
	for pid in $(pgrep -f -- "$TEST_DIR/task.sh" || true); do
		id=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^GPUNODE_TASK_ID=//p') || true
		if [[ -n "$id" ]]; then echo "$id $(netns_host_of_pid "$pid")"; fi
	done | sort
	return 0
}
# runs_of ID — the hosts where a run of task ID is alive now, sorted, space-separated.
runs_of() { task_procs | awk -v id="$1" '$1 == id { print $2 }' | sort | xargs; }

field() { json_get "$(task_json "$1")" "$2"; } # ID JQ-FILTER

# --- 1. spread ---------------------------------------------------------------
ids=()
for _ in 1 2 3 4 5 6; do ids+=("$(submit_task)"); done
for id in "${ids[@]}"; do wait_for_state "$id" running 30; done

listed=$(cli tasks --json --all)
per_host=$(jq -r --argjson ids "$(printf '%s\n' "${ids[@]}" | jq -R . | jq -s .)" \
	'[.tasks[] | select(.id as $i | $ids | index($i)) | .host] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' <<<"$listed")
assert_eq "a=4 b=2" "$per_host" "tasks per host in tasks --json"

on_a=() on_b=()
for id in "${ids[@]}"; do
	doc=$(cli show "$id" --json)
	host=$(json_get "$doc" .host)
	assert_eq 1 "$(json_get "$doc" .attempts)" "attempts of $id"
	assert_eq "${EXECUTOR:-process}" "$(json_get "$doc" .executor)" "executor of $id"
	# The run is where the node says: its namespace, and what it was told.
	wait_until 10 "task $id's process running in host $host's namespace" test "$(runs_of "$id")" == "$host"
	wait_until 10 "task $id's start marker" test -s "$MARKS/$id.starts"
	assert_eq "$host" "$(cat "$MARKS/$id.starts")" "GPUNODE_HOST seen by task $id"
	if [[ "$host" == a ]]; then on_a+=("$id"); else on_b+=("$id"); fi
done

# Two of a's tasks complete: a now has 2 free GPUs, b none.
release "${on_a[0]}" "${on_a[1]}"
wait_for_state "${on_a[0]}" succeeded 30
wait_for_state "${on_a[1]}" succeeded 30

# --- 2. kill -9 of agent b: lost after the grace, its tasks move to a -------
echo "kill -9 of agent b (pid $pid_b)"
kill -KILL "$pid_b"
wait "$pid_b" 2>/dev/null || true
wait_until 30 "host b marked offline" host_online b false
moved() {
	local id
	for id in "${on_b[@]}"; do
		api GET "/v1/tasks/$id"
		[[ $(jq -r '"\(.host) \(.state) \(.attempts)"' <<<"$HTTP_BODY") == "a running 2" ]] || return 1
	done
}
wait_until 30 "both of b's tasks running on a, attempt 2" moved
for id in "${on_b[@]}"; do
	history=$(cli show "$id" --history)
	assert_contains "$history" "requeued: host lost" "history of $id"
done
# Their first runs still live in b's namespace (the agent died, not them),
# next to their second runs on a: the restart below has orphans to handle.
for id in "${on_b[@]}"; do
	wait_until 10 "task $id running on a (attempt 2) and, orphaned, on b" test "$(runs_of "$id")" == "a b"
done
assert_eq true "$(jq -r '.hosts[] | select(.id == "a") | .online' <<<"$(cli hosts --json)")" "host a online"

# --- 3. b's agent restarts: registers, kills its orphans, takes new work ----
netns_agent b "$agent_token" "$TEST_DIR/agent-b" 2xA100-80GB
pid_b=$AGENT_PID
wait_until 30 "host b online again" host_online b true
for id in "${on_b[@]}"; do
	wait_until 20 "task $id's orphaned run on b killed" test "$(runs_of "$id")" == a
	assert_eq "a running 2" "$(jq -r '"\(.host) \(.state) \(.attempts)"' <<<"$(task_json "$id")")" "task $id after b's return"
done
# The node agrees: b holds nothing, a holds its 2 + b's 2 (4000 milli).
hosts=$(cli hosts --json)
assert_eq "a:true:4:4000 b:true:0:0" \
	"$(jq -r '[.hosts[] | "\(.id):\(.online):\(.tasks):\(.milli_allocated)"] | sort | join(" ")' <<<"$hosts")" \
	"hosts --json after b's agent returned"

# a is full: new tasks can only go to b, which works again.
new=("$(submit_task)" "$(submit_task)")
for id in "${new[@]}"; do
	wait_for_state "$id" running 30
	assert_eq b "$(field "$id" .host)" "host of new task $id"
	wait_until 10 "task $id's process in b's namespace" test "$(runs_of "$id")" == b
done

# --- 4. everything completes, each task exactly once ------------------------
all=("${ids[@]}" "${new[@]}")
release "${all[@]}"
for id in "${all[@]}"; do wait_for_state "$id" succeeded 30; done
wait_until 10 "no run of any task left" test -z "$(task_procs)"
for id in "${all[@]}"; do
	doc=$(task_json "$id")
	host=$(json_get "$doc" .host)
	assert_eq 1 "$(wc -l <"$MARKS/$id.done")" "completions of task $id ($(xargs <"$MARKS/$id.done"))"
	assert_eq "$host" "$(cat "$MARKS/$id.done")" "host that completed $id"
	assert_eq 0 "$(json_get "$doc" .exit_code)" "exit code of $id"
done
for id in "${on_b[@]}"; do
	assert_eq "b a" "$(xargs <"$MARKS/$id.starts")" "runs of moved task $id"
	assert_eq 2 "$(field "$id" .attempts)" "attempts of moved task $id"
done
hosts=$(cli hosts --json)
assert_eq "a:0:0 b:0:0" "$(jq -r '[.hosts[] | "\(.id):\(.tasks):\(.milli_allocated)"] | sort | join(" ")' <<<"$hosts")" \
	"hosts --json at the end"

# Clean stops: the agents on SIGINT, then the node (stop_node checks status and sanitizer reports).
stop_agents "$pid_a" "$pid_b"
for f in "$TEST_DIR"/agent-*/agent.log; do _check_sanitizer_log "$f"; done
stop_node
echo "ok"
