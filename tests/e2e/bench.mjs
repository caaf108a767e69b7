// Benchmark (not a test): N calls through a real doorbell-hub, a real doorbelld with test
// sources and headless Chromium, all on loopback. Prints p50/p95 of
//   ring:        button press (control socket) -> the phone's page shows the ringing screen
//   first frame: Answer clicked -> first decoded video frame (requestVideoFrameCallback)
// and the door's resident memory (idle before, in call, idle after, peak).
//
//   cargo build --release --workspace --bins && node tests/e2e/bench.mjs [N]
//
// Uses target/release binaries unless DOORBELL_PROFILE says otherwise. Targets (loopback):
// ring p95 <= 30 ms, first frame p50 <= 120 ms.

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { percentile, waitForStats } from "./lib/stats.mjs";

process.env.DOORBELL_PROFILE ||= "release";
const { startSystem } = await import("./lib/system.mjs");

const calls = Number(process.argv[2] ?? 20);
if (!Number.isInteger(calls) || calls < 1) {
  console.error("usage: node tests/e2e/bench.mjs [N calls, default 20]");
  process.exit(2);
}

function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"))[1]);
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

const system = await startSystem({ doorEnv: { RUST_LOG: "warn" } });
const phone = await launchPhone({ name: "bench" });
const ring = [];
const firstFrame = [];
const inCallRss = [];
// Where the first-frame time goes: Answer -> offer arrives -> answer sent -> ICE+DTLS connected
// -> first frame.
const phases = { offer: [], answer: [], connected: [], frame: [] };
let idleBefore;
try {
  const { page } = phone;
  await openPairingLink(page, await system.pairingUrl());
  await waitForState(page, "idle");
  idleBefore = rssKiB(system.doorProc.pid).rss;

  for (let i = 0; i < calls; i++) {
    const pressedAt = performance.timeOrigin + performance.now();
    const reply = await system.press();
    if (reply !== "ok") throw new Error(`press: ${reply}`);
    await waitForState(page, "ringing", 10_000);
    // Both clocks are wall-clock based (timeOrigin) with sub-millisecond resolution.
    const rangAt = await page.evaluate(() => performance.timeOrigin + window.doorbell.metrics.ringAt);
    ring.push(rangAt - pressedAt);

    await page.getByRole("button", { name: "Answer", exact: true }).click();
    await page.waitForFunction(() => window.doorbell.metrics.firstFrameAt != null, null, { timeout: 20_000, polling: 10 });
    const m = await page.evaluate(() => window.doorbell.metrics);
    firstFrame.push(m.firstFrameAt - m.answerClickAt);
    phases.offer.push(m.offerAt - m.answerClickAt);
    phases.answer.push(m.answerSentAt - m.offerAt);
    phases.connected.push(m.connectedAt - m.answerSentAt);
    phases.frame.push(m.firstFrameAt - m.connectedAt);
    await waitForStats(page, (s) => s.video?.framesDecoded > 30 && s.audio?.totalSamplesReceived > 0);
    inCallRss.push(rssKiB(system.doorProc.pid).rss);

    await page.getByRole("button", { name: "Hang up", exact: true }).click();
    await waitForState(page, "idle");
    await system.waitForStatus((s) => s.state === "idle" && s.calls_ended === i + 1, "idle after the call");
    process.stderr.write(
      `call ${i + 1}/${calls}: ring ${ring.at(-1).toFixed(1)} ms, first frame ${firstFrame.at(-1).toFixed(1)} ms, ` +
        `RSS in call ${(inCallRss.at(-1) / 1024).toFixed(1)} MiB, idle after ${(rssKiB(system.doorProc.pid).rss / 1024).toFixed(1)} MiB\n`,
    );
  }
  const after = rssKiB(system.doorProc.pid);
  const mib = (kib) => (kib / 1024).toFixed(1);
  const fmt = (xs) => `p50 ${percentile(xs, 50).toFixed(1)} ms, p95 ${percentile(xs, 95).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
  console.log(`calls: ${calls} (loopback, ${process.env.DOORBELL_PROFILE} build, 640x480@30 test sources)`);
  console.log(`button press -> phone ringing: ${fmt(ring)}   (target p95 <= 30 ms)`);
  console.log(`Answer -> first decoded frame: ${fmt(firstFrame)}   (target p50 <= 120 ms)`);
  const p50 = (xs) => percentile(xs, 50).toFixed(1);
  console.log(
    `  p50 breakdown: Answer -> offer at phone ${p50(phases.offer)} ms, -> answer sent ${p50(phases.answer)} ms, ` +
      `-> connected ${p50(phases.connected)} ms, -> first frame ${p50(phases.frame)} ms`,
  );
  console.log(
    `doorbelld RSS: idle ${mib(idleBefore)} MiB before, in call p50 ${mib(percentile(inCallRss, 50))} MiB, ` +
      `idle ${mib(after.rss)} MiB after, peak ${mib(after.peak)} MiB`,
  );
} finally {
  await phone.close();
  await system.stop();
}
