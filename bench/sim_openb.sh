#!/bin/sh
# sim_openb.sh — the openb packing grid: 4 workloads x seeds 42..51 x
# {bestfit, frag} through `gpunode sim openb`, with the published means
# (FGD paper, ATC'23) beside ours. Usage:
#   bench/sim_openb.sh [BUILD_DIR] [SEQ_DIR] [JOBS]
# SEQ_DIR holds the sequences (*.csv.gz as in bench/data/openb/ or gunzipped
# *.csv) and nodes.csv(.gz); default bench/data/openb (all ten seeds).
# OPENB_SEEDS=N runs seeds 42..42+N-1 only (default 10). Seeds without a
# file are skipped; the runs column says how many went into each mean. With
# OPENB_JSON=FILE the means are also written there as flat figures
# (openb_<w>_alloc_pct for frag, openb_<w>_bestfit_alloc_pct, openb_seeds).
# Needs jq.
set -eu
build=${1:-build}
src=${2:-$(dirname "$0")/data/openb}
jobs=${3:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in "$src"/*_seed*.csv.gz; do
	[ -e "$f" ] && gunzip -c "$f" > "$work/$(basename "$f" .gz)"
done
for f in "$src"/*_seed*.csv; do
	[ -e "$f" ] && cp "$f" "$work/"
done
if [ -e "$src/nodes.csv.gz" ]; then gunzip -c "$src/nodes.csv.gz" > "$work/nodes.csv"; else cp "$src/nodes.csv" "$work/"; fi
workloads="default multigpu50 gpushare40 gpuspec10"
seeds=$(seq 42 $((41 + ${OPENB_SEEDS:-10})))
for w in $workloads; do
	for s in $seeds; do
		[ -e "$work/${w}_seed${s}.csv" ] || continue
		for p in bestfit frag; do
			echo "$w $s $p"
		done
	done
done | xargs -P "$jobs" -n 3 sh -c '
	"$1"/gpunode sim openb --nodes "$2"/nodes.csv --sequence "$2/${3}_seed${4}.csv" \
		--placements "$2/${3}_${4}_${5}.out" --policy "$5" --json |
		jq -r --arg w "$3" --arg s "$4" --arg p "$5" "[\$w, \$s, \$p, .alloc_pct_at_100] | @tsv" > "$2/${3}_${4}_${5}.tsv"
' sh "$build" "$work"
cat "$work"/*.tsv > "$work/all.tsv"
printf '| workload | BestFit (paper) | bestfit (ours) | FGD (paper) | frag (ours) | runs |\n|---|---|---|---|---|---|\n'
for w in $workloads; do
	case $w in
	default) pb=92.86 pf=95.23 ;;
	multigpu50) pb=95.62 pf=97.09 ;;
	gpushare40) pb=91.44 pf=93.96 ;;
	gpuspec10) pb=93.10 pf=94.66 ;;
	esac
	awk -v w="$w" -v pb="$pb" -v pf="$pf" -F'\t' '
		$1 == w { s[$3] += $4; n[$3]++ }
		END { printf "| %s | %s | %.2f | %s | %.2f | %d+%d |\n", w, pb, s["bestfit"] / n["bestfit"], pf, s["frag"] / n["frag"], n["bestfit"], n["frag"] }
	' "$work/all.tsv"
done
if [ -n "${OPENB_JSON:-}" ]; then
	awk -F'\t' '
		{ k = "openb_" $1 ($3 == "bestfit" ? "_bestfit" : "") "_alloc_pct"; s[k] += $4; n[k]++; seeds[$2] = 1 }
		END {
			printf "{"
			for (k in s) printf "\"%s\": %.2f, ", k, s[k] / n[k]
			c = 0; for (x in seeds) c++
			printf "\"openb_seeds\": %d}\n", c
		}' "$work/all.tsv" >"$OPENB_JSON"
fi
