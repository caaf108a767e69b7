#!/usr/bin/env bash
# The Pi build, proved without a Pi: cross-compile the workspace for aarch64 (Docker-free, see
# scripts/cross-env.sh), run the unit and integration tests under qemu-aarch64, and make one
# end-to-end call with the aarch64 doorbelld under qemu against the host's hub and Chromium.
# Also builds the arm64 .deb and checks its contents. Prints the binary sizes.
#
# One release build serves everything (`cargo test --release` reuses the release artifacts).
# Needs the host binaries from `cargo build --workspace --bins` (the hub for the call).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cross-env.sh
source scripts/cross-env.sh
TARGET=aarch64-unknown-linux-gnu
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

echo "== aarch64: release build"
cargo build --release --locked --target "$TARGET" --workspace --bins
for bin in doorbelld doorbell-hub; do
  path=target/$TARGET/release/$bin
  file "$path" | grep -q "ARM aarch64" || { echo "$path is not an aarch64 binary"; exit 1; }
  printf '%s: %s bytes (%s MiB)\n' "$bin" "$(stat -c %s "$path")" "$(($(stat -c %s "$path") / 1048576))"
done

echo "== aarch64: unit and integration tests under qemu-aarch64"
# Tests that start the binaries exec them through the same runner (there is no binfmt_misc).
DOORBELL_TEST_RUNNER=qemu-aarch64 cargo test --release --locked --target "$TARGET" --workspace

echo "== aarch64: end-to-end call, doorbelld under qemu-aarch64"
DOORBELLD_BIN=$PWD/target/$TARGET/release/doorbelld DOORBELLD_RUNNER=qemu-aarch64 \
  DOORBELL_HUB_BIN=$PWD/target/debug/doorbell-hub \
  node --test --test-concurrency=1 tests/e2e/cross_call.mjs

echo "== aarch64: Debian package"
bash scripts/build-deb.sh "$TARGET"
