#!/usr/bin/env bash
# A mixed simulated pool (2xA100-40GB,4xRTX4090-24GB): the pool shows the six
# GPUs; a model constraint is honoured; a gang lands on distinct GPUs; four
# 250-milli tasks share one GPU at the same time and a fifth has to wait.
source "$(dirname "$0")/lib.sh"

start_node "$TEST_DIR/data" 2xA100-40GB,4xRTX4090-24GB

gpus=$(cli gpus --json)
list=$(json_get "$gpus" 'if type == "array" then . else .gpus end')
assert_eq 6 "$(json_get "$list" length)" "GPUs in 'gpus --json'"
assert_eq 6 "$(json_get "$list" '[.[].uuid] | unique | length')" "distinct GPU uuids"
assert_eq "A100-40GB:2 RTX4090-24GB:4" \
	"$(json_get "$list" 'group_by(.model) | map("\(.[0].model):\(length)") | join(" ")')" "models in the pool"
assert_eq true "$(json_get "$list" 'all(.[]; .simulated == true)')" "every GPU is simulated"
assert_eq true "$(json_get "$list" 'all(.[] | select(.model == "A100-40GB"); .vram_mb >= 40000)')" "vram_mb of the A100-40GBs"
assert_eq true "$(json_get "$list" 'all(.[] | select(.model == "RTX4090-24GB"); .vram_mb >= 24000 and .vram_mb < 40000)')" "vram_mb of the RTX4090-24GBs"
a100s=$(json_get "$list" '[.[] | select(.model == "A100-40GB") | .uuid] | sort | join(" ")')
rtxs=$(json_get "$list" '[.[] | select(.model == "RTX4090-24GB") | .uuid] | sort | join(" ")')

gpus_of() { json_get "$(task_json "$1")" '.gpus | join(" ")'; }

# --- model constraints ---
for i in 1 2 3; do
	id=$(cli submit --model A100-40GB -- true)
	wait_for_state "$id" succeeded 30
	assert_contains "$a100s" "$(gpus_of "$id")" "GPU of a --model A100-40GB task (A100s: $a100s)"
done
id=$(submit_json '{"command":["true"],"models":["RTX4090-24GB"]}')
wait_for_state "$id" succeeded 30
assert_contains "$rtxs" "$(gpus_of "$id")" "GPU of a models:[RTX4090-24GB] task (RTX4090s: $rtxs)"
id=$(submit_json '{"command":["true"],"min_vram_mb":30000}')
wait_for_state "$id" succeeded 30
assert_contains "$a100s" "$(gpus_of "$id")" "GPU of a min_vram_mb:30000 task (only the A100s have it)"

# --- a gang of 4 takes all the RTX4090s ---
gang=$(cli submit --gpus 4 --model RTX4090-24GB -- true)
wait_for_state "$gang" succeeded 30
assert_eq "$rtxs" "$(json_get "$(task_json "$gang")" '.gpus | sort | join(" ")')" "GPUs of a 4-GPU RTX4090 task"

# --- fractional sharing ---
# Take one A100 whole so that the 250-milli A100 tasks have exactly one GPU left.
hold=$(cli submit --gpus 1 --model A100-40GB -- sleep 60)
wait_for_state "$hold" running 30
held=$(gpus_of "$hold")
quarters=()
for i in 1 2 3 4; do
	quarters+=("$(cli submit --milli 250 --model A100-40GB -- sleep 60)")
done
for q in "${quarters[@]}"; do
	wait_for_state "$q" running 30
	t=$(task_json "$q")
	assert_eq 250 "$(json_get "$t" .gpu_milli)" "gpu_milli of a --milli 250 task"
done
shared=$(gpus_of "${quarters[0]}")
assert_ne "$held" "$shared" "the quarters' GPU must not be the held one"
assert_contains "$a100s" "$shared" "the quarters' GPU is an A100"
for q in "${quarters[@]}"; do
	assert_eq "$shared" "$(gpus_of "$q")" "GPU of 250-milli task $q (all four share one)"
	assert_eq running "$(json_get "$(task_json "$q")" .state)" "state of 250-milli task $q (all run at once)"
done
api GET /v1/gpus
assert_eq 1000 "$(json_get "$HTTP_BODY" ".gpus[] | select(.uuid == \"$shared\") | .milli_allocated")" "milli_allocated of the shared GPU"
assert_eq 1000 "$(json_get "$HTTP_BODY" ".gpus[] | select(.uuid == \"$held\") | .milli_allocated")" "milli_allocated of the held GPU"

# A fifth quarter has no room on any A100: it waits until one quarter ends.
fifth=$(cli submit --milli 250 --model A100-40GB -- true)
sleep 1
assert_eq queued "$(json_get "$(task_json "$fifth")" .state)" "a fifth 250-milli A100 task while both A100s are full"
cli cancel "${quarters[0]}" >/dev/null
wait_for_state "$fifth" succeeded 30
assert_eq "$shared" "$(gpus_of "$fifth")" "GPU of the fifth quarter (the freed share)"

for q in "${quarters[@]:1}" "$hold"; do
	cli cancel "$q" >/dev/null
done
api GET /v1/gpus
assert_eq 0 "$(json_get "$HTTP_BODY" '[.gpus[].milli_allocated] | add')" "milli_allocated after everything ended"

stop_node
