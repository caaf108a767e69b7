#!/usr/bin/env bash
# Makes a signed RAUC bundle (verity format) from a root file system built by image/build.sh.
#
#   image/bundle.sh --rootfs target/image/amd64/rootfs.ext4 --out update.raucb \
#       [--arch amd64] [--version V] [--key KEY --cert CERT] [--release]
#
# Without --key/--cert it signs with the development key beside the rootfs (keys/, made by
# build.sh). --release (or DOORBELL_RELEASE=1) refuses development keys, as the Yocto layer does.
# Install on the door: copy the bundle there first (RAUC 1.8 does not stream), then
# `rauc install FILE && systemctl reboot`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rootfs="" out="" arch=amd64 version="" key="" cert="" release=${DOORBELL_RELEASE:-0}
while (($#)); do
  case $1 in
    --rootfs) rootfs=$(realpath "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --cert) cert=$2; shift 2 ;;
    --release) release=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -f $rootfs && -n $out ]] || { echo "usage: $0 --rootfs FILE --out FILE.raucb [...]" >&2; exit 2; }
keys=$(dirname "$rootfs")/keys
key=${key:-$keys/development-1.key.pem}
cert=${cert:-$keys/development-1.cert.pem}
if [[ $release == 1 ]]; then
  for f in "$key" "$cert"; do python3 "$here/check-release-keys.py" "$f" "$keys"; done
fi
version=${version:-$(cat "$(dirname "$rootfs")/version" 2>/dev/null || date -u +%Y%m%d%H%M%S)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bundle"
# A hard link where possible: the root file system is 2 GiB (sparse), build machines are tight.
ln "$rootfs" "$work/bundle/rootfs.ext4" 2>/dev/null || cp --sparse=always "$rootfs" "$work/bundle/rootfs.ext4"
cat >"$work/bundle/manifest.raucm" <<MANIFEST
[update]
compatible=doorbell-$arch
version=$version

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
MANIFEST
rm -f "$out"
rauc bundle --cert="$cert" --key="$key" "$work/bundle" "$out" >/dev/null
echo "bundle $out ($version): $(du -m "$out" | cut -f1) MiB"
