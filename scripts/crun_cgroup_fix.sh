#!/usr/bin/env bash
# crun_cgroup_fix.sh — lets crun run on a hybrid cgroup host. Debian 12
# without systemd can come up with the v1 controllers mounted under
# /sys/fs/cgroup/* and a cgroup2 mount at /sys/fs/cgroup/unified that
# still holds one controller (hugetlb). crun 1.8 refuses that ("cgroups in
# hybrid mode not supported, drop all controllers from cgroupv2"); runc does
# not mind. Mounting hugetlb as a v1 hierarchy takes it off cgroup2, which
# is then empty, and crun treats the host as plain v1.
#
# Idempotent: does nothing on a pure v1 or v2 host, or once applied.
# Needs root. Exit 0 when crun can run afterwards.
set -euo pipefail

unified=/sys/fs/cgroup/unified
if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then
	exit 0 # pure cgroup v2
fi
if [[ ! -e $unified/cgroup.controllers ]]; then
	exit 0 # pure v1: no cgroup2 mount
fi
controllers=$(cat "$unified/cgroup.controllers")
if [[ -z $controllers ]]; then
	exit 0 # hybrid with an empty cgroup2: already fine
fi
for c in $controllers; do
	dir=/sys/fs/cgroup/$c
	if mountpoint -q "$dir"; then
		continue
	fi
	mkdir -p "$dir"
	# A controller moves from v2 to a v1 hierarchy only while no v2 cgroup
	# below the root uses it, which holds on these hosts (nothing enables it).
	mount -t cgroup -o "$c" cgroup "$dir"
	echo "crun_cgroup_fix.sh: mounted the $c controller as cgroup v1 at $dir" >&2
done
left=$(cat "$unified/cgroup.controllers")
if [[ -n $left ]]; then
	echo "crun_cgroup_fix.sh: cgroup2 still holds: $left (crun will refuse this host; use runc)" >&2
	exit 1
fi
