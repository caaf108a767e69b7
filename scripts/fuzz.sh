#!/usr/bin/env bash
# Long fuzzing runs of every decoder of outside input (cargo-fuzz + libFuzzer, nightly Rust).
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 s for every target
#
# Installs what is missing (the nightly toolchain, cargo-fuzz), runs each target for SECONDS
# on a scratch copy of its committed seeds (fuzz/corpus/<target>/ stays as committed), and
# prints one line per target: executions, executions per second, new corpus entries, result.
# A crash leaves its input in fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/
# (replayed by `cargo test --test fuzz_corpora` on stable) and fix the decoder.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-60}
shift || true
ALL=(wire_json turn_datagram http_bodies media_uploads sdp_answer control_socket door_config)
TARGETS=("${@:-${ALL[@]}}")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cd fuzz
cargo +nightly fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf '%-16s %12s %10s %8s  %s\n' target executions exec/s corpus result
failed=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  # GStreamer's one-time initialisation (sdp_answer) keeps GLib allocations for the life of the
  # process, which LeakSanitizer reports at exit as a leak: not one per input.
  extra=()
  asan=
  if [ "$t" = sdp_answer ]; then extra=(-detect_leaks=0); asan=detect_leaks=0; fi
  if ASAN_OPTIONS="$asan" cargo +nightly fuzz run -O "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 "${extra[@]}" >"$log" 2>&1; then
    result="no crash in ${SECONDS_EACH} s"
  else
    result="CRASH: see fuzz/artifacts/$t/ and $log"
    failed=1
    cp "$log" "/tmp/fuzz-$t.log"
    result="CRASH: see fuzz/artifacts/$t/ and /tmp/fuzz-$t.log"
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || echo '?')
  found=$(find "$scratch/$t" -type f | wc -l)
  printf '%-16s %12s %10s %8s  %s\n' "$t" "$execs" "$rate" "$found" "$result"
done
exit $failed
