#!/usr/bin/env bash
# The OCI executor with a real runtime (crun here; runc through
# test_container_oci_runc.sh): images imported from both tarball formats and
# a directory, the issue's contract as written, reduced capabilities,
# exactly the task's own /dev/nvidiaN (the device cgroup refuses the other
# GPU's node even to a process given CAP_MKNOD back), the outcomes a user
# sees (oom, timeout, image_not_found, cancelled) with usage, logs -f while
# it runs, clear errors for bad imports, and warm containers reused by one
# client (scratch wiped between), never across two.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/oci_env.sh"

G=$GPUNODE_BIN
data=$TEST_DIR/data

# --- images: docker save, OCI layout, rootfs dir; written where up's agent reads ---
cli image import "$OCI_IMAGES/docker-save.tar" --name busybox:local --data "$data" >/dev/null
j=$(cli image import "$OCI_IMAGES/oci-layout.tar" --name busybox:oci --data "$data" --json)
assert_eq oci-layout "$(jq -r .format <<<"$j")" "format of the OCI-layout import"
assert_eq 2 "$(jq -r .layers <<<"$j")" "layers of the OCI-layout import"
cli image import "$OCI_IMAGES/rootfs" --name busybox:dir --data "$data" >/dev/null
assert_eq "busybox:dir busybox:local busybox:oci" "$(cli image ls --data "$data" --json | jq -r '[.images[].name] | join(" ")')" "image ls"

# --- bad input: clear errors, nothing lost ---
echo "not a tarball" >"$TEST_DIR/junk.tar"
rc=0
err=$("$G" image import "$TEST_DIR/junk.tar" --name busybox:local --data "$data" 2>&1) || rc=$?
assert_eq 1 "$rc" "exit status of importing junk"
assert_contains "$err" "junk.tar" "the error names the file"
rc=0
"$G" image import "$OCI_IMAGES/docker-save.tar" --data "$data" 2>/dev/null || rc=$?
assert_eq 2 "$rc" "exit status without --name"
rc=0
err=$("$G" image import "$OCI_IMAGES/docker-save.tar" --name 'evil/../x' --data "$data" 2>&1) || rc=$?
assert_eq 1 "$rc" "exit status of a bad name"
assert_contains "$err" '".."' "bad name message"
assert_contains "$(cli image ls --data "$data")" "busybox:local" "busybox:local survived the failed imports"

host=oci$$
start_node "$data" 2xH100-80GB --executor oci --host "$host"
wait_until 10 "the agent to say it chose oci" grep -q "executor=oci" "$NODE_DATA/node.log"
grep -q "runtime=.*/$OCI_RUNTIME " "$NODE_DATA/node.log" || fail "the oci executor did not pick $OCI_RUNTIME"
# Without --data, as the issue writes it: the store of the last `gpunode up`.
"$G" image import "$OCI_IMAGES/docker-save.tar" --name busybox:again >/dev/null
assert_contains "$(cli image ls --data "$data")" "busybox:again" "an import without --data went to the running node's agent"
cli image rm busybox:again

# --- the contract, exactly as the issue writes it ---
id=$("$G" submit --image busybox:local --gpus 1 --memory 64M -- sh -c 'ls /dev; grep CapEff /proc/self/status')
wait_for_state "$id" succeeded 60
show=$("$G" show "$id" --json)
assert_eq succeeded "$(jq -r .state <<<"$show")" "state"
assert_eq 0 "$(jq -r .exit_code <<<"$show")" "exit_code"
assert_eq oci "$(jq -r .executor <<<"$show")" "executor"
assert_eq null "$(jq -c .failure_reason <<<"$show")" "failure_reason on success"
logs=$("$G" logs "$id")
# CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID NET_BIND_SERVICE (oci_spec.h)
assert_contains "$logs" "CapEff:	00000000000004fb" "CapEff of the task"
uuid=$(jq -r '.gpus[0]' <<<"$show")
api GET /v1/gpus
index=$(jq -r --arg u "$uuid" '.gpus[] | select(.uuid == $u) | .index' <<<"$HTTP_BODY")
assert_eq "nvidia$index" "$(grep '^nvidia' <<<"$logs" | tr '\n' ' ' | sed 's/ $//')" "the /dev/nvidia* nodes the task sees"

