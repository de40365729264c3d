#!/usr/bin/env bash
# bench/slurm/run.sh [BUILD] — experiment 3: the same 2,000 trivial one-GPU
# tasks through Slurm and through gpunode on this machine.
#   1. installs slurm-wlm and munge if missing (apt; only this benchmark needs them);
#   2. starts munged, slurmctld and slurmd in the foreground, as our children, on
#      localhost with 8 fake GPUs (gres on empty files) and Slurm's high-throughput
#      settings (batch_sched_delay=0, sched_min_interval=0, MinJobAge=2: the tuned
#      configuration of ../shared/research/slurm/);
#   3. submits N `sbatch --wrap=true --gres=gpu:1` one after another and waits until
#      squeue is empty (polled every 0.2 s): slurm_submits_per_s, slurm_e2e_tasks_per_s;
#   4. runs N `true` tasks through `gpunode up --sim-gpus 8xH100-80GB` (process
#      executor) with bench_api --e2e (8 HTTP clients): gpunode_submits_per_s,
#      gpunode_e2e_tasks_per_s; e2e = tasks / (first submission -> last completion).
#      Slurm's run lasts minutes and averages out this machine's noise; one
#      gpunode run lasts about 2 s and swings by 15 %, so gpunode runs 3 times
#      (each a fresh `gpunode up`); the median run is reported, with the
#      slowest and fastest (gpunode_e2e_min/max_tasks_per_s);
#   5. the same N tasks each in its own container (oci executor, runc or crun,
#      busybox:local), when a runtime is installed: gpunode_oci_e2e_tasks_per_s,
#      e2e_ratio_vs_slurm_oci.
# Prints one flat JSON object on stdout; progress on stderr. Every daemon it
# started is stopped by pid on exit, failure or not.
#   BENCH_SLURM_COUNT (2000), BENCH_SLURM_GPUNODE_RUNS (3)
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=${1:-${BUILD:-build-release}}
BIN="$BUILD/gpunode"
COUNT=${BENCH_SLURM_COUNT:-2000}
RUNS=${BENCH_SLURM_GPUNODE_RUNS:-3}
source bench/lib.sh

for b in "$BIN" "$BUILD/bench_api"; do
	[[ -x "$b" ]] || {
		echo "bench/slurm/run.sh: $b is not built" >&2
		exit 1
	}
done

install_slurm() {
	command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
	progress "slurm: installing slurm-wlm and munge (apt)"
	local sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >&2
}
install_slurm

