#!/usr/bin/env bash
# GPU health end to end, through the real agent, node and CLI. No GPU here:
# the GPUs are simulated and the "kernel log" is a plain file the agent
# watches (--kmsg), fed the same NVRM lines a real driver writes; the parser,
# health machine, reports, evacuation and placement are the real ones.
#   1. the issue's contract: inject-fault 79 on the GPU of a running task ->
#      unhealthy with reason and action, the task runs again on the other
#      GPU with attempts 2, clear brings the GPU back; /metrics shows it;
#   2. a real-format kernel-log line (kmsg record) for the bus id of a GPU,
#      burst dedupe, a non-fatal Xid (degraded), an Xid for no GPU of ours;
#   3. Unhealthy is sticky across an agent restart, clears when the boot id
#      changes, and the same Xid after repeated reboots escalates to
#      hardware inspection; drains survive a node restart.
source "$(dirname "$0")/lib.sh"
G=$GPUNODE_BIN

gpu_field() { # UUID FIELD
	cli gpus --json | jq -r --arg u "$1" --arg f "$2" '.gpus[] | select(.uuid == $u) | .[$f]'
}
gpu_is() { # UUID HEALTH
	[[ "$(gpu_field "$1" health)" == "$2" ]]
}
running_elsewhere() { # ID OLD_UUID
	local s
	s=$("$G" show "$1" --json) || return 1
	[[ "$(jq -r .state <<<"$s")" == running && "$(jq -r '.gpus[0]' <<<"$s")" != "$2" ]]
}

# --- 1. the contract, exactly as written in the issue ---
start_node "$TEST_DIR/data" 2xH100-80GB
id=$("$G" submit --gpus 1 -- sleep 30)
wait_for_state "$id" running 30
show=$("$G" show "$id" --json)
uuid=$(json_get "$show" '.gpus[0]')
assert_match "$uuid" '^GPU-' "show --json .gpus[0]"
assert_eq 1 "$(json_get "$show" .attempts)" "attempts before the fault"
assert_eq running "$(json_get "$show" .state)" "state before the fault"

out=$("$G" gpus inject-fault "$uuid" 79)
assert_contains "$out" "Xid 79" "gpus inject-fault output"
wait_until 10 "GPU $uuid unhealthy" gpu_is "$uuid" unhealthy
g=$(cli gpus --json | jq -c --arg u "$uuid" '.gpus[] | select(.uuid == $u)')
assert_eq unhealthy "$(json_get "$g" .health)" "gpus --json .health"
assert_contains "$(json_get "$g" .reason)" "Xid 79" "gpus --json .reason"
assert_eq reboot_host "$(json_get "$g" .action)" "gpus --json .action"
assert_eq 1 "$(json_get "$g" '.xid_errors["79"]')" "gpus --json .xid_errors"
wait_until 10 "task $id running again on the other GPU" running_elsewhere "$id" "$uuid"
show=$("$G" show "$id" --json)
assert_eq 2 "$(json_get "$show" .attempts)" "attempts after the fault"
assert_ne "$uuid" "$(json_get "$show" '.gpus[0]')" "GPU after the fault"
api GET "/v1/tasks/$id/history"
assert_status 200 "GET /v1/tasks/$id/history"
assert_contains "$HTTP_BODY" "GPU $uuid unhealthy: Xid 79" "task history records why it was requeued"

table=$(cli gpus)
assert_contains "$table" "unhealthy" "gpus table"
assert_contains "$table" "reboot_host" "gpus table ACTION"

api GET /metrics
assert_status 200 "GET /metrics"
assert_contains "$HTTP_BODY" "gpunode_gpu_health{host=\"$(hostname -s)\",uuid=\"$uuid\",state=\"unhealthy\"} 1" "/metrics health"
assert_contains "$HTTP_BODY" "gpunode_gpu_xid_errors_total{host=\"$(hostname -s)\",uuid=\"$uuid\",xid=\"79\"} 1" "/metrics xid"
printf '%s\n' "$HTTP_BODY" | promtool check metrics >/dev/null 2>"$TEST_DIR/promtool.err" ||
	fail "promtool check metrics: $(cat "$TEST_DIR/promtool.err")"

# A second submit must avoid the unhealthy GPU: only one GPU is usable, and busy.
id2=$("$G" submit --gpus 1 -- true)
sleep 0.5
assert_eq queued "$(cli show "$id2" --json | jq -r .state)" "a new task while the only healthy GPU is busy"

"$G" gpus clear "$uuid" >/dev/null
assert_eq healthy "$(gpu_field "$uuid" health)" "health right after gpus clear"
wait_for_state "$id2" succeeded 30
sleep 1.5 # a report the agent wrote before the clear must not bring it back
assert_eq healthy "$(gpu_field "$uuid" health)" "health after clear, once the agent reported"
assert_eq null "$(gpu_field "$uuid" reason)" "reason after clear"
"$G" cancel "$id" >/dev/null

# Bad input: clear errors, nothing changes.
rc=0
"$G" gpus inject-fault "$uuid" abc 2>"$TEST_DIR/err" || rc=$?
assert_eq 2 "$rc" "exit code of inject-fault with a bad XID"
rc=0
"$G" gpus clear GPU-nope 2>"$TEST_DIR/err" || rc=$?
assert_ne 0 "$rc" "exit code of clear on an unknown GPU"
assert_contains "$(cat "$TEST_DIR/err")" "no GPU GPU-nope" "error of clear on an unknown GPU"
stop_node

