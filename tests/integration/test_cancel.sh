#!/usr/bin/env bash
# Cancel: a running task is stopped (its whole process group is gone), a
# queued task never runs, and an ended task cannot be cancelled (409).
source "$(dirname "$0")/lib.sh"

start_node "$TEST_DIR/data" 1xH100-80GB
G=$GPUNODE_BIN

# Unique durations make unique command lines to look for with pgrep -f.
marker() { printf '30.%d%05d' "$$" "$RANDOM"; }
running_count() { pgrep -f -- "$1" | wc -l; }
gone() { [[ "$(running_count "$1")" == 0 ]]; }
present() { [[ "$(running_count "$1")" != 0 ]]; }

# --- cancel a running task: a shell and its child sleep both die ---
m1=$(marker)
run=$(cli submit -- sh -c "sleep $m1; echo not-cancelled")
wait_for_state "$run" running 30
wait_until 10 "the process 'sleep $m1' of task $run to appear" present "sleep $m1"

cli cancel "$run" >/dev/null
t=$(task_json "$run")
assert_eq cancelled "$(json_get "$t" .state)" "state right after cancel"
assert_eq cancelled "$(json_get "$t" .failure_reason)" "failure_reason of a cancelled task"
wait_until 10 "every process of task $run ('sleep $m1') to be gone after cancel" gone "sleep $m1"
sleep 0.5
assert_eq cancelled "$(json_get "$(task_json "$run")" .state)" "state stays cancelled after the process died"
assert_not_contains "$(cli logs "$run")" not-cancelled "logs of the cancelled task"

# The GPU is free again: a new task runs.
after=$(cli submit -- true)
wait_for_state "$after" succeeded 30

# --- cancel a queued task (the only GPU is busy) ---
m2=$(marker)
blocker=$(cli submit --gpus 1 -- sleep "$m2")
wait_for_state "$blocker" running 30
queued=$(cli submit --gpus 1 -- sh -c 'echo ran')
sleep 0.5
assert_eq queued "$(json_get "$(task_json "$queued")" .state)" "a task waiting for the busy GPU"

api POST "/v1/tasks/$queued/cancel"
assert_status 200 "POST /v1/tasks/$queued/cancel (queued)"
assert_eq cancelled "$(json_get "$HTTP_BODY" .state)" "cancel answer .state"
assert_eq "$queued" "$(json_get "$HTTP_BODY" .id)" "cancel answer .id"

api POST "/v1/tasks/$blocker/cancel"
assert_status 200 "POST /v1/tasks/$blocker/cancel (running)"
wait_until 10 "'sleep $m2' to be gone after cancel" gone "sleep $m2"
sleep 1
t=$(task_json "$queued")
assert_eq cancelled "$(json_get "$t" .state)" "the cancelled queued task after the GPU freed up"
assert_eq null "$(json_get "$t" .started_at)" "started_at of a task cancelled while queued"
assert_eq 0 "$(json_get "$t" '.gpus | length')" "gpus of a task cancelled while queued"

api GET "/v1/tasks/$queued/history"
assert_status 200 "history of the cancelled queued task"
assert_eq "queued>cancelled" \
	"$(json_get "$HTTP_BODY" "$TRANSITIONS_JQ")" \
	"history of a task cancelled while queued"

# --- cancel of ended tasks: 409 ---
done_id=$(cli submit -- true)
wait_for_state "$done_id" succeeded 30
api POST "/v1/tasks/$done_id/cancel"
assert_api_error 409 conflict "cancel of a succeeded task"
assert_eq succeeded "$(json_get "$(task_json "$done_id")" .state)" "state after a refused cancel"

api POST "/v1/tasks/$run/cancel"
assert_api_error 409 conflict "second cancel of a cancelled task"

rc=0
"$G" cancel "$done_id" >/dev/null 2>"$TEST_DIR/cancel.err" || rc=$?
assert_eq 1 "$rc" "exit status of 'gpunode cancel' on an ended task (stderr: $(cat "$TEST_DIR/cancel.err"))"

stop_node
