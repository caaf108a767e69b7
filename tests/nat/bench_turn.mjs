// Benchmark (not a test): Answer -> first decoded frame for calls relayed by TURN across the
// NAT test bed at 50 ms round trip (door-phone), with a real hub, doorbelld and Chromium, each
// in its own network namespace. Needs root.
//
//   cargo build --release --workspace --bins && sudo node tests/nat/bench_turn.mjs [N] [--turn MODE]
//
// MODE: "embedded" (default: the hub's own TURN), "external" (Debian's coturn, configured in
// the hub), or "phone-coturn" (coturn credentials given to the phone by the benchmark and the
// door on STUN only: works with a hub that has no [turn] yet). Uses target/release binaries
// unless DOORBELL_PROFILE says otherwise. Target: p95 <= 400 ms.

import { performance } from "node:perf_hooks";

process.env.DOORBELL_PROFILE ||= "release";
const { natCall, relayCandidate, startNatSystem } = await import("./lib/natcall.mjs");
const { percentile } = await import("../e2e/lib/stats.mjs");
const { PUBLIC_IP } = await import("./lib/netns.mjs");
const { COTURN_PORT } = await import("./lib/turn.mjs");

const args = process.argv.slice(2);
const turnAt = args.indexOf("--turn");
const mode = turnAt >= 0 ? args.splice(turnAt, 2)[1] : "embedded";
const calls = Number(args[0] ?? 20);
const MODES = {
  embedded: { hubTurn: "embedded" },
  external: { hubTurn: "external" },
  "phone-coturn": { coturn: true, hubArgs: ["--stun", `stun:${PUBLIC_IP}:${COTURN_PORT}`], phoneIce: { turnFromCoturn: true } },
};
if (!Number.isInteger(calls) || calls < 1 || !MODES[mode]) {
  console.error("usage: node tests/nat/bench_turn.mjs [N calls, default 20] [--turn embedded|external|phone-coturn]");
  process.exit(2);
}

// 25 ms each way on the door's WAN link: the relayed door-phone round trip is 50 ms.
const DELAY_MS = 25;
const started = performance.now();
const ctx = await startNatSystem({ ...MODES[mode], delayMs: DELAY_MS });
const firstFrame = [];
const phases = { offer: [], answer: [], connected: [], frame: [] };
const rtt = [];
try {
  for (let i = 0; i < calls; i++) {
    const { stats, metrics: m } = await natCall(ctx, { frames: 5 });
    const pair = stats.candidatePair;
    if (!relayCandidate(pair)) throw new Error(`call ${i + 1} was not relayed: ${JSON.stringify(pair)}`);
    firstFrame.push(m.firstFrameAt - m.answerClickAt);
    phases.offer.push(m.offerAt - m.answerClickAt);
    phases.answer.push(m.answerSentAt - m.offerAt);
    phases.connected.push(m.connectedAt - m.answerSentAt);
    phases.frame.push(m.firstFrameAt - m.connectedAt);
    rtt.push(pair.currentRoundTripTime * 1000);
    process.stderr.write(
      `call ${i + 1}/${calls}: first frame ${firstFrame.at(-1).toFixed(1)} ms, ` +
        `pair ${pair.localType}/${pair.remoteType}, RTT ${rtt.at(-1).toFixed(0)} ms\n`,
    );
  }
  const fmt = (xs) => `p50 ${percentile(xs, 50).toFixed(1)} ms, p95 ${percentile(xs, 95).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
  const p50 = (xs) => percentile(xs, 50).toFixed(1);
  console.log(
    `calls: ${calls} through TURN (${mode}), ${process.env.DOORBELL_PROFILE} build, 640x480@30 test sources, ` +
      `door link delayed ${DELAY_MS} ms each way by ${ctx.bed.linkDelay}`,
  );
  console.log(`relayed pair RTT: ${fmt(rtt)}`);
  console.log(`Answer -> first decoded frame: ${fmt(firstFrame)}   (target p95 <= 400 ms)`);
  console.log(
    `  p50 breakdown: Answer -> offer at phone ${p50(phases.offer)} ms, -> answer sent ${p50(phases.answer)} ms, ` +
      `-> connected ${p50(phases.connected)} ms, -> first frame ${p50(phases.frame)} ms`,
  );
} finally {
  await ctx.close();
  process.stderr.write(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
}
