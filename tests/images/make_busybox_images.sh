#!/usr/bin/env bash
# make_busybox_images.sh OUTDIR — builds test images without a registry or
# dockerd, from the busybox-static package, in the real formats:
#   OUTDIR/rootfs/           a plain rootfs dir (busybox + applet symlinks)
#   OUTDIR/docker-save.tar   `docker save` layout, two layers (manifest.json)
#   OUTDIR/oci-layout.tar    OCI image layout, the same two layers gzipped
# Layer 2 exercises whiteouts: it deletes bin/vi (.wh.vi), empties etc/opq
# (.wh..wh..opq) but adds etc/opq/kept in the same layer, and adds
# etc/layer2. Layer 1 put etc/opq/gone and bin/vi there.
set -euo pipefail
out=${1:?usage: make_busybox_images.sh OUTDIR}
busybox=$(command -v busybox || true)
[[ -x /bin/busybox ]] && busybox=/bin/busybox
[[ -n $busybox ]] || { echo "make_busybox_images.sh: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Layer 1: the rootfs. Applet links are relative, so they resolve inside
# the container whatever the host's busybox path is.
l1=$work/l1
mkdir -p "$l1"/{bin,etc/opq,proc,sys,dev,tmp,root}
cp "$(readlink -f "$busybox")" "$l1/bin/busybox"
for applet in $("$l1/bin/busybox" --list); do
	[[ $applet == busybox ]] || ln -sf busybox "$l1/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$l1/etc/passwd"
echo "gone" >"$l1/etc/opq/gone"
chmod 1777 "$l1/tmp"
cp -a "$l1" "$out/rootfs"

# Layer 2: whiteouts and an addition.
l2=$work/l2
mkdir -p "$l2/bin" "$l2/etc/opq"
: >"$l2/bin/.wh.vi"
: >"$l2/etc/opq/.wh..wh..opq"
echo "kept" >"$l2/etc/opq/kept"
echo "layer2" >"$l2/etc/layer2"

tar_layer() { tar --sort=name --owner=0 --group=0 --numeric-owner -C "$1" -cf "$2" .; }
tar_layer "$l1" "$work/l1.tar"
tar_layer "$l2" "$work/l2.tar"
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

config_json() { # diff ids of the two layers
	printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin:/usr/bin","IMAGE_VAR=from-image"],"Cmd":["sh"],"WorkingDir":"/root"},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' "$1" "$2"
}
d1=$(sha "$work/l1.tar")
d2=$(sha "$work/l2.tar")

# docker save: one directory per layer, a config blob named by its digest.
ds=$work/ds
mkdir -p "$ds/$d1" "$ds/$d2"
cp "$work/l1.tar" "$ds/$d1/layer.tar"
cp "$work/l2.tar" "$ds/$d2/layer.tar"
config_json "$d1" "$d2" >"$work/config.json"
cd_=$(sha "$work/config.json")
cp "$work/config.json" "$ds/$cd_.json"
printf '[{"Config":"%s.json","RepoTags":["busybox:local"],"Layers":["%s/layer.tar","%s/layer.tar"]}]' \
	"$cd_" "$d1" "$d2" >"$ds/manifest.json"
tar -C "$ds" -cf "$out/docker-save.tar" .

# OCI layout: gzipped layers, config and manifest as blobs, an index.
oci=$work/oci
mkdir -p "$oci/blobs/sha256"
gzip -n -c "$work/l1.tar" >"$work/l1.tgz"
gzip -n -c "$work/l2.tar" >"$work/l2.tgz"
for f in l1.tgz l2.tgz config.json; do cp "$work/$f" "$oci/blobs/sha256/$(sha "$work/$f")"; done
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
	"$cd_" "$(size "$work/config.json")" "$(sha "$work/l1.tgz")" "$(size "$work/l1.tgz")" \
	"$(sha "$work/l2.tgz")" "$(size "$work/l2.tgz")" >"$work/manifest.json"
md=$(sha "$work/manifest.json")
cp "$work/manifest.json" "$oci/blobs/sha256/$md"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"os":"linux","architecture":"amd64"}}]}' \
	"$md" "$(size "$work/manifest.json")" >"$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
tar -C "$oci" -cf "$out/oci-layout.tar" .
