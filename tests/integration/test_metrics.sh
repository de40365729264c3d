#!/usr/bin/env bash
# /metrics: needs a token, is valid Prometheus text (promtool check metrics
# exits 0: no parse errors, no lint problems), names are gpunode_*, and the
# figures follow what happened.
source "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool is not installed (scripts/deps.sh installs the prometheus package)"

start_node "$TEST_DIR/data" 2xH100-80GB

api -n GET /metrics
assert_api_error 401 unauthorized "GET /metrics without a token"

id=$(submit_json '{"command":["true"]}')
wait_for_state "$id" succeeded 30
bad=$(submit_json '{"command":["false"]}')
wait_for_state "$bad" failed 30

api GET /metrics
assert_status 200 "GET /metrics"
assert_contains "$(header_value content-type)" "text/plain" "Content-Type of /metrics"
printf '%s\n' "$HTTP_BODY" >"$TEST_DIR/metrics.txt"

rc=0
promtool check metrics <"$TEST_DIR/metrics.txt" >"$TEST_DIR/promtool.out" 2>&1 || rc=$?
if ((rc != 0)); then
	fail "promtool check metrics exited $rc: $(cat "$TEST_DIR/promtool.out")"
fi

# Every sample is a gpunode_ metric, and there are several families.
names=$(grep -v '^#' "$TEST_DIR/metrics.txt" | grep -v '^$' | sed -E 's/[{ ].*//' | sort -u)
[[ -n "$names" ]] || fail "/metrics has no samples: $(head -c 500 "$TEST_DIR/metrics.txt")"
others=$(grep -v '^gpunode_' <<<"$names" || true)
assert_eq "" "$others" "metric names not starting with gpunode_"
families=$(grep -c '^# TYPE gpunode_' "$TEST_DIR/metrics.txt" || true)
((families >= 5)) || fail "expected at least 5 gpunode_ metric families, got $families: $names"
grep -q '^# TYPE gpunode_[a-z_]*_total counter' "$TEST_DIR/metrics.txt" ||
	fail "expected at least one gpunode_*_total counter: $names"

# A few the node must have, with values that follow what happened: 2 tasks
# submitted and finished, 2 healthy GPUs, nothing queued or allocated now.
value() { # SAMPLE (name with labels, as printed) — its value, or "absent"
	awk -v n="$1" '$1 == n { v = $2 } END { print (v == "" ? "absent" : v) }' "$TEST_DIR/metrics.txt"
}
assert_eq 2 "$(value gpunode_tasks_submitted_total)" "gpunode_tasks_submitted_total"
assert_eq 2 "$(value gpunode_tasks_finished_total)" "gpunode_tasks_finished_total"
assert_eq 2 "$(value 'gpunode_gpus{health="healthy"}')" 'gpunode_gpus{health="healthy"}'
assert_eq 0 "$(value 'gpunode_queue_tasks{category="batch"}')" 'gpunode_queue_tasks{category="batch"}'
assert_eq 0 "$(value gpunode_gpu_allocated_milli)" "gpunode_gpu_allocated_milli"
assert_eq 2000 "$(value gpunode_gpu_capacity_milli)" "gpunode_gpu_capacity_milli"
# Nothing failed here. The agent's long polls and the acknowledgements that
# wait for a commit are parked before they are answered: they count with the
# status they are sent with (200), not as errors.
assert_eq 0 "$(value 'gpunode_http_requests_total{class="5xx"}')" 'gpunode_http_requests_total{class="5xx"}'
ok=$(value 'gpunode_http_requests_total{class="2xx"}')
((ok >= 6)) || fail "expected the submits, reports and polls among the 2xx answers, got $ok"

stop_node
