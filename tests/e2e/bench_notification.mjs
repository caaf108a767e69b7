// Benchmark (not a test): a notification tap with the app closed -> first decoded video frame.
// A real doorbell-hub and doorbelld with test sources, headless Chromium, loopback. Each round:
// the door rings with no app open; the clock starts when the page opens at the address the
// service worker's click handler opens (`/#answer=<call_id>`, a cold page: no document, the
// worker's cache warm as on an installed phone); it stops at the page's first decoded frame.
// Prints p50/p95.
//
//   cargo build --release --workspace --bins && node tests/e2e/bench_notification.mjs [N]
//
// Target (issue 9, loopback): p50 <= 500 ms.

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { percentile } from "./lib/stats.mjs";

process.env.DOORBELL_PROFILE ||= "release";
const { startSystem } = await import("./lib/system.mjs");

const rounds = Number(process.argv[2] ?? 10);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error("usage: node tests/e2e/bench_notification.mjs [N rounds, default 10]");
  process.exit(2);
}

const system = await startSystem({ doorEnv: { RUST_LOG: "warn" } });
const phone = await launchPhone({ name: "bench" });
const times = [];
try {
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
  await phone.page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15_000 });
  for (let i = 0; i < rounds; i++) {
    await phone.page.goto("about:blank");
    await system.waitForStatus((s) => s.state === "idle", "the door idle");
    if ((await system.press()) !== "ok") throw new Error("press failed");
    const { call_id: callId } = await system.waitForStatus((s) => s.state === "ringing" && s.call_id, "ringing");
    const page = await phone.browserContext.newPage();
    const openedAt = Date.now();
    await page.goto(`${system.baseUrl}/#answer=${encodeURIComponent(callId)}`);
    await page.waitForFunction(() => window.doorbell?.metrics.firstFrameAt != null, null, { timeout: 20_000 });
    const frameAt = await page.evaluate(() => performance.timeOrigin + window.doorbell.metrics.firstFrameAt);
    times.push(frameAt - openedAt);
    await page.getByRole("button", { name: "Hang up", exact: true }).click();
    await waitForState(page, "idle");
    await page.close();
  }
  const fmt = (v) => `${v.toFixed(1)} ms`;
  console.log(`notification tap (cold page) -> first frame, ${rounds} rounds: p50 ${fmt(percentile(times, 50))}, p95 ${fmt(percentile(times, 95))}`);
} finally {
  await phone.close();
  await system.stop();
}
