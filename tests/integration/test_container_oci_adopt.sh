#!/usr/bin/env bash
# After `gpunode up --executor oci` is killed with -9, its containers live
# on under their shims. The restarted agent finds them through their
# bundles: a running one is adopted (its exit code and all its output reach
# the node), one that ended while the agent was away is reported with its
# code, one whose time limit passed meanwhile is stopped as timed out, and an orphan (a bundle of this host that no task claims) is killed
# and removed. Real crun (OCI_RUNTIME=runc: runc).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/oci_env.sh"

data=$TEST_DIR/data
cli image import "$OCI_IMAGES/oci-layout.tar" --name busybox:local --data "$data" >/dev/null
host=oa$$
start_node "$data" 3xH100-80GB --executor oci --host "$host"

long=$(cli submit --image busybox:local -- sh -c 'echo before; sleep 6; echo after; exit 3')
short=$(cli submit --image busybox:local -- sh -c 'sleep 1; echo quick; exit 5')
timed=$(cli submit --image busybox:local --timeout 2s -- sleep 300)
wait_for_state "$long" running 60
wait_for_state "$short" running 60
wait_for_state "$timed" running 60
wait_until 20 "task $long to print 'before'" grep -q before "$NODE_DATA/agent/logs/$long.log"

kill_node_hard
running() { [[ "$(oci_runtime state "$1" 2>/dev/null | jq -r .status)" == running ]]; }
running "$long" || fail "the container of task $long died with the agent"

# An orphan: a container of this host that no task claims (its task is
# unknown to the node), made from a copy of the long task's bundle.
orphan=0000000000000000beef
ob=$NODE_DATA/agent/oci/bundles/$orphan
mkdir -p "$ob/rootfs"
jq --arg id "$orphan" '.hostname = $id | .annotations["org.gpunode.task-id"] = $id | .process.args = ["sleep", "300"] |
	.mounts |= map(select(.destination != "/work")) | .process.cwd = "/" | .linux.cgroupsPath += "-orphan"' \
	"$NODE_DATA/agent/oci/bundles/$long/config.json" >"$ob/config.json"
mount --bind "$NODE_DATA/agent/images/busybox@local/rootfs" "$ob/rootfs"
oci_runtime run --detach --bundle "$ob" "$orphan" </dev/null >/dev/null 2>&1 || fail "could not start the orphan container"
running "$orphan" || fail "the orphan container does not run"

exit_file=$NODE_DATA/agent/oci/bundles/$short/exit
wait_until 30 "task $short to end while nobody watches" test -s "$exit_file"
start_node "$data" 3xH100-80GB --executor oci --host "$host"

wait_for_state "$short" failed 60
assert_eq 5 "$(jq -r .exit_code <<<"$(task_json "$short")")" "exit code of the task that ended while the agent was away"
assert_contains "$(cli logs "$short")" quick "output of the task that ended while the agent was away"
wait_for_state "$timed" failed 60
assert_eq timeout "$(jq -r .failure_reason <<<"$(task_json "$timed")")" "reason of the task whose time ran out while the agent was away"
wait_for_state "$long" failed 60
j=$(task_json "$long")
assert_eq 3 "$(jq -r .exit_code <<<"$j")" "exit code of the adopted task"
assert_eq 1 "$(jq -r .attempts <<<"$j")" "the adopted task was not run again"
logs=$(cli logs "$long")
assert_eq "before after" "$(tr '\n' ' ' <<<"$logs" | sed 's/ $//')" "the adopted task's log: once each, in order"
orphan_gone() { ! oci_runtime state "$orphan" >/dev/null 2>&1 && [[ ! -e "$ob" ]]; }
wait_until 20 "the orphan container $orphan to be removed" orphan_gone
test -x "$NODE_DATA/agent/images/busybox@local/rootfs/bin/busybox" || fail "removing the orphan damaged the image"
grep -q "adopted" "$NODE_DATA/node.log" || fail "the agent did not say it adopted task $long"
bundles_gone() { [[ -z "$(ls "$NODE_DATA/agent/oci/bundles")" ]]; }
wait_until 30 "every bundle to be removed once delivered" bundles_gone
stop_node
