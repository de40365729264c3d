#!/usr/bin/env bash
# build.sh DIR [-Dopt=value ...] — configures DIR with Meson if it is not yet
# (or re-configures the options that differ), then builds it with Ninja.
# Warnings are errors (-Dwerror=true) in every build dir the Makefile makes.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:?usage: build.sh DIR [-Dopt=value ...]}
shift
opts=(-Dwerror=true "$@")

if [[ ! -f "$dir/build.ninja" ]]; then
	if [[ -f "$dir/meson-private/coredata.dat" ]]; then
		meson setup --wipe "$dir" "${opts[@]}"
	else
		meson setup "$dir" "${opts[@]}"
	fi
else
	# Apply only the options whose value differs, so an up-to-date dir is
	# not regenerated on every call.
	changed=()
	for o in "${opts[@]}"; do
		kv=${o#-D}
		key=${kv%%=*} want=${kv#*=}
		have=$(jq -r --arg k "$key" '.[] | select(.name == $k) | .value | if type == "array" then join(",") else tostring end' \
			"$dir/meson-info/intro-buildoptions.json" 2>/dev/null || true)
		if [[ "$have" != "$want" ]]; then
			changed+=("$o")
		fi
	done
	if ((${#changed[@]} > 0)); then
		meson configure "$dir" "${changed[@]}"
	fi
fi
ninja -C "$dir"
