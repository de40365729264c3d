#!/usr/bin/env bash
# dockerd.sh — runs a private Docker daemon for tests and benchmarks, with no
# systemd: everything (data, exec root, pidfile, socket, log) lives under DIR,
# so it neither needs nor touches the machine's own Docker setup.
#
#   scripts/dockerd.sh start DIR   starts dockerd (--iptables=false --bridge=none), waits until
#                                  GET /_ping answers, prints DOCKER_HOST=unix://DIR/docker.sock
#   scripts/dockerd.sh image DIR   builds busybox:local with `docker import` from busybox-static
#                                  (no registry is reachable here)
#   scripts/dockerd.sh stop DIR    stops it by its pid (TERM, then KILL after 20 s)
#
# No bridge and no iptables: a task's container gets no network unless it
# asks, and the daemon leaves the host's firewall alone.
set -euo pipefail

readonly START_TIMEOUT_S=60
readonly STOP_TIMEOUT_S=20

die() {
	echo "dockerd.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

socket_of() { echo "$1/docker.sock"; }

ping_ok() {
	curl -fsS --max-time 2 --unix-socket "$(socket_of "$1")" http://localhost/_ping >/dev/null 2>&1
}

pid_alive() {
	local pid
	pid=$(cat "$1/dockerd.pid" 2>/dev/null) || return 1
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

start() {
	local dir=$1
	command -v dockerd >/dev/null || die "dockerd is not installed (apt-get install docker.io)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if pid_alive "$dir" && ping_ok "$dir"; then
		echo "DOCKER_HOST=unix://$(socket_of "$dir")"
		return 0
	fi
	# Short exec-root path: containerd's socket path must fit in a sockaddr_un.
	local exec_root
	exec_root=/run/gpunode-dockerd-$(echo -n "$dir" | md5sum | cut -c1-12)
	echo "$exec_root" >"$dir/exec-root"
	nohup dockerd \
		--data-root "$dir/data" \
		--exec-root "$exec_root" \
		--pidfile "$dir/dockerd.pid" \
		--host "unix://$(socket_of "$dir")" \
		--iptables=false --ip6tables=false --bridge=none \
		--userland-proxy=false \
		>>"$dir/dockerd.log" 2>&1 </dev/null &
	local pid=$! deadline=$((SECONDS + START_TIMEOUT_S))
	until ping_ok "$dir"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$dir/dockerd.log" >&2 || true
			die "dockerd exited before answering (log: $dir/dockerd.log)"
		fi
		((SECONDS < deadline)) || die "dockerd did not answer /_ping within ${START_TIMEOUT_S}s (log: $dir/dockerd.log)"
		sleep 0.2
	done
	echo "DOCKER_HOST=unix://$(socket_of "$dir")"
}

image() {
	local dir=$1 bb rootfs
	dir=$(cd "$dir" && pwd)
	ping_ok "$dir" || die "no dockerd answers on $(socket_of "$dir"); run: $0 start $dir"
	bb=$(command -v busybox) || die "busybox is not installed (apt-get install busybox-static)"
	rootfs=$(mktemp -d)
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/dev" "$rootfs/proc" "$rootfs/sys"
	cp "$bb" "$rootfs/bin/busybox"
	"$rootfs/bin/busybox" --install -s "$rootfs/bin" 2>/dev/null ||
		for app in $("$bb" --list); do ln -sf busybox "$rootfs/bin/$app"; done
	# --install -s links to the absolute path it ran from: relink inside the image.
	for link in "$rootfs"/bin/*; do
		[[ -L "$link" ]] && ln -sf busybox "$link"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
	echo 'root:x:0:' >"$rootfs/etc/group"
	tar -C "$rootfs" -c . | docker -H "unix://$(socket_of "$dir")" import \
		--change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - busybox:local >/dev/null
	rm -rf "$rootfs"
	echo "busybox:local"
}

stop() {
	local dir=$1 pid
	pid=$(cat "$dir/dockerd.pid" 2>/dev/null) || return 0
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	local deadline=$((SECONDS + STOP_TIMEOUT_S))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "dockerd.sh: dockerd $pid did not stop within ${STOP_TIMEOUT_S}s: killed" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	rm -f "$dir/dockerd.pid"
	unmount_leftovers "$dir"
}

# A daemon that was killed (or one that exits quickly) can leave its data
# root's own bind mount and overlay mounts behind, and then the caller cannot
# remove DIR: unmount whatever is still mounted under it, deepest first.
unmount_leftovers() {
	local abs m
	abs=$(cd "$1" 2>/dev/null && pwd) || return 0
	awk -v p="$abs/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}

[[ $# -eq 2 ]] || usage
case "$1" in
start) start "$2" ;;
image) image "$2" ;;
stop) stop "$2" ;;
*) usage ;;
esac