# --- 2. real kernel-log lines through a watched file ---
kmsg=$TEST_DIR/kmsg
boot=$TEST_DIR/boot_id
: >"$kmsg"
echo boot-a >"$boot"
start_node "$TEST_DIR/data2" 2xH100-80GB --kmsg "$kmsg" --boot-id-file "$boot"
gpus=$(cli gpus --json)
u0=$(json_get "$gpus" '.gpus[] | select(.index == 0) | .uuid')
u1=$(json_get "$gpus" '.gpus[] | select(.index == 1) | .uuid')
pci1=$(json_get "$gpus" '.gpus[] | select(.index == 1) | .pci_bus_id')
assert_match "$pci1" '^[0-9A-F]{8}:[0-9A-F]{2}:00\.0$' "pci_bus_id of GPU 1"
bus1=${pci1:9:2}
bus1=${bus1,,}

# /dev/kmsg record format, twice in a burst: one event.
line="3,4021,$((RANDOM + 100000)),-;NVRM: Xid (PCI:0000:$bus1:00): 48, pid=1234, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 0."
printf '%s\n%s\n' "$line" "$line" >>"$kmsg"
wait_until 10 "GPU 1 unhealthy after Xid 48" gpu_is "$u1" unhealthy
assert_contains "$(gpu_field "$u1" reason)" "Xid 48" "reason of Xid 48"
assert_eq 1 "$(cli gpus --json | jq -r --arg u "$u1" '.gpus[] | select(.uuid == $u) | .xid_errors["48"]')" "a burst of the same Xid counts once"
assert_eq healthy "$(gpu_field "$u0" health)" "the other GPU stays healthy"

# A non-fatal Xid (13, graphics engine exception): degraded, check the application.
bus0=$(json_get "$gpus" '.gpus[] | select(.index == 0) | .pci_bus_id')
bus0=${bus0:9:2}
echo "[  812.204711] NVRM: Xid (PCI:0000:${bus0,,}:00): 13, pid=77, name=train.py, Graphics Exception: ESR 0x404490=0x80000001" >>"$kmsg"
wait_until 10 "GPU 0 degraded after Xid 13" gpu_is "$u0" degraded
assert_eq check_application "$(gpu_field "$u0" action)" "action of Xid 13"
# Degraded takes only short work: a task with a 30 s limit runs on it, one
# without a limit waits (GPU 1 is unhealthy, so nothing else is free).
short=$("$G" submit --gpus 1 --timeout 30s -- true)
open_ended=$("$G" submit --gpus 1 -- true)
wait_for_state "$short" succeeded 20
assert_eq "$u0" "$(cli show "$short" --json | jq -r '.gpus[0]')" "GPU of the short task"
assert_eq queued "$(cli show "$open_ended" --json | jq -r .state)" "a task without a time limit, only a degraded GPU left"
"$G" cancel "$open_ended" >/dev/null

# An Xid for a bus that is none of ours changes nothing.
echo "[ 1234.5] NVRM: Xid (PCI:0000:ee:00): 79, pid=0, GPU has fallen off the bus." >>"$kmsg"
sleep 0.5
assert_eq degraded "$(gpu_field "$u0" health)" "GPU 0 after an Xid for another bus"
assert_eq unhealthy "$(gpu_field "$u1" health)" "GPU 1 after an Xid for another bus"

# --- 3. sticky across an agent restart; boot id; escalation; drains ---
"$G" gpus drain "$u0" >/dev/null
assert_eq true "$(gpu_field "$u0" draining)" "draining after gpus drain"
stop_node
start_node "$TEST_DIR/data2" 2xH100-80GB --kmsg "$kmsg" --boot-id-file "$boot"
assert_eq unhealthy "$(gpu_field "$u1" health)" "GPU 1 after a restart in the same boot"
assert_eq true "$(gpu_field "$u0" draining)" "drain after a node restart"
"$G" gpus undrain "$u0" >/dev/null
assert_eq false "$(gpu_field "$u0" draining)" "draining after undrain"
stop_node

for b in boot-b boot-c; do
	echo "$b" >"$boot"
	start_node "$TEST_DIR/data2" 2xH100-80GB --kmsg "$kmsg" --boot-id-file "$boot"
	assert_eq healthy "$(gpu_field "$u1" health)" "GPU 1 after the reboot to $b (Unhealthy clears with the boot id)"
	echo "[    5.000000] NVRM: Xid (PCI:0000:$bus1:00): 48, pid=1, name=x, DBE again" >>"$kmsg"
	wait_until 10 "GPU 1 unhealthy in $b" gpu_is "$u1" unhealthy
	if [[ $b == boot-b ]]; then
		assert_eq reboot_host "$(gpu_field "$u1" action)" "action when the Xid came back after one reboot"
	else
		assert_eq hardware_inspection "$(gpu_field "$u1" action)" "action when the Xid came back after two reboots"
		assert_contains "$(gpu_field "$u1" reason)" "after 2 reboots" "reason of the escalation"
	fi
	stop_node
done
