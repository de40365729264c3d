#!/usr/bin/env bash
# test.sh — what `make test` runs after building $BUILD:
#   1. unit tests (meson test) and integration tests (tests/integration/run.sh) on $BUILD;
#   2. the same again on $ASAN_BUILD, built with -Db_sanitize=address,undefined,
#      where any sanitizer report fails the test that caused it.
# Ends with one line "N passed, N failed" over everything; exits 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
passed=0
failed=0
ulimit -c 0 2>/dev/null || true

# Runs the unit tests of build dir $1 and adds their results to the totals.
run_unit() {
	local dir=$1 log="$1/meson-logs/testlog.json" p f
	echo "== unit tests ($dir)"
	rm -f "$log"
	# Sanitized builds run 2-5x slower: their time limits are hang guards, not timings.
	meson test -C "$dir" --print-errorlogs ${GPUNODE_SANITIZED:+--timeout-multiplier 3}
	local rc=$?
	if [[ -s "$log" ]]; then
		# One JSON object per test; OK and EXPECTEDFAIL pass, SKIP counts as neither.
		p=$(jq -s '[.[] | select(.result == "OK" or .result == "EXPECTEDFAIL")] | length' "$log")
		f=$(jq -s '[.[] | select(.result != "OK" and .result != "EXPECTEDFAIL" and .result != "SKIP")] | length' "$log")
	else
		p=0 f=0
	fi
	if ((rc != 0 && f == 0)); then
		f=1 # meson test itself failed (a build error, no tests run)
	fi
	echo "unit ($dir): $p passed, $f failed"
	passed=$((passed + p))
	failed=$((failed + f))
}

# Runs the integration tests against $1/gpunode and adds their results.
run_integration() {
	local dir=$1 out p f
	echo "== integration tests ($dir)"
	out=$(mktemp)
	GPUNODE_BIN="$dir/gpunode" tests/integration/run.sh | tee "$out"
	local rc=${PIPESTATUS[0]}
	read -r p f < <(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$out" | tail -n 1)
	rm -f "$out"
	p=${p:-0} f=${f:-0}
	if ((rc != 0 && f == 0)); then
		f=1 # the runner itself failed
	fi
	echo "integration ($dir): $p passed, $f failed"
	passed=$((passed + p))
	failed=$((failed + f))
}

# Containers: the cgroup fix crun needs on hybrid hosts, and one private
# dockerd (with busybox:local imported: no registry is reachable) that every
# Docker test uses through $DOCKER_HOST; stopped by its pid at the end.
if [[ -x scripts/crun_cgroup_fix.sh ]]; then
	scripts/crun_cgroup_fix.sh || echo "test.sh: scripts/crun_cgroup_fix.sh failed; crun tests may fail" >&2
fi
dockerd_dir=$(mktemp -d /tmp/gpunode-test-dockerd.XXXXXX)
# dockerd can leave mounts (its data root, container layers) under the dir:
# unmount them, deepest first, before removing it; a leftover is a warning.
stop_dockerd() {
	scripts/dockerd.sh stop "$dockerd_dir"
	awk -v d="$dockerd_dir" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$dockerd_dir" 2>/dev/null || echo "test.sh: warning: could not remove $dockerd_dir" >&2
}
trap stop_dockerd EXIT
if docker_env=$(scripts/dockerd.sh start "$dockerd_dir") && scripts/dockerd.sh image "$dockerd_dir" >/dev/null; then
	export "${docker_env?}"
else
	echo "test.sh: could not start dockerd with busybox:local; the Docker tests will fail" >&2
	failed=$((failed + 1))
fi

run_unit "$BUILD"
run_integration "$BUILD"

echo "== sanitizer build ($ASAN_BUILD: address, undefined)"
if scripts/build.sh "$ASAN_BUILD" -Db_sanitize=address,undefined; then
	# LeakSanitizer needs ptrace-like access some sandboxes deny; probe it
	# once and say so rather than failing every test for the wrong reason.
	leaks=1
	probe=$(mktemp -d)
	printf 'int main(void){return 0;}\n' >"$probe/p.c"
	if cc -fsanitize=address "$probe/p.c" -o "$probe/p" 2>/dev/null &&
		! ASAN_OPTIONS=detect_leaks=1 "$probe/p" >/dev/null 2>&1; then
		leaks=0
		echo "test.sh: LeakSanitizer does not work here; running with detect_leaks=0" >&2
	fi
	rm -rf "$probe"
	export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=$leaks:print_summary=1:disable_coredump=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
	export GPUNODE_SANITIZED=1 # lib.sh: longer start-up timeouts, log scan for reports
	run_unit "$ASAN_BUILD"
	run_integration "$ASAN_BUILD"
else
	echo "test.sh: the sanitizer build failed" >&2
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
((failed == 0))
