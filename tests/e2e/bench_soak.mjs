// Soak benchmark (not a test): N calls in a row through a real doorbell-hub, a real doorbelld
// with test sources and two headless Chromium phones speaking the preview messages
// (lib/preview_client.mjs), on loopback. Each call: press -> both phones preview -> one
// answers in its session (they take turns) -> audio both ways -> hang up -> idle. Every 50
// calls (and after the first) it prints the idle door's RSS (anonymous and file-backed),
// threads and open file descriptors, then the change from the first sample after warm-up
// (call 50) to the last: flat means no leak.
//
//   cargo build --release --workspace --bins && node tests/e2e/bench_soak.mjs [N calls, default 500]
//
// Uses target/release binaries unless DOORBELL_PROFILE says otherwise. Idle samples are taken
// once no stopped call is still waiting for ICE gathering to end (thread `ice-gather-wait`,
// src/media/gathering.rs), so they measure what stays, not what is on its way out.

import { performance } from "node:perf_hooks";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { fdCount, memMiB, threadCount, threadNames, threadsNamed } from "./lib/proc.mjs";
import { startPreviewClient, waitForPreview } from "./lib/preview_client.mjs";

process.env.DOORBELL_PROFILE ||= "release";
const { startSystem } = await import("./lib/system.mjs");

const calls = Number(process.argv[2] ?? 500);
if (!Number.isInteger(calls) || calls < 1) {
  console.error("usage: node tests/e2e/bench_soak.mjs [N calls, default 500]");
  process.exit(2);
}
const SAMPLE_EVERY = 50;
const WARM_UP = 50;
/** libnice gives up on a silent STUN/TURN server well within this (src/media/gathering.rs). */
const GATHERING_DRAIN_MS = 70_000;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function idleSample(pid, call) {
  const deadline = now() + GATHERING_DRAIN_MS;
  while (threadsNamed(pid, "ice-gather-wait") > 0) {
    if (now() > deadline) throw new Error("a stopped call still waits for ICE gathering after 70 s");
    await sleep(50);
  }
  return {
    call,
    rss: memMiB(pid, "VmRSS"),
    anon: memMiB(pid, "RssAnon"),
    file: memMiB(pid, "RssFile"),
    threads: threadCount(pid),
    fds: fdCount(pid),
  };
}
const show = (s) =>
  `after ${String(s.call).padStart(4)} calls: RSS ${s.rss.toFixed(1)} MiB (anon ${s.anon.toFixed(1)}, file ${s.file.toFixed(1)}), ` +
  `${s.threads} threads, ${s.fds} fds`;

const system = await startSystem({ doorEnv: { RUST_LOG: "warn" } });
const phones = [];
const samples = [];
const started = now();
try {
  for (let i = 0; i < 2; i++) {
    const phone = await launchPhone({ name: `soak-${i}` });
    phones.push(phone);
    await openPairingLink(phone.page, await system.pairingUrl());
    await waitForState(phone.page, "idle");
    await startPreviewClient(phone.page);
  }
  const pid = system.doorProc.pid;
  samples.push(await idleSample(pid, 0));
  console.log(show(samples[0]));
  for (let call = 1; call <= calls; call++) {
    if ((await system.press()) !== "ok") throw new Error(`press ${call} refused`);
    for (const { page } of phones) {
      await waitForPreview(page, (s) => s?.framesDecoded > 0, `call ${call}: preview frames`);
    }
    const { page } = phones[call % phones.length];
    await page.evaluate(() => window.previewClient.answer());
    await waitForPreview(page, (s) => s?.audioSamplesReceived > 0, `call ${call}: the phone hears the door`);
    await system.waitForStatus((s) => s.current_call?.audio_buffers_received > 0, `call ${call}: the door hears the phone`);
    if ((await system.hangup()) !== "ok") throw new Error(`hangup ${call} refused`);
    await system.waitForStatus((s) => s.state === "idle", `idle after call ${call}`);
    if (call === 1 || call % SAMPLE_EVERY === 0 || call === calls) {
      const sample = await idleSample(pid, call);
      samples.push(sample);
      console.log(`${show(sample)}  (${((now() - started) / 1000).toFixed(0)} s)`);
    }
  }
  const base = samples.find((s) => s.call >= WARM_UP) ?? samples.at(-1);
  const last = samples.at(-1);
  console.log(
    `from call ${base.call} to ${last.call}: RSS ${(last.rss - base.rss).toFixed(1)} MiB ` +
      `(anon ${(last.anon - base.anon).toFixed(1)}), threads ${last.threads - base.threads}, fds ${last.fds - base.fds}; ` +
      `idle before the first call: RSS ${samples[0].rss.toFixed(1)} MiB`,
  );
  const names = [...threadNames(pid)].map(([name, n]) => `${name} ×${n}`).join(", ");
  console.log(`the idle door's threads: ${names}`);
} finally {
  for (const phone of phones) await phone.close();
  await system.stop();
}
