#!/usr/bin/env bash
# The nvidia-smi fallback: a GPU host where NVML cannot be loaded (there is
# no libnvidia-ml.so.1 here at all) but `nvidia-smi` answers. No GPU exists
# here: `nvidia-smi` is a stand-in script first in PATH that prints the rows
# of a real capture (tests/data/gpu/smi/H100SXMx8.csv, two GPUs), which the
# test then edits. Checks: discovery through nvidia-smi, readings in
# `gpus --json`, an uncorrectable ECC count makes that GPU unhealthy, and a
# GPU that disappears from the list is reported lost (unhealthy).
source "$(dirname "$0")/lib.sh"
G=$GPUNODE_BIN
root=$(cd "$(dirname "$0")/../.." && pwd)

head -2 "$root/tests/data/gpu/smi/H100SXMx8.csv" >"$TEST_DIR/smi.csv"
mkdir -p "$TEST_DIR/bin"
cat >"$TEST_DIR/bin/nvidia-smi" <<EOS
#!/bin/sh
# stand-in for nvidia-smi --query-gpu=... --format=csv,noheader,nounits
cat "$TEST_DIR/smi.csv"
EOS
chmod +x "$TEST_DIR/bin/nvidia-smi"
export PATH="$TEST_DIR/bin:$PATH"
unset LD_LIBRARY_PATH

: >"$TEST_DIR/kmsg"
start_node_discovering "$TEST_DIR/data" smihost 2 --kmsg "$TEST_DIR/kmsg"
assert_contains "$(head -3 "$NODE_DATA/node.log")" "2 GPU(s) found through nvidia-smi" "startup line"

u0=GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1
u1=GPU-7c3cadbd-17e5-0913-f69b-c618122ea0cd
field() { cli gpus --json | jq -r --arg u "$1" --arg f "$2" '.gpus[] | select(.uuid == $u) | .[$f]'; }
g0=$(cli gpus --json | jq -c --arg u "$u0" '.gpus[] | select(.uuid == $u)')
assert_eq false "$(json_get "$g0" .simulated)" "simulated"
assert_eq H100-80GB "$(json_get "$g0" .model)" "model"
assert_eq 00000000:18:00.0 "$(json_get "$g0" .pci_bus_id)" "pci_bus_id"
has_temp() { [[ "$(field "$u0" temperature_c)" == 30 ]]; }
wait_until 20 "readings of $u0 (temperature 30 C in the capture)" has_temp
assert_eq 1 "$(field "$u0" memory_used_mb)" "memory_used_mb from the capture"

# GPU 0 reports an uncorrectable ECC error; GPU 1 drops out of the list.
sed -i '1s/, 0$/, 2/' "$TEST_DIR/smi.csv"
sed -i '2d' "$TEST_DIR/smi.csv"
is() { [[ "$(field "$1" health)" == "$2" ]]; }
wait_until 20 "GPU 0 unhealthy after an uncorrectable ECC error" is "$u0" unhealthy
assert_contains "$(field "$u0" reason)" "ECC" "reason of GPU 0"
wait_until 20 "GPU 1 unhealthy once nvidia-smi no longer lists it" is "$u1" unhealthy
