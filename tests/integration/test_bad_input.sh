#!/usr/bin/env bash
# Bad input: every malformed request gets the right 4xx with
# {"error":{"code","message"}}, no task is created by any of them, and the
# node keeps serving afterwards.
source "$(dirname "$0")/lib.sh"

start_node "$TEST_DIR/data" 1xH100-80GB

# bad_submit BODY STATUS CODE [WORD] — POST /v1/tasks BODY must fail with
# STATUS/CODE; WORD, if given, must appear in the message (it says what is wrong).
bad_submit() {
	api POST /v1/tasks "$1"
	assert_api_error "$2" "$3" "POST /v1/tasks ${1:0:80}"
	if (($# >= 4)); then
		assert_contains "$(json_get "$HTTP_BODY" .error.message)" "$4" "error message for ${1:0:80}"
	fi
}

# Malformed JSON and bodies that are not an object.
bad_submit '{"command":' 400 invalid_argument
bad_submit '{"command":["echo"]' 400 invalid_argument
bad_submit 'not json at all' 400 invalid_argument
bad_submit '' 400 invalid_argument
bad_submit 'null' 400 invalid_argument
bad_submit '[]' 400 invalid_argument
bad_submit '"command"' 400 invalid_argument
bad_submit '{"command":["echo"]} trailing' 400 invalid_argument
printf '{"command":["echo","\xff\xfe"]}' >"$TEST_DIR/bad-utf8.json"
bad_submit "@$TEST_DIR/bad-utf8.json" 400 invalid_argument

# Missing, wrong types, unknown fields.
bad_submit '{}' 400 invalid_argument command
bad_submit '{"gpu_count":1}' 400 invalid_argument command
bad_submit '{"command":"echo hello"}' 400 invalid_argument command
bad_submit '{"command":[]}' 400 invalid_argument command
bad_submit '{"command":[1,2]}' 400 invalid_argument command
bad_submit '{"command":null}' 400 invalid_argument command
bad_submit '{"command":["true"],"gpu_count":"1"}' 400 invalid_argument gpu_count
bad_submit '{"command":["true"],"gpu_count":1.5}' 400 invalid_argument gpu_count
bad_submit '{"command":["true"],"priority":"high"}' 400 invalid_argument priority
bad_submit '{"command":["true"],"env":["A=B"]}' 400 invalid_argument env
bad_submit '{"command":["true"],"env":{"A":1}}' 400 invalid_argument env
bad_submit '{"command":["true"],"models":"H100-80GB"}' 400 invalid_argument models
bad_submit '{"command":["true"],"bogus_field":1}' 400 invalid_argument bogus_field
bad_submit '{"command":["true"],"category":"mining"}' 400 invalid_argument category

# Values out of range.
bad_submit '{"command":["true"],"gpu_count":0}' 400 invalid_argument gpu_count
bad_submit '{"command":["true"],"gpu_count":99}' 400 invalid_argument gpu_count
bad_submit '{"command":["true"],"gpu_count":-1}' 400 invalid_argument gpu_count
bad_submit '{"command":["true"],"gpu_milli":1500}' 400 invalid_argument gpu_milli
bad_submit '{"command":["true"],"gpu_milli":0}' 400 invalid_argument gpu_milli
bad_submit '{"command":["true"],"gpu_count":2,"gpu_milli":500}' 400 invalid_argument
bad_submit '{"command":["true"],"priority":5000}' 400 invalid_argument priority
bad_submit '{"command":["true"],"max_wait_s":-1}' 400 invalid_argument max_wait_s
bad_submit '{"command":["true"],"min_vram_mb":-5}' 400 invalid_argument min_vram_mb

# A body over 1 MiB: 413.
python3 -c 'import json, sys; sys.stdout.write(json.dumps({"command": ["echo", "A" * (2 << 20)]}))' >"$TEST_DIR/big.json"
bad_submit "@$TEST_DIR/big.json" 413 payload_too_large

# Ids, routes, methods.
api GET /v1/tasks/not-an-id
assert_api_error 400 invalid_argument "GET /v1/tasks/not-an-id"
api GET /v1/tasks/0123456789ABCDEF0123
assert_api_error 400 invalid_argument "GET a task id with upper-case hex"
api GET /v1/tasks/0123456789abcdef012
assert_api_error 400 invalid_argument "GET a 19-character task id"
api POST /v1/tasks/zzzzzzzzzzzzzzzzzzzz/cancel
assert_api_error 400 invalid_argument "cancel a malformed id"
api GET /v1/tasks/00000000000000000000
assert_api_error 404 not_found "GET an unknown task id"
api POST /v1/tasks/00000000000000000000/cancel
assert_api_error 404 not_found "cancel an unknown task id"
api GET /v1/tasks/00000000000000000000/history
assert_api_error 404 not_found "history of an unknown task id"
api GET /v1/tasks/00000000000000000000/logs
assert_api_error 404 not_found "logs of an unknown task id"
api GET /v1/nothing-here
assert_api_error 404 not_found "GET an unknown route"
api GET /nothing-here
assert_api_error 404 not_found "GET an unknown top-level route"
api DELETE /v1/tasks
assert_api_error 405 method_not_allowed "DELETE /v1/tasks"
api PUT /v1/tasks/00000000000000000000 '{}'
assert_api_error 405 method_not_allowed "PUT /v1/tasks/{id}"
api GET /v1/tasks/00000000000000000000/cancel
assert_api_error 405 method_not_allowed "GET /v1/tasks/{id}/cancel"
api POST /v1/gpus '{}'
assert_api_error 405 method_not_allowed "POST /v1/gpus"

# Query parameters.
api GET "/v1/tasks?limit=0"
assert_api_error 400 invalid_argument "GET /v1/tasks?limit=0"
api GET "/v1/tasks?limit=1001"
assert_api_error 400 invalid_argument "GET /v1/tasks?limit=1001"
api GET "/v1/tasks?limit=abc"
assert_api_error 400 invalid_argument "GET /v1/tasks?limit=abc"
api GET "/v1/tasks?state=sleeping"
assert_api_error 400 invalid_argument "GET /v1/tasks?state=sleeping"
api GET "/v1/tasks?before=xyz"
assert_api_error 400 invalid_argument "GET /v1/tasks?before=xyz"

# Nothing above created a task, and the node still serves.
api GET /v1/tasks
assert_status 200 "GET /v1/tasks after the bad requests"
assert_eq 0 "$(json_get "$HTTP_BODY" '.tasks | length')" "tasks created by bad requests"
api -n GET /healthz
assert_status 200 "/healthz after the bad requests"
id=$(submit_json '{"command":["echo","still","fine"],"gpu_count":1,"gpu_milli":500,"category":"inference","priority":10,"min_vram_mb":1024,"models":["H100-80GB"],"env":{"K":"V"},"max_wait_s":60}')
wait_for_state "$id" succeeded 30
t=$(task_json "$id")
assert_eq inference "$(json_get "$t" .category)" "category of a full valid submit"
assert_eq 500 "$(json_get "$t" .gpu_milli)" "gpu_milli of a full valid submit"
assert_eq 10 "$(json_get "$t" .priority)" "priority of a full valid submit"
assert_eq '{"K":"V"}' "$(json_get "$t" '.env | tojson')" "env of a full valid submit"
assert_eq '["H100-80GB"]' "$(json_get "$t" '.models | tojson')" "models of a full valid submit"
assert_eq 60 "$(json_get "$t" .max_wait_s)" "max_wait_s of a full valid submit"

stop_node