# --- the layers were applied with their whiteouts, in both formats and the dir ---
for img in busybox:local busybox:oci; do
	id=$(cli submit --image "$img" -- sh -c 'ls /etc/opq; test -e /bin/vi && echo has-vi; cat /etc/layer2; echo $IMAGE_VAR')
	wait_for_state "$id" succeeded 60
	assert_eq "kept layer2 from-image" "$(cli logs "$id" | tr '\n' ' ' | sed 's/ $//')" "$img: whiteouts, opaque dir, image env"
done
id=$(cli submit --image busybox:dir -- sh -c 'cat /etc/opq/gone')
wait_for_state "$id" succeeded 60
assert_eq gone "$(cli logs "$id")" "the rootfs dir image is the dir as it was"

# --- the task's own choices: read-only root (scratch stays writable), pids, CPU, network ---
id=$(cli submit --image busybox:local --read-only --pids 20 --cpus 0.5 -- sh -c 'touch /x 2>&1; touch /work/y && echo scratch-ok;
	cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null;
	cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null; ls /sys/class/net')
wait_for_state "$id" succeeded 60
logs=$(cli logs "$id")
assert_contains "$logs" "Read-only file system" "writing the read-only root"
assert_contains "$logs" "scratch-ok" "writing the scratch dir of a read-only task"
assert_contains "$logs" $'\n20\n' "pids limit seen in the container's cgroup"
assert_contains "$logs" "50000" "CPU quota of 0.5 core per 100 ms period"
assert_eq "lo" "$(tail -n 1 <<<"$logs")" "no network but loopback by default"
id=$(cli submit --image busybox:local --network -- ls /sys/class/net)
wait_for_state "$id" succeeded 60
assert_ne "lo" "$(cli logs "$id" | tr '\n' ' ' | sed 's/ $//')" "--network gives the host's interfaces"

# --- the other GPU's node: absent, and refused by the device cgroup ---
a=$(cli submit --image busybox:local --gpus 1 -- sh -c 'cat /dev/nvidia*; ls /dev/nvidia*; sleep 300')
wait_for_state "$a" running 60
api GET "/v1/tasks/$a"
a_index=$(jq -r --arg u "$(jq -r '.gpus[0]' <<<"$HTTP_BODY")" '.gpus[] | select(.uuid == $u) | .index' <<<"$(api GET /v1/gpus >/dev/null; echo "$HTTP_BODY")")
other=$((1 - a_index))
read -r maj_hex min_hex < <(stat -c '%t %T' "$NODE_DATA/agent/dev/nvidia$other")
read -r my_maj my_min < <(stat -c '%t %T' "$NODE_DATA/agent/dev/nvidia$a_index")
# CAP_MKNOD given back to one exec'd process: only the cgroup stands in its way.
probe=$(oci_runtime exec --cap CAP_MKNOD "$a" sh -c "mknod /dev/mine c $((16#$my_maj)) $((16#$my_min)); cat /dev/mine; mknod /dev/stolen c $((16#$maj_hex)) $((16#$min_hex)) && cat /dev/stolen; echo probed" 2>&1 || true)
assert_contains "$probe" "can't open '/dev/mine': No such device or address" "its own GPU's node opens (no driver behind a stand-in)"
assert_contains "$probe" "Operation not permitted" "the device cgroup refuses the other GPU's node"
assert_not_contains "$probe" "can't open '/dev/stolen': No such device" "the other GPU's node must not open"
assert_contains "$probe" "probed" "the probe ran to its end"
wait_until 20 "task $a to list its devices" grep -q "nvidia$a_index" "$NODE_DATA/agent/logs/$a.log"
assert_eq "/dev/nvidia$a_index" "$(grep '^/dev/nvidia' "$NODE_DATA/agent/logs/$a.log")" "ls /dev/nvidia* in task $a"
# The image of a running container can be neither removed nor replaced.
rc=0
err=$("$G" image rm busybox:local --data "$data" 2>&1) || rc=$?
assert_eq 1 "$rc" "exit status of removing an image in use"
assert_contains "$err" "used by 1 running container" "removing an image in use"
rc=0
err=$("$G" image import "$OCI_IMAGES/oci-layout.tar" --name busybox:local --data "$data" 2>&1) || rc=$?
assert_eq 1 "$rc" "exit status of replacing an image in use"
assert_contains "$err" "used by 1 running container" "replacing an image in use"
cli cancel "$a" >/dev/null
wait_for_state "$a" cancelled 30
bundle_gone() { [[ ! -e "$NODE_DATA/agent/oci/bundles/$1" ]]; }
wait_until 30 "the bundle of cancelled task $a to be removed" bundle_gone "$a"

# --- outcomes: oom, timeout, image_not_found, start_failed, each with a message ---
oom=$(cli submit --image busybox:local --memory 16M -- dd if=/dev/zero of=/dev/null bs=64M count=1)
slow=$(cli submit --image busybox:local --timeout 1s -- sleep 60)
missing=$(cli submit --image gpunode-no-such-image:v1 -- true)
nocmd=$(cli submit --image busybox:local -- /no/such/command)
busy=$(cli submit --image busybox:local -- sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo counted')
for t in "$oom:oom:137" "$slow:timeout:137" "$missing:image_not_found:null" "$nocmd:start_failed:null"; do
	IFS=: read -r tid reason code <<<"$t"
	wait_for_state "$tid" failed 90
	j=$(task_json "$tid")
	assert_eq "$reason" "$(jq -r .failure_reason <<<"$j")" "failure_reason of task $tid"
	assert_eq "$code" "$(jq -r .exit_code <<<"$j")" "exit_code of task $tid ($reason)"
	assert_ne "" "$(jq -r '.failure_message // ""' <<<"$j")" "failure_message of task $tid ($reason)"
done
assert_contains "$(jq -r .failure_message <<<"$(task_json "$missing")")" "gpunode-no-such-image:v1" "image_not_found message"
assert_contains "$(jq -r .failure_message <<<"$(task_json "$nocmd")")" "/no/such/command" "the runtime's reason in the start_failed message"
wait_for_state "$busy" succeeded 60
j=$(task_json "$busy")
jq -e '.usage.cpu_seconds > 0.05 and .usage.peak_mem_bytes > 0' <<<"$j" >/dev/null ||
	fail "usage of a CPU-busy task: $(jq -c .usage <<<"$j")"

# --- logs -f follows while it runs and ends with the task ---
id=$(cli submit --image busybox:local -- sh -c 'for i in 1 2 3; do echo line$i; sleep 1; done')
wait_for_state "$id" running 60
followed=$(timeout 60 "$G" logs -f "$id")
assert_eq "line1 line2 line3" "$(tr '\n' ' ' <<<"$followed" | sed 's/ $//')" "gpunode logs -f"

# --- warm containers: one client's tasks share one (scratch wiped between), two clients never ---
check_warm_reuse
assert_contains "$WARM_HOST" "warm-" "alice's task runs in a warm container"
assert_eq 2 "$(oci_runtime list -q 2>/dev/null | grep -c '^warm-')" "one warm container each for alice and bob"

stop_node
assert_eq "" "$(oci_runtime list -q 2>/dev/null)" "containers (warm ones too) left in $OCI_RUNTIME after the node stopped"
assert_eq "" "$(ls -d /sys/fs/cgroup/gpunode/"$host".* /sys/fs/cgroup/*/gpunode/"$host".* 2>/dev/null)" "cgroups left after the node stopped"
cli image rm busybox:oci --data "$data"
assert_eq "busybox:dir busybox:local" "$(cli image ls --data "$data" --json | jq -r '[.images[].name] | join(" ")')" "image ls after rm"
