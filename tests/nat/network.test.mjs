// Congestion control and loss recovery under network conditions, in the NAT test bed (root):
// the door's uplink capped with tbf, or losing packets at random (iptables statistic), with
// the bed's delay line for the round trip. Short versions of the scenarios of
// tests/nat/bench_network.mjs, which also runs them with the fixed-bitrate sender.
//
//   sudo node --test --test-concurrency=1 tests/nat/network.test.mjs   (after cargo build --workspace --bins)
//
// The door's test camera sends "snow" (media.test_pattern): an incompressible picture, so the
// encoder really sends the bitrate it is given (the default ball needs 150 kbit/s whatever the
// target, and no cap would ever bite).

import { test } from "node:test";
import assert from "node:assert/strict";

import { startNatSystem } from "./lib/natcall.mjs";
import { capDoorUplink, loseDoorUplink } from "./lib/shape.mjs";
import { answerCall, hangUp, sampleCall, summarize } from "./lib/callstats.mjs";

/** The door's environment for these scenarios: adaptive sender, incompressible picture. */
export const NETWORK_DOOR_ENV = { DOORBELL__MEDIA__CAMERA: "test", DOORBELL__MEDIA__TEST_PATTERN: "snow" };
/** Measured seconds per test; the first SETTLE are the start-up (the "first 5 s"). */
const SECONDS = 20;
const SETTLE = 5;

/** Runs a call in a fresh bed with `shape(bed)` applied before the press; returns its rows. */
async function measuredCall({ delayMs, shape }) {
  const ctx = await startNatSystem({ hubTurn: "embedded", delayMs, doorEnv: NETWORK_DOOR_ENV });
  try {
    await shape(ctx.bed);
    await answerCall(ctx);
    const rows = await sampleCall(ctx, SECONDS);
    await hangUp(ctx);
    return { rows, logs: ctx.system.logs() };
  } finally {
    await ctx.close();
  }
}

const table = (rows) => rows.map((r) => JSON.stringify(r, (k, v) => (typeof v === "number" ? Math.round(v) : v))).join("\n");

test("1 Mbit/s cap at 40 ms RTT: the estimate settles under the cap and the picture keeps moving", async () => {
  const CAP = 1000;
  const { rows } = await measuredCall({ delayMs: 20, shape: (bed) => capDoorUplink(bed, CAP) });
  const after = summarize(rows, { from: SETTLE });
  const last = summarize(rows, { from: SECONDS - 5 });
  const why = `\n${table(rows)}\nafter ${SETTLE} s: ${JSON.stringify(after)}`;
  assert.ok(last.estimateKbps > 0, `the door reports no estimate (congestion control off?)${why}`);
  assert.ok(last.estimateKbps < CAP * 1.1, `the estimate did not settle near or under the cap${why}`);
  assert.ok(after.maxKbps <= CAP * 1.05, `the phone received more than the cap in a second${why}`);
  // The fixed-bitrate sender (1200 kbit/s into 1000) freezes for most of the call: about 8 s
  // of 15 at 1 frame/s (bench_network.mjs). A brief freeze when the estimate probes past the
  // cap is still possible here; the benchmark reports it against the target of none.
  assert.ok(after.freezeMs <= 1000, `frozen for ${Math.round(after.freezeMs)} ms after the first ${SETTLE} s${why}`);
  assert.ok(after.fps >= 24 && after.stalled === 0, `${after.fps} frames/s after the first ${SETTLE} s${why}`);
});

test("5 % loss at 60 ms RTT: lost video packets are retransmitted and freezes stay rare", async () => {
  const { rows } = await measuredCall({ delayMs: 30, shape: (bed) => loseDoorUplink(bed, 5) });
  const after = summarize(rows, { from: SETTLE });
  const why = `\n${table(rows)}\nafter ${SETTLE} s: ${JSON.stringify(after)}`;
  assert.ok(after.lost > 0, `no loss seen: is the iptables rule in place?${why}`);
  assert.ok(after.retransmitted > 0, `no retransmitted packets (NACK/RTX off?)${why}`);
  assert.ok(after.nacks > 0, `the phone sent no NACK${why}`);
  // Each lost packet of a frame that is not resent costs a keyframe round trip and a freeze of
  // a second or more; with NACK/RTX a few short freezes remain (the benchmark counts them).
  assert.ok(after.freezeMs <= 2000 && after.stalled === 0, `frozen too long${why}`);
  assert.ok(after.fps >= 24, `${after.fps} frames/s after the first ${SETTLE} s${why}`);
  // Opus carries in-band FEC, yet Chromium conceals about as much as is lost here (5 %): its
  // jitter buffer rarely holds the next packet in time. Bounded so that a collapse shows.
  assert.ok(after.concealedPct <= 8, `audio concealment ${after.concealedPct} %${why}`);
});
