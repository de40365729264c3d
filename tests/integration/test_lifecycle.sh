#!/usr/bin/env bash
# A task's life through `gpunode up`, exactly as the issue's contract writes it:
# submit prints only the id; show --json reaches succeeded with exit code 0;
# logs prints the output; tasks and gpus --json work; submit --wait exits with
# the task's code; history records every transition; the task sees exactly its
# assigned GPUs in CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES.
source "$(dirname "$0")/lib.sh"

start_node "$TEST_DIR/data" 2xH100-80GB
G=$GPUNODE_BIN

assert_eq 600 "$(stat -c %a "$NODE_DATA/admin.token")" "mode of DATA/admin.token"

# --- the contract ---
id=$("$G" submit --gpus 1 -- echo hello)
assert_match "$id" '^[0-9a-f]{20}$' "stdout of 'submit --gpus 1 -- echo hello' (only the id)"
wait_for_state "$id" succeeded 30

show=$(cli show "$id" --json)
assert_eq "$id" "$(json_get "$show" .id)" "show --json .id"
assert_eq succeeded "$(json_get "$show" .state)" "show --json .state"
assert_eq 0 "$(json_get "$show" .exit_code)" "show --json .exit_code"
assert_eq null "$(json_get "$show" .failure_reason)" "show --json .failure_reason"
assert_eq '["echo","hello"]' "$(json_get "$show" '.command | tojson')" "show --json .command"
assert_eq 1 "$(json_get "$show" '.gpus | length')" "show --json: number of assigned GPUs"
assert_eq 1 "$(json_get "$show" .attempts)" "show --json .attempts"
for f in created_at assigned_at started_at ended_at; do
	assert_match "$(json_get "$show" ".$f")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "show --json .$f"
done

assert_eq hello "$(cli logs "$id")" "gpunode logs $id"

tasks=$(cli tasks)
assert_contains "$tasks" "$id" "gpunode tasks"

gpus=$(cli gpus --json)
n=$(json_get "$gpus" 'if type == "array" then length else (.gpus | length) end')
assert_eq 2 "$n" "number of GPUs in 'gpus --json'"
assert_contains "$gpus" "H100-80GB" "gpus --json"

# --- the same task over the API ---
api GET "/v1/tasks/$id/logs"
assert_status 200 "GET logs"
assert_eq hello "$HTTP_BODY" "GET /v1/tasks/$id/logs body"
assert_eq 6 "$(header_value x-log-offset)" "X-Log-Offset after 'hello\\n'"
assert_eq succeeded "$(header_value x-task-state)" "X-Task-State"
api GET "/v1/tasks/$id/logs?offset=3"
assert_status 200 "GET logs?offset=3"
assert_eq lo "$HTTP_BODY" "logs from offset 3"
assert_eq 6 "$(header_value x-log-offset)" "X-Log-Offset from offset 3"

api GET "/v1/tasks/$id/history"
assert_status 200 "GET history"
transitions=$(json_get "$HTTP_BODY" "$TRANSITIONS_JQ")
assert_eq "queued>assigned assigned>running running>succeeded" "$transitions" "history transitions of $id"
json_get "$HTTP_BODY" '.events[].at' | while read -r at; do
	assert_match "$at" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "history event .at"
done

