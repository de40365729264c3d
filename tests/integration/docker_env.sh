# docker_env.sh — sourced by the Docker executor tests after lib.sh: makes
# sure a real dockerd answers and has busybox:local. scripts/test.sh starts
# one for the whole run and exports DOCKER_HOST; a test run alone starts its
# own private daemon (scripts/dockerd.sh) and stops it when it ends.
# shellcheck shell=bash

docker_api() { # METHOD PATH — the Engine API on $DOCKER_HOST's socket; body on stdout
	curl -fsS --max-time 30 --unix-socket "${DOCKER_HOST#unix://}" -X "$1" "http://docker/v1.41$2"
}

if [[ -z "${DOCKER_HOST:-}" ]]; then
	_own_dockerd=$TEST_DIR/dockerd
	DOCKER_HOST=$("$REPO_ROOT/scripts/dockerd.sh" start "$_own_dockerd" | sed -n 's/^DOCKER_HOST=//p') ||
		fail "could not start dockerd (scripts/dockerd.sh start $_own_dockerd)"
	export DOCKER_HOST
	_stop_own_dockerd() { "$REPO_ROOT/scripts/dockerd.sh" stop "$_own_dockerd" || true; }
	on_exit _stop_own_dockerd # (a second EXIT trap never ran: _lib_on_exit exits)
fi
curl -fsS --max-time 5 --unix-socket "${DOCKER_HOST#unix://}" http://docker/_ping >/dev/null ||
	fail "no dockerd answers on $DOCKER_HOST"
if ! docker_api GET /images/busybox:local/json >/dev/null 2>&1; then
	"$REPO_ROOT/scripts/dockerd.sh" image "$(dirname "${DOCKER_HOST#unix://}")" >/dev/null ||
		fail "could not build busybox:local"
fi

# containers_of HOST — ids of the containers labelled for gpunode host HOST
containers_of() {
	docker_api GET "/containers/json?all=1&filters=$(jq -rn --arg h "gpunode.host=$1" '{label:[$h]} | tostring | @uri')" |
		jq -r '.[].Id'
}
