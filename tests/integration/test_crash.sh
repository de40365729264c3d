#!/usr/bin/env bash
# Crash safety: 8 running tasks, then 4 parallel submitters send 500 short ones; the node is
# killed with SIGKILL mid-stream, then restarted on the same data dir. Every
# task that was acknowledged (201) must exist, reach a terminal state, and
# enter a terminal state exactly once in its history.
source "$(dirname "$0")/lib.sh"

SUBMITTERS=4
PER_SUBMITTER=125
KILL_AFTER=250 # acknowledged tasks before the kill

start_node "$TEST_DIR/data" 8xH100-80GB

# submitter N — posts PER_SUBMITTER tasks, appending each acknowledged id to
# acked.N; stops at the first transport error (the node is gone).
submitter() {
	local n=$1 i out status body
	for ((i = 0; i < PER_SUBMITTER; i++)); do
		out=$(curl -sS --max-time 10 -X POST -H "Authorization: Bearer $GPUNODE_TOKEN" \
			-H 'Content-Type: application/json' --data-binary '{"command":["true"]}' \
			-w '\n%{http_code}' "$GPUNODE_URL/v1/tasks" 2>/dev/null) || return 0
		status=${out##*$'\n'}
		body=${out%$'\n'*}
		if [[ "$status" == 201 && "$body" =~ \"id\":[[:space:]]*\"([0-9a-f]{20})\" ]]; then
			echo "${BASH_REMATCH[1]}" >>"$TEST_DIR/acked.$n"
		elif [[ "$status" != 000 ]]; then
			echo "submitter $n: unexpected HTTP $status: $body" >>"$TEST_DIR/submit-errors"
		fi
	done
}

acked_count() { cat "$TEST_DIR"/acked.* 2>/dev/null | wc -l; }

# First fill all 8 GPUs with tasks that are still running at the kill, so
# the crash also loses running tasks (requeued after the restart) and the
# flood below is mostly queued when the node dies.
for ((i = 0; i < 8; i++)); do
	submit_json '{"command":["sleep","2"]}' >>"$TEST_DIR/acked.long"
done
while read -r id; do
	wait_for_state "$id" running 30
done <"$TEST_DIR/acked.long"

for ((s = 0; s < SUBMITTERS; s++)); do
	: >"$TEST_DIR/acked.$s"
	submitter "$s" &
	track_bg $!
done

# Kill the node once KILL_AFTER tasks are acknowledged (mid-stream).
deadline=$((SECONDS + 60 * SLOW))
while (($(acked_count) < KILL_AFTER)); do
	((SECONDS < deadline)) || fail "only $(acked_count) tasks acknowledged in $((60 * SLOW))s"
	sleep 0.01
done
kill_node_hard
at_kill=$(acked_count)
wait # the submitters stop on the first refused connection
total=$(acked_count)
echo "acknowledged: $at_kill when killed, $total in all (of $((SUBMITTERS * PER_SUBMITTER + 8)))"
if [[ -s "$TEST_DIR/submit-errors" ]]; then
	fail "submitters got errors other than the node going away: $(head -n 5 "$TEST_DIR/submit-errors")"
fi
if ((total >= SUBMITTERS * PER_SUBMITTER + 8)); then
	echo "note: every submit was acknowledged before the kill took effect"
fi

sort "$TEST_DIR"/acked.* >"$TEST_DIR/acked"
dups=$(uniq -d "$TEST_DIR/acked" | head -n 3)
assert_eq "" "$dups" "ids acknowledged twice"

# Restart on the same data dir; the local agent re-registers.
start_node "$TEST_DIR/data" 8xH100-80GB

# Reads one resource per acknowledged id in a single curl run (one JSON body
# per line, each followed by its status), so 500 tasks cost one process.
fetch_all() { # SUFFIX OUT
	local cfg="$TEST_DIR/curl.cfg" id
	{
		echo "header = \"Authorization: Bearer $GPUNODE_TOKEN\""
		echo 'silent'
		printf '%s\n' 'write-out = "\n"'
		while read -r id; do
			echo "url = \"$GPUNODE_URL/v1/tasks/$id$1\""
		done <"$TEST_DIR/acked"
	} >"$cfg"
	curl --config "$cfg" >"$2" || fail "curl of every acknowledged task failed"
}

deadline=$((SECONDS + 90 * SLOW))
while :; do
	fetch_all "" "$TEST_DIR/tasks.jsonl"
	# Every acknowledged id must exist (no error objects, one task per id).
	missing=$(jq -r 'select(.error != null) | .error.message' "$TEST_DIR/tasks.jsonl" | head -n 3)
	assert_eq "" "$missing" "errors reading acknowledged tasks after the restart"
	got=$(jq -r .id "$TEST_DIR/tasks.jsonl" | sort)
	if [[ "$got" != "$(cat "$TEST_DIR/acked")" ]]; then
		fail "the tasks read back differ from the acknowledged ids: $(diff <(echo "$got") "$TEST_DIR/acked" | head -n 5)"
	fi
	pending=$(jq -r 'select(.state as $s | ["succeeded","failed","cancelled","expired","lost"] | index($s) | not) | .id' \
		"$TEST_DIR/tasks.jsonl" | wc -l)
	((pending == 0)) && break
	if ((SECONDS >= deadline)); then
		fail "$pending acknowledged tasks not ended $((90 * SLOW))s after the restart: $(jq -c 'select(.state == "queued" or .state == "assigned" or .state == "running") | {id,state,attempts}' "$TEST_DIR/tasks.jsonl" | head -n 5)"
	fi
	sleep 0.5
done

# `true` should succeed, even when it was lost in the crash and requeued.
states=$(jq -r .state "$TEST_DIR/tasks.jsonl" | sort | uniq -c | paste -sd' ')
echo "end states: $states; placed more than once (lost in the crash, run again): $(jq -s 'map(select(.attempts > 1)) | length' "$TEST_DIR/tasks.jsonl")"
notok=$(jq -c 'select(.state != "succeeded") | {id,state,failure_reason,attempts}' "$TEST_DIR/tasks.jsonl" | head -n 5)
assert_eq "" "$notok" "acknowledged tasks that did not succeed"

# Exactly one transition into a terminal state per task.
fetch_all /history "$TEST_DIR/history.jsonl"
assert_eq "$total" "$(jq -s length "$TEST_DIR/history.jsonl")" "history documents read"
bad=$(jq -c '[.events[] | select(.to as $s | ["succeeded","failed","cancelled","expired","lost"] | index($s))] | select(length != 1)' \
	"$TEST_DIR/history.jsonl" | head -n 3)
assert_eq "" "$bad" "histories without exactly one terminal transition"

# A clean stop (SIGINT) with tasks still queued, then a restart: they are
# still there and still queued (a model no GPU has keeps them waiting).
waiting=()
for ((i = 0; i < 20; i++)); do
	waiting+=("$(submit_json '{"command":["true"],"models":["NO-SUCH-GPU"]}')")
done
stop_node
start_node "$TEST_DIR/data" 8xH100-80GB
for id in "${waiting[@]}"; do
	assert_eq queued "$(json_get "$(task_json "$id")" .state)" "task $id queued before a clean restart"
done
stop_node
