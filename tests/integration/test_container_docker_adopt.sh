#!/usr/bin/env bash
# After `gpunode up` is killed with -9, its containers live on in dockerd.
# The restarted agent finds them by their labels: a running one is adopted
# (its exit code and all its output reach the node), one that ended while
# the agent was away is reported with its code, and an orphan labelled for
# this host (a task the agent does not hold) is removed. Real dockerd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/docker_env.sh"

host=ad$$
start_node "$TEST_DIR/data" 2xH100-80GB --executor docker --host "$host"

long=$(cli submit --image busybox:local -- sh -c 'echo before; sleep 6; echo after; exit 3')
short=$(cli submit --image busybox:local -- sh -c 'sleep 1; echo quick; exit 5')
wait_for_state "$long" running 60
wait_for_state "$short" running 60
wait_until 20 "task $long to print 'before'" grep -q before "$NODE_DATA/agent/logs/$long.log"

kill_node_hard
running_container() { [[ -n "$(docker_api GET "/containers/json?filters=$(jq -rn --arg t "gpunode.task=$1" '{label:[$t]} | tostring | @uri')" | jq -r '.[].Id')" ]]; }
running_container "$long" || fail "the container of task $long died with the agent"

# An orphan: labelled for this host, of a task nobody holds.
orphan=$(curl -fsS --unix-socket "${DOCKER_HOST#unix://}" -H 'Content-Type: application/json' -X POST \
	"http://docker/v1.41/containers/create" \
	-d "{\"Image\":\"busybox:local\",\"Entrypoint\":[\"sleep\",\"300\"],\"Labels\":{\"gpunode.host\":\"$host\",\"gpunode.task\":\"00000000000000000000\"},\"HostConfig\":{\"NetworkMode\":\"none\"}}" |
	jq -r .Id)
docker_api POST "/containers/$orphan/start" >/dev/null

sleep 2 # the short task ends while nobody watches
start_node "$TEST_DIR/data" 2xH100-80GB --executor docker --host "$host"

wait_for_state "$short" failed 60
assert_eq 5 "$(jq -r .exit_code <<<"$(task_json "$short")")" "exit code of the task that ended while the agent was away"
assert_contains "$(cli logs "$short")" quick "output of the task that ended while the agent was away"
wait_for_state "$long" failed 60
j=$(task_json "$long")
assert_eq 3 "$(jq -r .exit_code <<<"$j")" "exit code of the adopted task"
assert_eq 1 "$(jq -r .attempts <<<"$j")" "the adopted task was not run again"
logs=$(cli logs "$long")
assert_eq "before after" "$(tr '\n' ' ' <<<"$logs" | sed 's/ $//')" "the adopted task's log: once each, in order"
orphan_gone() { ! docker_api GET "/containers/$orphan/json" >/dev/null 2>&1; }
wait_until 20 "the orphan container $orphan to be removed" orphan_gone
grep -q "adopted" "$NODE_DATA/node.log" || fail "the agent did not say it adopted task $long"
stop_node
