// A call held open in the NAT test bed and measured once a second: the phone's getStats
// (Chromium) differenced per second, and the door's congestion-control estimate from
// `doorbelld status`. Shared by tests/nat/network.test.mjs and tests/nat/bench_network.mjs.

import { waitForState } from "../../e2e/lib/browser.mjs";
import { waitForStats } from "../../e2e/lib/stats.mjs";

/** Sampling interval: the "getStats each second". */
const SAMPLE_MS = 1000;

// Runs inside the page: the raw (cumulative) counters of the call's inbound streams.
async function readCounters() {
  const pc = globalThis.doorbell?.pc;
  if (!pc) return null;
  const all = [...(await pc.getStats()).values()];
  const v = all.find((s) => s.type === "inbound-rtp" && s.kind === "video") ?? {};
  const a = all.find((s) => s.type === "inbound-rtp" && s.kind === "audio") ?? {};
  return {
    at: performance.now(),
    bytes: v.bytesReceived ?? 0,
    frames: v.framesDecoded ?? 0,
    freezes: v.freezeCount ?? 0,
    freezeSecs: v.totalFreezesDuration ?? 0,
    dropped: v.framesDropped ?? 0,
    jitterDelay: v.jitterBufferDelay ?? 0,
    jitterEmitted: v.jitterBufferEmittedCount ?? 0,
    qpSum: v.qpSum ?? 0,
    nacks: v.nackCount ?? 0,
    plis: v.pliCount ?? 0,
    retransmitted: v.retransmittedPacketsReceived ?? 0,
    lost: v.packetsLost ?? 0,
    width: v.frameWidth ?? 0,
    samples: a.totalSamplesReceived ?? 0,
    concealed: a.concealedSamples ?? 0,
  };
}

/** One second of the call, from two consecutive readings (and the door's status). */
function difference(prev, cur, door) {
  const d = (k) => cur[k] - prev[k];
  const secs = (cur.at - prev.at) / 1000;
  return {
    kbps: (d("bytes") * 8) / 1000 / secs,
    fps: d("frames") / secs,
    freezes: d("freezes"),
    freezeMs: d("freezeSecs") * 1000,
    dropped: d("dropped"),
    jitterMs: d("jitterEmitted") > 0 ? (d("jitterDelay") / d("jitterEmitted")) * 1000 : null,
    qp: d("frames") > 0 ? d("qpSum") / d("frames") : null,
    nacks: d("nacks"),
    plis: d("plis"),
    retransmitted: d("retransmitted"),
    lost: d("lost"),
    width: cur.width,
    concealedPct: d("samples") > 0 ? (d("concealed") / d("samples")) * 100 : 0,
    estimateKbps: door?.bandwidth_estimate_kbps ?? null,
    targetKbps: door?.video_target_kbps ?? null,
  };
}

/**
 * Press, answer on the phone, wait for video and audio; returns when the call is up.
 * `timeout` bounds each wait. With `video: false` audio is enough (a benchmark measures a
 * sender whose picture may never arrive).
 */
export async function answerCall({ system, phone }, { timeout = 30_000, video = true } = {}) {
  const { page } = phone;
  const pressed = await system.press();
  if (pressed !== "ok") throw new Error(`press: ${pressed}`);
  await waitForState(page, "ringing", 15_000);
  await page.getByRole("button", { name: "Answer", exact: true }).click();
  try {
    await waitForState(page, "in-call", timeout);
    await waitForStats(page, (s) => (!video || s.video?.framesDecoded > 0) && s.audio?.totalSamplesReceived > 0, { timeout });
  } catch (e) {
    throw new Error(`${e.message}\n${system.logs()}`, { cause: e });
  }
}

/**
 * Samples the answered call once a second for `seconds`; before second i (0-based) runs
 * `at[i]` if given (a step in the network conditions). Returns the per-second rows.
 */
export async function sampleCall({ system, phone }, seconds, at = {}) {
  const rows = [];
  let prev = await phone.page.evaluate(readCounters);
  if (!prev) throw new Error("the phone has no peer connection to measure");
  for (let i = 0; i < seconds; i++) {
    if (at[i]) await at[i]();
    const started = Date.now();
    const [door] = await Promise.all([
      system.status().then((s) => s.current_call).catch(() => null),
      new Promise((r) => setTimeout(r, SAMPLE_MS)),
    ]);
    const cur = await phone.page.evaluate(readCounters);
    if (!cur) throw new Error(`the call ended after ${i} s of measurement\n${system.logs()}`);
    rows.push({ second: i + 1, ...difference(prev, cur, door) });
    prev = cur;
    // Keep the cadence if a status call was slow.
    const late = Date.now() - started - SAMPLE_MS;
    if (late > SAMPLE_MS) process.stderr.write(`sample ${i + 1} was ${late} ms late\n`);
  }
  return rows;
}

/** Hangs up on the phone and waits until both sides are idle. */
export async function hangUp({ system, phone }) {
  const before = await system.status();
  await phone.page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(phone.page, "idle");
  await system.waitForStatus((s) => s.state === "idle" && s.calls_ended === before.calls_ended + 1, "idle after the call");
}

const mean = (values) => {
  const present = values.filter((v) => v !== null && Number.isFinite(v));
  return present.length ? present.reduce((a, b) => a + b, 0) / present.length : null;
};
const sum = (rows, key) => rows.reduce((a, r) => a + (r[key] ?? 0), 0);

/**
 * The figures the targets are written in, over rows[from..to) (seconds, 0-based).
 * goodput and jitter are means; counts are totals; freezesPerMin scales to a minute.
 */
export function summarize(rows, { from = 0, to = rows.length } = {}) {
  const part = rows.slice(from, to);
  const minutes = part.length / 60;
  return {
    seconds: part.length,
    goodputKbps: mean(part.map((r) => r.kbps)),
    maxKbps: Math.max(0, ...part.map((r) => r.kbps)),
    fps: mean(part.map((r) => r.fps)),
    // Chromium counts a freeze only when it ends: a picture stuck for the rest of the call
    // shows here instead.
    stalled: part.filter((r) => r.fps === 0).length,
    freezes: sum(part, "freezes"),
    freezesPerMin: minutes ? sum(part, "freezes") / minutes : 0,
    freezeMs: sum(part, "freezeMs"),
    dropped: sum(part, "dropped"),
    jitterMs: mean(part.map((r) => r.jitterMs)),
    qp: mean(part.map((r) => r.qp)),
    nacks: sum(part, "nacks"),
    plis: sum(part, "plis"),
    retransmitted: sum(part, "retransmitted"),
    lost: sum(part, "lost"),
    concealedPct: mean(part.map((r) => r.concealedPct)),
    estimateKbps: mean(part.map((r) => r.estimateKbps)),
  };
}

/** The first second (1-based) from `from` on at which `predicate(row)` holds, or null. */
export function firstSecond(rows, predicate, from = 0) {
  const row = rows.slice(from).find(predicate);
  return row ? row.second : null;
}
