#!/usr/bin/env bash
# Auth: every route but /healthz needs a token; clients see and cancel only
# their own tasks; the admin sees all; tokens are stored only as hashes.
source "$(dirname "$0")/lib.sh"

start_node "$TEST_DIR/data" 2xH100-80GB
G=$GPUNODE_BIN

# --- no token, bad token ---
api -n GET /healthz
assert_status 200 "GET /healthz without a token"
assert_eq ok "$(json_get "$HTTP_BODY" .status)" "/healthz .status"

for route in "GET /v1/tasks" "GET /v1/gpus" "GET /v1/hosts" "GET /metrics" "GET /v1/tasks/00000000000000000000"; do
	read -r method path <<<"$route"
	api -n "$method" "$path"
	assert_api_error 401 unauthorized "$route without a token"
	api -t gpn_not_a_real_token "$method" "$path"
	assert_api_error 401 unauthorized "$route with an unknown token"
done
api -n POST /v1/tasks '{"command":["true"]}'
assert_api_error 401 unauthorized "POST /v1/tasks without a token"
api GET /v1/tasks
assert_eq 0 "$(json_get "$HTTP_BODY" '.tasks | length')" "tasks after unauthenticated submits"

# --- two clients ---
token_of() { # CLIENT — gpunode token create --client CLIENT, prints the token
	local out tok
	out=$(cli token create --client "$1")
	tok=$(grep -oE 'gpn_[A-Za-z0-9_-]+' <<<"$out" | head -n 1 || true)
	[[ -n "$tok" ]] || fail "gpunode token create --client $1 printed no gpn_ token: $out"
	printf '%s\n' "$tok"
}
alice=$(token_of alice)
bob=$(token_of bob)
assert_ne "$alice" "$bob" "two client tokens"

# Tokens are stored only as hashes.
if grep -rqF -- "$alice" "$NODE_DATA"; then
	fail "alice's token appears in clear in $(grep -rlF -- "$alice" "$NODE_DATA" | paste -sd' ')"
fi

# A client cannot create tokens.
api -t "$alice" POST /v1/tokens '{"client":"mallory","role":"admin"}'
assert_api_error 403 forbidden "POST /v1/tokens with a client token"
# A client cannot use the agent routes.
api -t "$alice" POST /v1/agents/local/heartbeat '{}'
assert_api_error 403 forbidden "agent heartbeat with a client token"

a1=$(GPUNODE_TOKEN=$alice cli submit -- sleep 30)
a2=$(submit_json '{"command":["true"]}' "$alice")
b1=$(submit_json '{"command":["true"]}' "$bob")
wait_for_state "$a1" running 30

t=$(task_json "$a1")
assert_eq alice "$(json_get "$t" .client)" "client of alice's task"
t=$(task_json "$b1")
assert_eq bob "$(json_get "$t" .client)" "client of bob's task"

# bob cannot see or touch alice's task: 404, as if it did not exist.
for p in "" /history /logs; do
	api -t "$bob" GET "/v1/tasks/$a1$p"
	assert_api_error 404 not_found "bob: GET /v1/tasks/<alice's task>$p"
done
api -t "$bob" POST "/v1/tasks/$a1/cancel"
assert_api_error 404 not_found "bob: cancel alice's task"
assert_eq running "$(json_get "$(task_json "$a1")" .state)" "alice's task after bob's cancel"
rc=0
GPUNODE_TOKEN=$bob "$G" show "$a1" --json >/dev/null 2>&1 || rc=$?
assert_eq 1 "$rc" "exit status of 'gpunode show' of alice's task with bob's token"

# Lists: each client sees only its own tasks.
api -t "$bob" GET /v1/tasks
assert_status 200 "bob: GET /v1/tasks"
assert_eq "$b1" "$(json_get "$HTTP_BODY" '[.tasks[].id] | join(" ")')" "bob's task list"
api -t "$alice" GET /v1/tasks
assert_status 200 "alice: GET /v1/tasks"
assert_eq "$(printf '%s\n' "$a1" "$a2" | sort | paste -sd' ')" \
	"$(json_get "$HTTP_BODY" '[.tasks[].id] | sort | join(" ")')" "alice's task list"
assert_eq alice "$(json_get "$HTTP_BODY" '[.tasks[].client] | unique | join(" ")')" "clients in alice's list"
bob_cli=$(GPUNODE_TOKEN=$bob cli tasks)
assert_not_contains "$bob_cli" "$a1" "'gpunode tasks' with bob's token"

# The admin sees all, and can filter by client.
api GET /v1/tasks
assert_status 200 "admin: GET /v1/tasks"
assert_eq "$(printf '%s\n' "$a1" "$a2" "$b1" | sort | paste -sd' ')" \
	"$(json_get "$HTTP_BODY" '[.tasks[].id] | sort | join(" ")')" "admin's task list"
api GET "/v1/tasks?client=alice"
assert_status 200 "admin: GET /v1/tasks?client=alice"
assert_eq "$(printf '%s\n' "$a1" "$a2" | sort | paste -sd' ')" \
	"$(json_get "$HTTP_BODY" '[.tasks[].id] | sort | join(" ")')" "admin's list filtered by client=alice"

# alice may cancel her own task; the admin may cancel anyone's.
api -t "$alice" POST "/v1/tasks/$a1/cancel"
assert_status 200 "alice cancels her own task"
assert_eq cancelled "$(json_get "$HTTP_BODY" .state)" "alice's cancelled task"
a3=$(submit_json '{"command":["sleep","30"]}' "$alice")
wait_for_state "$a3" running 30
api POST "/v1/tasks/$a3/cancel"
assert_status 200 "admin cancels alice's task"

stop_node