work=$(mktemp -d /tmp/gpunode-slurm.XXXXXX)
pids=()
export HOME="$work/home"
mkdir -p "$HOME"
cleanup() {
	local rc=$?
	STOP_SIGNAL=TERM stop_all
	if ((rc != 0)); then
		echo "bench/slurm/run.sh: failed (status $rc); logs kept in $work" >&2
		tail -n 20 "$work"/log/* "$work"/*.log 2>/dev/null >&2 || true
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- Slurm ----
S=$work/slurm
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/gpus" "$S/jobs" "$work/log"
for i in 0 1 2 3 4 5 6 7; do : >"$S/gpus/nvidia$i"; done
node=$(hostname -s)
ctld_port=$(free_port)
slurmd_port=$(free_port)
# Our own munge key and socket: nothing of the system's munge is touched.
head -c 1024 /dev/urandom >"$S/munge.key"
chmod 0600 "$S/munge.key"
cat >"$S/gres.conf" <<CONF
AutoDetect=off
NodeName=$node Name=gpu File=$S/gpus/nvidia[0-7]
CONF
# The node claims 32 CPUs (the box has 2) so that the 8 GPUs, not the cores,
# bound how many jobs run at once, as on a GPU server.
cat >"$S/slurm.conf" <<CONF
ClusterName=gpunodebench
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge.socket
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,default_queue_depth=1000,sched_max_job_start=0
MinJobAge=2
GresTypes=gpu
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MaxJobCount=20000
SlurmdParameters=config_overrides
NodeName=$node CPUs=32 RealMemory=16000 Gres=gpu:8 State=UNKNOWN
PartitionName=gpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$S/slurm.conf

progress "slurm: starting munged, slurmctld, slurmd (8 fake GPUs)"
/usr/sbin/munged --foreground --force --key-file="$S/munge.key" --socket="$S/munge.socket" \
	--pid-file="$S/munged.pid" --seed-file="$S/munged.seed" --log-file="$S/log/munged.log" >"$work/log/munged.out" 2>&1 &
pids+=($!)
for ((i = 0; i < 100; i++)); do [[ -S "$S/munge.socket" ]] && break; sleep 0.1; done
[[ -S "$S/munge.socket" ]] || { echo "bench/slurm/run.sh: munged did not open its socket" >&2; exit 1; }
/usr/sbin/slurmctld -D -i -f "$SLURM_CONF" >"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
/usr/sbin/slurmd -D -f "$SLURM_CONF" >"$work/log/slurmd.out" 2>&1 &
pids+=($!)
for ((i = 0; i < 300; i++)); do
	state=$(sinfo -h -o %T 2>/dev/null || true)
	[[ "$state" == idle ]] && break
	sleep 0.1
done
[[ "$state" == idle ]] || { echo "bench/slurm/run.sh: the Slurm node is not idle after 30 s (state '$state')" >&2; exit 1; }

now() { date +%s.%N; }
progress "slurm: submitting $COUNT one-GPU jobs (sbatch, one after another)"
cd "$S/jobs"
t0=$(now)
for ((i = 0; i < COUNT; i++)); do
	sbatch -Q --wrap=true --gres=gpu:1 -o /dev/null
done
t1=$(now)
progress "slurm: waiting for the queue to drain (about $((COUNT / 9)) s at Slurm's known ~9.5 jobs/s)"
last=0
while :; do
	n=$(squeue -h -o %i | wc -l)
	((n == 0)) && break
	if (($(date +%s) - last >= 30)); then
		progress "slurm: $n jobs still queued or running"
		last=$(date +%s)
	fi
	sleep 0.2
done
t2=$(now)
cd - >/dev/null
STOP_SIGNAL=TERM stop_all
pids=()

# ---- gpunode ----
runs=()
for ((r = 1; r <= RUNS; r++)); do
	# Slurm's state and spool writes (then the last run's) are still being
	# flushed: gpunode's commits (fsync) must not queue behind them. Each
	# run starts on a settled disk.
	sync
	sleep 1
	progress "gpunode: $COUNT 'true' tasks through gpunode up (8 simulated H100s, process executor), run $r of $RUNS"
	# shellcheck disable=SC2046 # the flag and its value are two words
	start_up "e2e$r" $(process_executor_args)
	runs+=("$("$BUILD/bench_api" --url "$URL" --token "$TOKEN" --threads 8 --count "$COUNT" --e2e)")
	stop_pid "$NODE_PID"
done
# The median run by e2e rate (with an even count, the lower middle one).
all_runs=$(printf '%s\n' "${runs[@]}" | jq -s -c 'sort_by(.e2e_tasks_per_s)')
out=$(jq -c '.[(length - 1) / 2 | floor]' <<<"$all_runs")

# The same tasks, each in its own container (the oci executor: runc or crun
# with busybox:local imported from the image the tests build), when a
# runtime runs here. Slurm ran bare processes: this is what isolation costs.
oci='{}'
if [[ -x "$BUILD/gpunode-shim" ]] && { command -v crun || command -v runc; } >/dev/null; then
	progress "gpunode: $COUNT 'true' tasks, each in its own container (oci executor)"
	scripts/crun_cgroup_fix.sh >/dev/null 2>&1 || true
	tests/images/make_busybox_images.sh "$work/images" >/dev/null
	"$BIN" image import "$work/images/oci-layout.tar" --name busybox:local --data "$work/e2e_oci" >/dev/null
	start_up e2e_oci --executor oci
	oci=$("$BUILD/bench_api" --url "$URL" --token "$TOKEN" --threads 8 --count "$COUNT" --e2e \
		--body '{"command":["true"],"image":"busybox:local","gpu_count":1,"memory_mb":64}')
	stop_pid "$NODE_PID"
fi

jq -n --argjson g "$out" --argjson all "$all_runs" --argjson o "$oci" --arg t0 "$t0" --arg t1 "$t1" --arg t2 "$t2" --argjson n "$COUNT" '
	($n / (($t1 | tonumber) - ($t0 | tonumber))) as $slurm_sub |
	($n / (($t2 | tonumber) - ($t0 | tonumber))) as $slurm_e2e |
	{
		slurm_tasks: $n,
		slurm_submits_per_s: ($slurm_sub * 10 | round / 10),
		slurm_e2e_tasks_per_s: ($slurm_e2e * 100 | round / 100),
		gpunode_submits_per_s: ($n / $g.e2e_submit_seconds * 10 | round / 10),
		gpunode_e2e_tasks_per_s: $g.e2e_tasks_per_s,
		gpunode_e2e_runs: ($all | length),
		gpunode_e2e_min_tasks_per_s: $all[0].e2e_tasks_per_s,
		gpunode_e2e_max_tasks_per_s: $all[-1].e2e_tasks_per_s,
		gpunode_e2e_succeeded: $g.e2e_succeeded,
		e2e_ratio_vs_slurm: ($g.e2e_tasks_per_s / $slurm_e2e * 10 | round / 10)
	} + if $o.e2e_tasks_per_s then {
		gpunode_oci_e2e_tasks_per_s: $o.e2e_tasks_per_s,
		gpunode_oci_e2e_succeeded: $o.e2e_succeeded,
		e2e_ratio_vs_slurm_oci: ($o.e2e_tasks_per_s / $slurm_e2e * 10 | round / 10)
	} else {} end' | jq -c .
