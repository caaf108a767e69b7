// Benchmark (not a test): press -> the visitor's snapshot is stored at the hub, through a
// real doorbell-hub and a real doorbelld with its test camera, on loopback. A paired phone
// (a WebSocket client, no browser) hears `ring` and then `snapshot`, which the hub sends
// right after it stored the upload. Prints p50/p95 of
//   press -> ring       (control socket press -> `ring` at the phone)
//   press -> snapshot   (control socket press -> `snapshot` at the phone)
// and the JPEG sizes.
//
//   cargo build --release --workspace --bins && node --experimental-websocket tests/e2e/bench_snapshot.mjs [N]
//
// (`--experimental-websocket`: Node 20 has WebSocket behind the flag; Node 22 has it always.)
//
// Uses target/release binaries unless DOORBELL_PROFILE says otherwise. Target: snapshot p50
// <= 300 ms.

import { performance } from "node:perf_hooks";

import { percentile } from "./lib/stats.mjs";
import { doorCodeFrom, pairingProof } from "../../web/pairing-proof.js";

process.env.DOORBELL_PROFILE ||= "release";
const { startSystem } = await import("./lib/system.mjs");

const presses = Number(process.argv[2] ?? 20);
if (!Number.isInteger(presses) || presses < 1) {
  console.error("usage: node tests/e2e/bench_snapshot.mjs [N presses, default 20]");
  process.exit(2);
}

const system = await startSystem({ doorEnv: { RUST_LOG: "warn" } });
const ring = [];
const snapshot = [];
const sizes = [];
let ws;
try {
  // Pair a phone through the documented API (a door-made code, proven for a certificate
  // this phone never calls with: it only counts rings and snapshots) and connect it.
  const code = doorCodeFrom(new URL(await system.pairingUrl()).hash.replace("#pair=", "").split("&")[0]);
  const fingerprint = Array.from({ length: 32 }, (_, i) => (i + 16).toString(16).toUpperCase()).join(":");
  const paired = await (
    await fetch(`${system.baseUrl}/api/pair`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        door_id: code.doorId,
        code_id: code.codeId,
        fingerprint,
        proof: await pairingProof(code.secretHex, code.doorId, code.codeId, fingerprint),
      }),
    })
  ).json();
  ws = new WebSocket(system.baseUrl.replace(/^http/, "ws") + "/ws");
  /** @type {((msg: any) => void)[]} */
  let waiters = [];
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    msg.at = performance.now();
    const ready = waiters;
    waiters = [];
    for (const w of ready) w(msg);
  };
  const next = (type, ms = 10_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within ${ms} ms\n${system.logs()}`)), ms);
      const wait = (msg) => {
        if (msg.type === type) {
          clearTimeout(timer);
          resolve(msg);
        } else waiters.push(wait);
      };
      waiters.push(wait);
    });
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const welcome = next("welcome");
  ws.send(JSON.stringify({ type: "hello", protocol_version: 1, token: paired.token }));
  await welcome;

  for (let i = 0; i < presses; i++) {
    const rang = next("ring");
    const snapped = next("snapshot");
    const pressedAt = performance.now();
    const reply = await system.press();
    if (reply !== "ok") throw new Error(`press: ${reply}`);
    const r = await rang;
    const s = await snapped;
    ring.push(r.at - pressedAt);
    snapshot.push(s.at - pressedAt);
    const jpeg = await fetch(system.baseUrl + s.url);
    sizes.push((await jpeg.arrayBuffer()).byteLength);
    ws.send(JSON.stringify({ type: "decline", call_id: r.call_id }));
    await system.waitForStatus((st) => st.state === "idle", "idle after the decline");
  }
} finally {
  ws?.close();
  await system.stop();
}

const fmt = (xs) => `p50 ${percentile(xs, 50).toFixed(1)} ms, p95 ${percentile(xs, 95).toFixed(1)} ms`;
console.log(`presses: ${presses}`);
console.log(`press -> ring:     ${fmt(ring)}`);
console.log(`press -> snapshot: ${fmt(snapshot)}`);
console.log(`snapshot size: ${Math.min(...sizes)}-${Math.max(...sizes)} bytes`);
