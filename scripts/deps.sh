#!/usr/bin/env bash
# deps.sh — installs the Debian packages gpunode needs to build, test and
# benchmark. Idempotent: asks dpkg first and touches apt only when something
# is missing, so a second run is a fast no-op. Runs as root, or through sudo.
set -euo pipefail

packages=(
	build-essential gcc make pkg-config meson ninja-build
	libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev libsodium-dev
	libcriterion-dev
	prometheus # promtool, for checking /metrics
	curl jq python3 procps
	libarchive-dev runc crun busybox-static # containers: image store, OCI runtimes, test images
	docker.io # containers: the Docker executor's daemon (started by scripts/dockerd.sh, no systemd)
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [[ "$status" != "installed" ]]; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

echo "deps.sh: installing ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "deps.sh: missing packages (${missing[*]}) and not root, no sudo: install them as root" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
