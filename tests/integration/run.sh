#!/usr/bin/env bash
# run.sh [NAME...] — runs every tests/integration/test_*.sh (or the named ones),
# each in a fresh temp dir with its own $HOME and a time limit, against
# $GPUNODE_BIN (default build/gpunode). Prints "PASS name" / "FAIL name" per
# test and "N passed, N failed" at the end; exits 1 if any failed.
#   GPUNODE_TEST_TIMEOUT  seconds per test (default 180; x3 when GPUNODE_SANITIZED is set)
#   GPUNODE_TEST_KEEP=1   keep the temp dirs of passing tests too
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)

GPUNODE_BIN=${GPUNODE_BIN:-build/gpunode}
[[ "$GPUNODE_BIN" == /* ]] || GPUNODE_BIN="$root/$GPUNODE_BIN"
export GPUNODE_BIN
if [[ ! -x "$GPUNODE_BIN" ]]; then
	echo "run.sh: $GPUNODE_BIN is not built" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

limit=${GPUNODE_TEST_TIMEOUT:-180}
[[ -n "${GPUNODE_SANITIZED:-}" ]] && limit=$((limit * 3))

tests=()
if (($# > 0)); then
	for n in "$@"; do
		n=${n%.sh}
		tests+=("tests/integration/${n#tests/integration/}.sh")
	done
else
	tests=(tests/integration/test_*.sh)
fi

# Nothing the tests started may outlive them (a timed-out test cannot clean up).
kill_leftovers() {
	local f=$1/.pids p
	[[ -f "$f" ]] || return 0
	while read -r p; do
		[[ "$p" =~ ^[0-9]+$ ]] && kill -KILL "$p" 2>/dev/null
	done <"$f"
	return 0
}

passed=0
failed=0
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	if [[ ! -f "$t" ]]; then
		echo "FAIL $name (no such test: $t)"
		failed=$((failed + 1))
		continue
	fi
	dir=$(mktemp -d "/tmp/gpunode-$name.XXXXXX")
	mkdir -p "$dir/home"
	start=$SECONDS
	TEST_DIR="$dir" HOME="$dir/home" timeout -k 10 "$limit" bash "$t" >"$dir/test.out" 2>&1
	rc=$?
	kill_leftovers "$dir"
	took=$((SECONDS - start))
	if ((rc == 0)); then
		echo "PASS $name (${took}s)"
		passed=$((passed + 1))
		[[ -n "${GPUNODE_TEST_KEEP:-}" ]] || rm -rf "$dir"
	else
		why="exit $rc"
		((rc == 124 || rc == 137)) && why="timed out after ${limit}s"
		echo "FAIL $name ($why, ${took}s; files kept in $dir)"
		echo "---- output of $name (last 80 lines) ----"
		tail -n 80 "$dir/test.out"
		echo "----"
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
((failed == 0))
