#!/usr/bin/env bash
# The Docker executor against a real dockerd (docker_env.sh): the issue's
# contract as written, reduced capabilities, exactly the task's own
# /dev/nvidiaN (the other GPU's node cannot be made or opened), the outcomes
# a user sees (oom, timeout, image_not_found, cancelled) with usage, logs -f
# while it runs, and warm containers reused by one client, never across two.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/docker_env.sh"

host=dk$$ # unique: the agent removes every container labelled for its host that it does not own
start_node "$TEST_DIR/data" 2xH100-80GB --executor docker --host "$host"
G=$GPUNODE_BIN
wait_until 10 "the agent to say it chose docker" grep -q "executor=docker" "$NODE_DATA/node.log"

# --- the contract, exactly as the issue writes it ---
id=$("$G" submit --image busybox:local --gpus 1 --memory 64M -- sh -c 'ls /dev; grep CapEff /proc/self/status')
wait_for_state "$id" succeeded 60
show=$("$G" show "$id" --json)
assert_eq succeeded "$(jq -r .state <<<"$show")" "state"
assert_eq 0 "$(jq -r .exit_code <<<"$show")" "exit_code"
assert_eq docker "$(jq -r .executor <<<"$show")" "executor"
assert_eq null "$(jq -c .failure_reason <<<"$show")" "failure_reason on success"
assert_eq 64 "$(jq -r .memory_mb <<<"$show")" "memory_mb"
logs=$("$G" logs "$id")

# Capabilities: CHOWN DAC_OVERRIDE FOWNER SETGID SETUID only (Docker's default set is 0xa80425fb).
assert_contains "$logs" "CapEff:	00000000000000cb" "CapEff of the task"
# Exactly its own GPU's node: /dev/nvidiaINDEX of the GPU it was given.
uuid=$(jq -r '.gpus[0]' <<<"$show")
api GET /v1/gpus
index=$(jq -r --arg u "$uuid" '.gpus[] | select(.uuid == $u) | .index' <<<"$HTTP_BODY")
assert_eq "nvidia$index" "$(grep '^nvidia' <<<"$logs" | tr '\n' ' ' | sed 's/ $//')" "the /dev/nvidia* nodes the task sees"

# --- the other GPU: no node, cannot make one (no CAP_MKNOD), own one opens to ENXIO (no driver) ---
other=$((1 - index))
read -r maj_hex min_hex < <(stat -c '%t %T' "$NODE_DATA/agent/dev/nvidia$other")
probe="cat /dev/nvidia$index; ls /dev/nvidia$other; mknod /work/stolen c $((16#$maj_hex)) $((16#$min_hex)); echo probed"
id=$(cli submit --image busybox:local --gpus 1 -- sh -c "$probe")
wait_for_state "$id" succeeded 60
logs=$(cli logs "$id")
assert_contains "$logs" "No such device or address" "opening its own stand-in node (allowed by the device cgroup, no driver)"
assert_contains "$logs" "No such file or directory" "the other GPU's node is not in its /dev"
assert_contains "$logs" "Operation not permitted" "mknod of the other GPU's node"
assert_contains "$logs" "probed" "the probe ran to its end"

# --- outcomes: oom, timeout, image_not_found, each with a message ---
oom=$(cli submit --image busybox:local --memory 32M -- dd if=/dev/zero of=/dev/null bs=100M count=1)
slow=$(cli submit --image busybox:local --timeout 1s -- sleep 60)
missing=$(cli submit --image gpunode-no-such-image:v1 -- true)
busy=$(cli submit --image busybox:local -- sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo counted')
for t in "$oom:oom:137" "$slow:timeout:143" "$missing:image_not_found:null"; do
	IFS=: read -r tid reason code <<<"$t"
	wait_for_state "$tid" failed 90
	j=$(task_json "$tid")
	assert_eq "$reason" "$(jq -r .failure_reason <<<"$j")" "failure_reason of task $tid"
	assert_eq "$code" "$(jq -r .exit_code <<<"$j")" "exit_code of task $tid ($reason)"
	assert_ne "" "$(jq -r '.failure_message // ""' <<<"$j")" "failure_message of task $tid ($reason)"
done
assert_contains "$(jq -r .failure_message <<<"$(task_json "$missing")")" "gpunode-no-such-image:v1" "image_not_found message"
wait_for_state "$busy" succeeded 60
j=$(task_json "$busy")
jq -e '.usage.cpu_seconds > 0.05 and .usage.peak_mem_bytes > 0' <<<"$j" >/dev/null ||
	fail "usage of a CPU-busy task: $(jq -c .usage <<<"$j")"

# --- logs -f follows while it runs and ends with the task ---
id=$(cli submit --image busybox:local -- sh -c 'for i in 1 2 3; do echo line$i; sleep 1; done')
wait_for_state "$id" running 60
followed=$(timeout 60 "$G" logs -f "$id")
assert_eq "line1 line2 line3" "$(tr '\n' ' ' <<<"$followed" | sed 's/ $//')" "gpunode logs -f"

# --- cancel: the container goes away ---
id=$(cli submit --image busybox:local -- sleep 300)
wait_for_state "$id" running 60
cli cancel "$id" >/dev/null
assert_eq cancelled "$(jq -r .state <<<"$(task_json "$id")")" "state after cancel"
task_container_gone() { [[ -z "$(docker_api GET "/containers/json?all=1&filters=$(jq -rn --arg t "gpunode.task=$1" '{label:[$t]} | tostring | @uri')" | jq -r '.[].Id')" ]]; }
wait_until 30 "the container of cancelled task $id to be removed" task_container_gone "$id"

stop_node

# --- warm containers: one client's tasks share one (scratch wiped between), two clients never ---
start_node "$TEST_DIR/warm" 1xH100-80GB --executor docker --host "w$host"
check_warm_reuse
stop_node
