#!/usr/bin/env bash
# Checks the systemd units offline: `systemd-analyze verify` must print nothing (any warning
# fails), and the sandboxing exposure of both services must stay at or below 2.0.
# Needs the binaries built (target/debug or $PROFILE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${PROFILE_DIR:-$PWD/target/debug}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# verify checks that ExecStart= exists: point it at the freshly built binaries.
for unit in systemd/*.service; do
  sed "s#/usr/bin/#$bin_dir/#g" "$unit" >"$work/$(basename "$unit")"
done
out=$(systemd-analyze verify "$work"/*.service 2>&1) || { echo "$out"; exit 1; }
if [[ -n $out ]]; then
  echo "systemd-analyze verify warned:"; echo "$out"; exit 1
fi

for unit in systemd/*.service; do
  # --threshold=20 makes the command fail above an exposure of 2.0.
  line=$(systemd-analyze --offline=true security --threshold=20 "$unit" 2>&1 | grep 'Overall exposure') || {
    systemd-analyze --offline=true security "$unit"; exit 1; }
  echo "$(basename "$unit"): ${line#*: }"
done
