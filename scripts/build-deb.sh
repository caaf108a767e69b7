#!/usr/bin/env bash
# Builds the doorbelld .deb with cargo-deb from an already built release binary and checks
# what is inside. Usage: scripts/build-deb.sh [TARGET]   (default: the host; CI: aarch64)
#   bash scripts/build-deb.sh aarch64-unknown-linux-gnu   -> target/debian/doorbelld_*_arm64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-}
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version '^3'

args=(--no-build --no-strip --locked)
[[ -n $target ]] && args+=(--target "$target")
deb=$(cargo deb "${args[@]}" | tail -n1)
echo "built $deb ($(stat -c %s "$deb") bytes)"

# The package must hold exactly what the appliance needs, for the right architecture.
expected_arch=$(if [[ $target == aarch64-* ]]; then echo arm64; else dpkg --print-architecture; fi)
arch=$(dpkg-deb -f "$deb" Architecture)
[[ $arch == "$expected_arch" ]] || { echo "Architecture is $arch, want $expected_arch"; exit 1; }
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/doorbelld ./usr/lib/systemd/system/doorbelld.service \
  ./usr/lib/sysusers.d/doorbelld.conf ./usr/lib/tmpfiles.d/doorbelld.conf \
  ./etc/doorbell/doorbell.toml ./usr/lib/udev/rules.d/99-doorbell.rules \
  ./usr/share/doc/doorbelld/README.md; do
  grep -q " $path\$" <<<"$contents" || { echo "missing in the package: $path"; echo "$contents"; exit 1; }
done
grep -qE "^-rw-r----- (root/root|0/0) .* ./etc/doorbell/doorbell.toml$" <<<"$contents" ||
  { echo "doorbell.toml must be 0640"; exit 1; }
control=$(mktemp -d); trap 'rm -rf "$control"' EXIT
dpkg-deb -e "$deb" "$control"
grep -qx "/etc/doorbell/doorbell.toml" "$control/conffiles" || { echo "doorbell.toml is not a conffile"; exit 1; }
grep -q "systemd-sysusers doorbelld.conf" "$control/postinst" || { echo "postinst does not create the user"; exit 1; }
grep -q "deb-systemd-helper enable doorbelld.service\|systemctl.*enable.*doorbelld" "$control/postinst" ||
  { echo "postinst does not enable the service"; cat "$control/postinst"; exit 1; }
file_type=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/doorbelld | file -)
if [[ $expected_arch == arm64 ]]; then
  grep -q "ARM aarch64" <<<"$file_type" || { echo "usr/bin/doorbelld is not aarch64: $file_type"; exit 1; }
fi
echo "package checks passed: $(grep -c '^' <<<"$contents") entries, Architecture $arch"
