#!/usr/bin/env bash
# gpunode sim trace / sim philly from the command line: a hand-made trace
# whose schedule is known (the per-task CSV and the JSON summary), bad input
# (exit 1 with file:line, exit 2 for usage, nothing written), gzip input, and
# the real Philly trace (bench/data/philly) through FIFO and the node's queue.
source "$(dirname "$0")/lib.sh"
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
bin=$GPUNODE_BIN
cd "$TEST_DIR"

# One host of 2 GPUs; A runs 0..100, then FIFO gives B 100, C 110, D 160.
cat >trace.csv <<'CSV'
submit_s,duration_s,gpus,client
0,100,2,a
1,10,1,b
2,50,2,a
3,1,1,b
CSV
json=$("$bin" sim trace --csv trace.csv --hosts 1 --gpus-per-host 2 --queue fifo --out tasks.csv --json --quiet)
assert_eq 4 "$(json_get "$json" .placed)" "placed"
assert_eq 131.25 "$(json_get "$json" .avg_jct_s)" "avg JCT"
assert_eq 161 "$(json_get "$json" .makespan_s)" "makespan"
assert_eq "job,client,submit_s,start_s,end_s,wait_s,host,gpus" "$(head -n 1 tasks.csv)" "CSV header"
assert_eq "4,a,2.000,110.000,160.000,108.000,0,0-1" "$(sed -n 4p tasks.csv)" "job C's line"
# The same trace gzipped gives the same schedule.
gzip -k trace.csv
assert_eq "$(jq -c 'del(.sim_seconds, .sim_cpu_seconds, .source)' <<<"$json")" \
	"$("$bin" sim trace --csv trace.csv.gz --hosts 1 --gpus-per-host 2 --queue fifo --json --quiet | jq -c 'del(.sim_seconds, .sim_cpu_seconds, .source)')" \
	"summary of the gzipped trace"

# Bad input: exit 1, the message names the file and the line, no output file.
printf 'submit_s,duration_s,gpus\n0,10,1\n5,ten,1\n' >bad.csv
rc=0
err=$("$bin" sim trace --csv bad.csv --out bad-out.csv 2>&1 >/dev/null) || rc=$?
assert_eq 1 "$rc" "exit status on a bad line"
assert_contains "$err" "bad.csv:3: duration_s" "error message"
[[ ! -e bad-out.csv ]] || fail "an output file was written for a bad trace"
rc=0
err=$("$bin" sim philly --trace trace.csv 2>&1 >/dev/null) || rc=$?
assert_eq 1 "$rc" "exit status on a non-Philly file"
assert_contains "$err" "trace.csv:1: expected the header" "Philly header message"
rc=0
"$bin" sim philly --queue lifo --trace x.csv >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "exit status on a bad --queue"
rc=0
"$bin" sim trace >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "exit status without --csv"

# The real trace: every job accounted for, one CSV line each, the node's
# queue ahead of FIFO, progress on stderr.
philly="$REPO_ROOT/bench/data/philly/philly.csv.gz"
[[ -f "$philly" ]] || fail "bench/data/philly/philly.csv.gz is missing"
def=$("$bin" sim philly --trace "$philly" --queue default --out philly.csv --json 2>progress.txt)
fifo=$("$bin" sim philly --trace "$philly" --queue fifo --json --quiet)
assert_eq 82247 "$(json_get "$def" .jobs)" "jobs"
assert_eq 82247 "$(($(json_get "$def" .placed) + $(json_get "$def" .unplaced)))" "placed + unplaced"
assert_eq 82248 "$(wc -l <philly.csv)" "per-task CSV lines"
assert_eq "$(json_get "$def" .unplaced)" "$(grep -c ',unplaced,unplaced$' philly.csv)" "unplaced lines"
assert_contains "$(cat progress.txt)" "100% of jobs arrived" "progress on stderr"
jq -e --argjson f "$fifo" '.avg_jct_s < $f.avg_jct_s and .p99_wait_s < $f.p99_wait_s' <<<"$def" >/dev/null ||
	fail "the default queue is not ahead of FIFO: default $def, fifo $fifo"
echo "ok"
