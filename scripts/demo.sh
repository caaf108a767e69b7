#!/usr/bin/env bash
# Installs what is missing, builds, and runs a complete local intercom: the hub and the door in
# one process, a real camera/microphone if present (test pattern and tone otherwise). Prints
# the link to open on a phone. Extra arguments go to doorbelld, e.g. --listen 0.0.0.0:8443.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked --bin doorbelld
export DOORBELL__STATE_DIR=${DOORBELL__STATE_DIR:-$PWD/.state/demo}
exec target/release/doorbelld --demo "$@"
