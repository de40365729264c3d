#!/bin/sh
# sim_philly.sh — experiment 2: the Philly trace through `gpunode sim philly`
# with the three queue policies (fifo, sjf oracle, default = the node's own
# queue) on clusters of HOSTS x 8 GPUs. Usage:
#   bench/sim_philly.sh [BUILD_DIR] [TRACE] [HOSTS...]
# TRACE defaults to bench/data/philly/philly.csv.gz, HOSTS to 80 (the sizing
# of docs/benchmarks.md). Prints a markdown table; with PHILLY_JSON=FILE also
# writes the flat figures of the first HOSTS value there. Needs jq.
set -eu
build=${1:-build}
trace=${2:-$(dirname "$0")/data/philly/philly.csv.gz}
[ $# -gt 2 ] && shift 2 || set -- 80
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '| hosts x 8 GPUs | queue | avg JCT s | vs FIFO | wait p50 s | wait p99 s | wait max s | GPU util %% | makespan s | unplaced | sim s (CPU s) |\n'
printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for hosts in "$@"; do
	for q in fifo sjf default; do
		echo "bench: philly: $hosts hosts, queue $q" >&2
		"$build"/gpunode sim philly --trace "$trace" --hosts "$hosts" --queue "$q" --quiet --json >"$work/$hosts-$q.json"
	done
	fifo=$(jq .avg_jct_s "$work/$hosts-fifo.json")
	for q in fifo sjf default; do
		jq -r --argjson fifo "$fifo" '"| \(.hosts) x \(.gpus_per_host) = \(.gpus) | \(.queue) | \(.avg_jct_s | round) | \($fifo / .avg_jct_s * 100 | round / 100)x | \(.p50_wait_s | round) | \(.p99_wait_s | round) | \(.max_wait_s | round) | \(.gpu_util * 1000 | round / 10) | \(.makespan_s | round) | \(.unplaced) | \(.sim_seconds * 100 | round / 100) (\(.sim_cpu_seconds * 100 | round / 100)) |"' "$work/$hosts-$q.json"
	done
done
if [ -n "${PHILLY_JSON:-}" ]; then
	h=$1
	jq -n --slurpfile f "$work/$h-fifo.json" --slurpfile s "$work/$h-sjf.json" --slurpfile d "$work/$h-default.json" '
		($f[0]) as $f | ($s[0]) as $s | ($d[0]) as $d |
		{
			philly_hosts: $d.hosts, philly_gpus: $d.gpus, philly_jobs: $d.jobs, philly_unplaced: $d.unplaced,
			philly_avg_jct_s_default: $d.avg_jct_s, philly_avg_jct_s_fifo: $f.avg_jct_s, philly_avg_jct_s_sjf: $s.avg_jct_s,
			philly_avg_jct_ratio_vs_fifo: ($f.avg_jct_s / $d.avg_jct_s * 100 | round / 100),
			philly_sjf_avg_jct_ratio_vs_fifo: ($f.avg_jct_s / $s.avg_jct_s * 100 | round / 100),
			philly_p50_wait_s_default: $d.p50_wait_s, philly_p99_wait_s_default: $d.p99_wait_s,
			philly_max_wait_s_default: $d.max_wait_s,
			philly_p99_wait_s_fifo: $f.p99_wait_s, philly_p99_wait_s_sjf: $s.p99_wait_s,
			philly_gpu_util_pct: ($d.gpu_util * 1000 | round / 10), philly_makespan_s: $d.makespan_s,
			philly_sim_seconds: ($d.sim_seconds * 1000 | round / 1000),
			philly_sim_cpu_seconds: ($d.sim_cpu_seconds * 1000 | round / 1000)
		}' >"$PHILLY_JSON"
fi