api GET "/v1/tasks?state=succeeded"
assert_status 200 "GET /v1/tasks?state=succeeded"
assert_eq "$id" "$(json_get "$HTTP_BODY" "[.tasks[].id] | map(select(. == \"$id\")) | .[0]")" "succeeded list contains $id"
api GET "/v1/tasks?state=running"
assert_status 200 "GET /v1/tasks?state=running"
assert_eq 0 "$(json_get "$HTTP_BODY" "[.tasks[] | select(.id == \"$id\")] | length")" "running list must not contain $id"

# --- exit codes ---
rc=0
"$G" submit --wait -- sh -c 'exit 3' >"$TEST_DIR/wait.out" 2>&1 || rc=$?
assert_eq 3 "$rc" "exit status of 'submit --wait -- sh -c \"exit 3\"' (output: $(head -c 300 "$TEST_DIR/wait.out"))"
rc=0
"$G" submit --wait -- true >"$TEST_DIR/wait.out" 2>&1 || rc=$?
assert_eq 0 "$rc" "exit status of 'submit --wait -- true' (output: $(head -c 300 "$TEST_DIR/wait.out"))"

bad=$(cli submit -- sh -c 'echo oops >&2; exit 7')
wait_for_state "$bad" failed 30
t=$(task_json "$bad")
assert_eq 7 "$(json_get "$t" .exit_code)" "exit_code of a failing task"
assert_eq nonzero_exit "$(json_get "$t" .failure_reason)" "failure_reason of a failing task"
assert_contains "$(cli logs "$bad")" oops "logs of a failing task (stderr goes to the log)"
api GET "/v1/tasks/$bad/history"
transitions=$(json_get "$HTTP_BODY" "$TRANSITIONS_JQ")
assert_eq "queued>assigned assigned>running running>failed" "$transitions" "history transitions of a failing task"

# A command that cannot start: start_failed, not a crash.
nx=$(cli submit -- /nonexistent/gpunode-no-such-binary)
deadline=$((SECONDS + 30 * SLOW))
while :; do
	st=$(json_get "$(task_json "$nx")" .state)
	[[ "$st" == failed ]] && break
	((SECONDS < deadline)) || fail "task with a missing binary: expected state failed, got $st"
	sleep 0.1
done
reason=$(json_get "$(task_json "$nx")" .failure_reason)
if [[ "$reason" != start_failed && "$reason" != nonzero_exit ]]; then
	fail "failure_reason of a task whose binary is missing: expected start_failed or nonzero_exit, got $reason"
fi

# --- GPU visibility ---
# shellcheck disable=SC2016 # expanded by the task's shell, not here
show_env='echo "C=$CUDA_VISIBLE_DEVICES"; echo "N=$NVIDIA_VISIBLE_DEVICES"'
check_visible() { # ID GPUS
	local id=$1 want_n=$2 t want logs
	wait_for_state "$id" succeeded 30
	t=$(task_json "$id")
	assert_eq "$want_n" "$(json_get "$t" '.gpus | length')" "number of GPUs assigned to $id"
	assert_eq "$want_n" "$(json_get "$t" '.gpus | unique | length')" "distinct GPUs assigned to $id"
	want=$(json_get "$t" '.gpus | sort | join(",")')
	logs=$(cli logs "$id")
	local c n
	c=$(sed -n 's/^C=//p' <<<"$logs" | tr ',' '\n' | sort | paste -sd, -)
	n=$(sed -n 's/^N=//p' <<<"$logs" | tr ',' '\n' | sort | paste -sd, -)
	assert_eq "$want" "$c" "CUDA_VISIBLE_DEVICES of $id (sorted) vs its assigned gpus"
	assert_eq "$want" "$n" "NVIDIA_VISIBLE_DEVICES of $id (sorted) vs its assigned gpus"
	json_get "$t" '.gpus[]' | while read -r u; do
		assert_match "$u" '^GPU-' "assigned GPU uuid"
	done
}
one=$(cli submit --gpus 1 -- sh -c "$show_env")
two=$(cli submit --gpus 2 -- sh -c "$show_env")
check_visible "$one" 1
check_visible "$two" 2

# The pool must be free again: everything ended.
api GET /v1/gpus
assert_eq 0 "$(json_get "$HTTP_BODY" '[.gpus[].milli_allocated] | add')" "milli_allocated after every task ended"

# Once a finished task's log is with the node, the agent removes its files:
# the scratch dir whole (here with nested files and a symlink out of it,
# which must be removed, not followed) and its log.
keep=$TEST_DIR/outside
mkdir -p "$keep" && echo precious >"$keep/file"
full=$(cli submit --gpus 1 -- sh -c "mkdir -p a/b && echo x >a/b/f && ln -s '$keep' out && pwd")
empty=$(cli submit --gpus 1 -- true)
wait_for_state "$full" succeeded 30
wait_for_state "$empty" succeeded 30
assert_eq "$(realpath "$NODE_DATA/agent/tasks/$full")" "$(cli logs "$full")" "the scratch dir (cwd) of $full"
gone() { [[ ! -e "$NODE_DATA/agent/tasks/$1" && ! -e "$NODE_DATA/agent/logs/$1.log" ]]; }
wait_until 30 "the agent removes the files of $full" gone "$full"
wait_until 30 "the agent removes the files of $empty" gone "$empty"
assert_eq precious "$(cat "$keep/file")" "a file behind a symlink in a scratch dir survives its removal"

stop_node
