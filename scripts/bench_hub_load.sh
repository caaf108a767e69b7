#!/usr/bin/env bash
# Load benchmark of one hub (issue 12), not a test: how many authenticated idle doors it
# holds, its memory per idle door at each count, and ring latency (door -> hub -> phone) with
# them connected; side by side with a socket.io relay on Node measured by the same tool.
#
#   scripts/bench_hub_load.sh                 # NS="1000 10000 50000"
#   NS="1000" PROBES=200 SIO=0 scripts/bench_hub_load.sh
#
# What it does, per count N: a fresh database with N doors (`load_bench seed`: ids d-w<i>,
# secrets s<i>), a release `doorbell-hub serve --insecure-http` on 127.0.0.1, then wsload
# (../shared/tools/wsload, or $WSLOAD_DIR; built with CARGO_TARGET_DIR in the scratch folder)
# opens N WebSockets from several loopback source addresses, each saying a door hello, and
# samples the hub's VmRSS before and after (KB per connection = RSS delta / connections
# alive). While they stay connected (`--hold`), `load_bench ring` pairs a phone with one more
# door and times PROBES rings from that door to the phone. The socket.io relay
# (wsload's refs/socketio-relay, npm-installed into the scratch folder) gets the same N
# connections in rooms of two, and wsload's own probes time a message relayed to the other
# member of a room: the same one-way path, sender -> server -> receiver.
#
# The run lifts the per-address limits ([limits] in a scratch config): the load comes from a
# handful of loopback addresses, where real doors come from one address each, and lets every
# descriptor but the hub's reserve hold a door (no headroom kept for page loads). The hub and
# wsload each hold N sockets: each needs a hard RLIMIT_NOFILE above N (raised here when the
# shell may; a container without CAP_SYS_RESOURCE keeps its own, e.g. 20,000).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WSLOAD_DIR=${WSLOAD_DIR:-$REPO/../shared/tools/wsload}
NS=${NS:-"1000 10000 50000"}
HOLD=${HOLD:-60}
PROBES=${PROBES:-500}
SIO=${SIO:-1}
SCRATCH=${SCRATCH:-$(mktemp -d /tmp/bench-hub-load.XXXXXX)}
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

cargo build --release -q -p doorbell-hub --bin doorbell-hub --example load_bench
HUB=$REPO/target/release/doorbell-hub
LB=$REPO/target/release/examples/load_bench
(cd "$WSLOAD_DIR" && CARGO_TARGET_DIR=$SCRATCH/wsload-target cargo build --release -q)
W=$SCRATCH/wsload-target/release/wsload

cat >"$SCRATCH/limits.toml" <<'TOML'
[limits]
max_per_address = 1000000
max_websockets = 1000000
max_pending_websockets = 4096
max_pending_per_address = 4096
TOML

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The hub and wsload are separate processes that only say they are ready in their output: poll
# it every 0.1 s, for at most a minute.
wait_for() { # FILE PATTERN WHAT
  for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $3 (see $1)" >&2; return 1
}
sources() { local s=$(( ($1 + 9999) / 10000 )); echo $(( s < 2 ? 2 : s )); }

run_hub() { # N
  local n=$1 db=$SCRATCH/hub-$1.sqlite3 port code pid out=$SCRATCH/hub-$1
  code=$("$LB" seed "$db" "$n")
  port=$(free_port)
  MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} "$HUB" --db "$db" serve --listen "127.0.0.1:$port" --insecure-http --config "$SCRATCH/limits.toml" \
    >"$out.log" 2>&1 &
  pid=$!
  wait_for "$out.log" "Listening on" "the hub"
  "$W" --url "ws://127.0.0.1:$port/ws" -n "$n" --server-pid "$pid" --src-ips "$(sources "$n")" \
    --hold "$HOLD" --label "hub-$n" \
    --hello '{"type":"hello","protocol_version":1,"door_id":"d-w{i}","secret":"s{i}","software":"wsload"}' \
    >"$out.wsload" 2>"$out.wsload.err" &
  local wl=$!
  wait_for "$out.wsload.err" "holding" "wsload to connect $n doors"
  "$LB" ring "127.0.0.1:$port" "$code" "$PROBES" >"$out.ring"
  wait "$wl" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "== doorbell-hub, $n idle doors"
  grep -E "^(established|server VmRSS|KB/connection|after hold)" "$out.wsload" || cat "$out.wsload.err"
  cat "$out.ring"
}

run_sio() { # N
  local n=$1 port pid out=$SCRATCH/sio-$1
  port=$(free_port)
  (cd "$SCRATCH/sio" && exec env PORT="$port" node server.js) >"$out.log" 2>&1 &
  pid=$!
  # The socket.io server prints nothing when ready: poll for its listening socket (at most 10 s).
  for _ in $(seq 100); do ss -Hltn "sport = :$port" | grep -q LISTEN && break; sleep 0.1; done
  "$W" --url "ws://127.0.0.1:$port/socket.io/?EIO=4&transport=websocket" --socketio -n "$n" \
    --server-pid "$pid" --src-ips "$(sources "$n")" --label "sio-$n" --hello '42["join","room-{pair}"]' \
    --probes "$PROBES" --probe-msg '42["offer",{"sdp":"{probe}"}]' --probe-interval-ms 50 \
    >"$out.wsload" 2>"$out.wsload.err" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "== socket.io relay (Node $(node --version)), $n idle connections"
  grep -E "^(established|server VmRSS|KB/connection|probe latency)" "$out.wsload" || cat "$out.wsload.err"
}

if [ "$SIO" = 1 ] && [ ! -d "$SCRATCH/sio/node_modules" ]; then
  cp -r "$WSLOAD_DIR/refs/socketio-relay" "$SCRATCH/sio"
  (cd "$SCRATCH/sio" && npm install --silent --no-audit --no-fund >/dev/null)
fi
echo "scratch: $SCRATCH (delete it when done)"
for n in $NS; do
  run_hub "$n"
  if [ "$SIO" = 1 ]; then run_sio "$n"; fi
done
