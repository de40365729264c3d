#!/usr/bin/env bash
# `gpunode up` with no --sim-gpus on a "real" GPU host. No NVIDIA GPU exists
# here: the driver is the project's fake libnvidia-ml.so.1 (tests/fake_nvml,
# built next to the binary), loaded through the real dlopen path with
# LD_LIBRARY_PATH and scripted by a scenario file. Checks: discovery reports
# real (not simulated) GPUs with model, arch, PCI bus id; readings reach
# `gpus --json` and /metrics; a remapped-rows failure scripted for later
# makes that GPU unhealthy with "hardware_inspection" and its task moves to
# the other GPU; a GPU that falls off the bus (NVML GPU_IS_LOST) goes
# unhealthy too.
source "$(dirname "$0")/lib.sh"
G=$GPUNODE_BIN
fake_dir=$(dirname "$G")/tests/fake_nvml
[[ -f "$fake_dir/libnvidia-ml.so.1" ]] || fail "fake NVML not built in $fake_dir"

u0=GPU-11111111-2222-3333-4444-000000000000
u1=GPU-11111111-2222-3333-4444-000000000001
cat >"$TEST_DIR/scenario" <<SCEN
driver 565.57.01
cuda 12070
device $u0|NVIDIA H100 80GB HBM3|81559|9.0|00000000:1B:00.0|0
device $u1|NVIDIA H100 80GB HBM3|81559|9.0|00000000:43:00.0|0
reading $u0 0 util=37 mem_used=1024 temp=51 slowdown=87 shutdown=92 power=310 limit=700 persistence=1
reading $u1 0 util=5 mem_used=0 temp=40 slowdown=87 shutdown=92 power=90 limit=700 persistence=1
reading $u0 4000 remap_failure=1
lost $u1 9000
SCEN
export FAKE_NVML_SCENARIO=$TEST_DIR/scenario LD_LIBRARY_PATH=$fake_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

: >"$TEST_DIR/kmsg"
start_node_discovering "$TEST_DIR/data" gpuhost 2 --kmsg "$TEST_DIR/kmsg"
assert_contains "$(head -3 "$NODE_DATA/node.log")" "2 GPU(s) found through nvml (driver 565.57.01, CUDA 12.7)" "startup line"
assert_not_contains "$(cat "$NODE_DATA/node.log")" "SIMULATED" "startup log"

g0=$(cli gpus --json | jq -c --arg u "$u0" '.gpus[] | select(.uuid == $u)')
assert_eq false "$(json_get "$g0" .simulated)" "simulated"
assert_eq H100-80GB "$(json_get "$g0" .model)" "model"
assert_eq sm_90 "$(json_get "$g0" .arch)" "arch"
assert_eq 00000000:1B:00.0 "$(json_get "$g0" .pci_bus_id)" "pci_bus_id"
has_readings() { [[ "$(cli gpus --json | jq -r --arg u "$u0" '.gpus[] | select(.uuid == $u) | .temperature_c')" == 51 ]]; }
wait_until 10 "readings of $u0" has_readings
g0=$(cli gpus --json | jq -c --arg u "$u0" '.gpus[] | select(.uuid == $u)')
assert_eq 37 "$(json_get "$g0" .utilization_pct)" "utilization_pct"
assert_eq 1024 "$(json_get "$g0" .memory_used_mb)" "memory_used_mb"
api GET /metrics
assert_contains "$HTTP_BODY" "gpunode_gpu_temperature_celsius{host=\"gpuhost\",uuid=\"$u0\"} 51" "/metrics temperature"
assert_contains "$HTTP_BODY" "gpunode_gpu_utilization_ratio{host=\"gpuhost\",uuid=\"$u0\"} 0.37" "/metrics utilization"

# A task on GPU 0 (the only free one once GPU 1 runs another).
a=$("$G" submit --gpus 1 -- sleep 60)
wait_for_state "$a" running 20
b=$("$G" submit --gpus 1 -- sleep 60)
wait_for_state "$b" running 20
on0=$a
[[ "$(cli show "$b" --json | jq -r '.gpus[0]')" == "$u0" ]] && on0=$b
"$G" cancel "$([[ $on0 == "$a" ]] && echo "$b" || echo "$a")" >/dev/null
u0_unhealthy() { [[ "$(cli gpus --json | jq -r --arg u "$u0" '.gpus[] | select(.uuid == $u) | .health')" == unhealthy ]]; }
wait_until 20 "GPU 0 unhealthy after its remapped-rows failure" u0_unhealthy
g0=$(cli gpus --json | jq -c --arg u "$u0" '.gpus[] | select(.uuid == $u)')
assert_eq hardware_inspection "$(json_get "$g0" .action)" "action of a row-remapping failure"
assert_contains "$(json_get "$g0" .reason)" "remap" "reason of a row-remapping failure"
moved() { [[ "$(cli show "$on0" --json | jq -r '.state + " " + .gpus[0]')" == "running $u1" ]]; }
wait_until 20 "task $on0 running again on GPU 1" moved
assert_eq 2 "$(cli show "$on0" --json | jq -r .attempts)" "attempts after the move"

# Later GPU 1 falls off the bus (NVML answers GPU_IS_LOST): no GPU is left,
# so the task waits in the queue with its attempts counted.
u1_unhealthy() { [[ "$(cli gpus --json | jq -r --arg u "$u1" '.gpus[] | select(.uuid == $u) | .health')" == unhealthy ]]; }
wait_until 20 "GPU 1 unhealthy once NVML says it is lost" u1_unhealthy
wait_for_state "$on0" queued 10
assert_eq 2 "$(cli show "$on0" --json | jq -r .attempts)" "attempts while queued"
