// Benchmark (not a test): live preview and the instant answer, through a real doorbell-hub, a
// real doorbelld with test sources and headless Chromium phones speaking the preview messages
// (lib/preview_client.mjs), all on loopback. Prints:
//   press -> first preview frame (requestVideoFrameCallback on each ringing phone), p50/p95
//   Answer -> audio both ways (the phone plays door audio and the door decodes phone audio), p50/p95
//   the door's CPU while 1, 2 and 4 phones preview (5 s each) and its RSS with 4
//
//   cargo build --release --workspace --bins && node tests/e2e/bench_preview.mjs [N rings]
//
// Uses target/release binaries unless DOORBELL_PROFILE says otherwise. Targets (issue 14):
// first preview frame p50 <= 400 ms; Answer -> audio p50 <= 50 ms; each extra viewer
// <= 15 % of the first viewer's CPU.

import { performance } from "node:perf_hooks";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { cpuTicks, memory, rssMiB, TICKS_PER_SECOND } from "./lib/proc.mjs";
import { percentile } from "./lib/stats.mjs";
import { startPreviewClient, waitForPreview } from "./lib/preview_client.mjs";

process.env.DOORBELL_PROFILE ||= "release";
const { startSystem } = await import("./lib/system.mjs");

const rings = Number(process.argv[2] ?? 20);
if (!Number.isInteger(rings) || rings < 1) {
  console.error("usage: node tests/e2e/bench_preview.mjs [N rings, default 20]");
  process.exit(2);
}
const CPU_WINDOW_MS = 5000;

const now = () => performance.timeOrigin + performance.now();
const fmt = (values) => `p50 ${percentile(values, 50).toFixed(1)} ms, p95 ${percentile(values, 95).toFixed(1)} ms (n=${values.length})`;

const system = await startSystem({ doorEnv: { RUST_LOG: "warn" } });
const phones = [];
try {
  for (let i = 0; i < 4; i++) {
    const phone = await launchPhone({ name: `bench-${i}` });
    phones.push(phone);
    await openPairingLink(phone.page, await system.pairingUrl());
    await waitForState(phone.page, "idle");
    await startPreviewClient(phone.page);
  }
  const pid = system.doorProc.pid;
  console.log(`door idle before any call: ${memory(pid)}`);
  const firstFrame = [];
  const talk = [];
  const phoneHears = [];
  const doorHears = [];
  for (let i = 0; i < rings; i++) {
    const pressedAt = now();
    if ((await system.press()) !== "ok") throw new Error("press refused");
    for (const { page } of phones) {
      await page.waitForFunction(() => window.previewClient.firstFrameAt != null, null, { timeout: 20_000, polling: 10 });
      firstFrame.push((await page.evaluate(() => window.previewClient.firstFrameAt)) - pressedAt);
    }
    const { page } = phones[i % phones.length];
    const answeredAt = now();
    await page.evaluate(() => window.previewClient.answer());
    // The phone plays door audio: polled in the page every 5 ms; the door decodes phone
    // audio: `doorbelld status` polled every 5 ms (its control socket).
    const heard = page.evaluate(async () => {
      for (;;) {
        const s = await window.previewClient.stats();
        if (s?.audioSamplesReceived > 0) return performance.timeOrigin + performance.now();
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    let doorHeardAt;
    for (;;) {
      const s = await system.status();
      if (s.current_call?.audio_buffers_received > 0) {
        doorHeardAt = now();
        break;
      }
      if (now() - answeredAt > 20_000) throw new Error(`the door never heard the phone: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const phoneHeardAt = await heard;
    phoneHears.push(phoneHeardAt - answeredAt);
    doorHears.push(doorHeardAt - answeredAt);
    talk.push(Math.max(phoneHeardAt, doorHeardAt) - answeredAt);
    if ((await system.hangup()) !== "ok") throw new Error("hangup refused");
    await system.waitForStatus((s) => s.state === "idle", "idle after the call");
  }
  console.log(`door idle after ${rings} calls: ${memory(pid)}`);
  console.log(`press -> first preview frame (each of ${phones.length} phones): ${fmt(firstFrame)}`);
  console.log(`Answer -> audio both ways: ${fmt(talk)}`);
  console.log(`  of which: the phone plays door audio ${fmt(phoneHears)}; the door decodes phone audio ${fmt(doorHears)}`);

  // CPU with 1, 2 and 4 viewers: the other phones' clients stop asking for previews.
  const cpu = {};
  for (const viewers of [1, 2, 4]) {
    for (const [i, { page }] of phones.entries()) {
      await page.evaluate((on) => {
        window.previewClient.ws.onmessage_orig ??= window.previewClient.ws.onmessage;
        window.previewClient.ws.onmessage = on
          ? window.previewClient.ws.onmessage_orig
          : (ev) => {
              if (JSON.parse(ev.data).type !== "ring") window.previewClient.ws.onmessage_orig(ev);
            };
      }, i < viewers);
    }
    if ((await system.press()) !== "ok") throw new Error("press refused");
    for (const { page } of phones.slice(0, viewers)) {
      await waitForPreview(page, (s) => s?.framesDecoded > 30, "preview frames", 20_000);
    }
    const before = cpuTicks(pid);
    await new Promise((r) => setTimeout(r, CPU_WINDOW_MS));
    cpu[viewers] = ((cpuTicks(pid) - before) / TICKS_PER_SECOND / (CPU_WINDOW_MS / 1000)) * 100;
    const rss = rssMiB(pid);
    console.log(`${viewers} viewer(s): door CPU ${cpu[viewers].toFixed(1)} % of one core, RSS ${rss.toFixed(1)} MiB`);
    if ((await system.hangup()) !== "ok") throw new Error("hangup refused");
    await system.waitForStatus((s) => s.state === "idle", "idle after the ring");
  }
  const perExtra = (n) => ((cpu[n] - cpu[1]) / (n - 1) / cpu[1]) * 100;
  console.log(`each extra viewer: ${perExtra(2).toFixed(1)} % (2 viewers), ${perExtra(4).toFixed(1)} % (4 viewers) of the first viewer's CPU`);
} finally {
  for (const phone of phones) await phone.close();
  await system.stop();
}
