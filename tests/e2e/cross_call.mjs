// One end-to-end call with the cross-built aarch64 doorbelld running under qemu-aarch64,
// against the host's hub and headless Chromium: media must flow both ways.
//
// Run by scripts/test-aarch64.sh (not by `node --test tests/e2e/`, hence no .test. in the name):
//   DOORBELLD_BIN=target/aarch64-unknown-linux-gnu/release/doorbelld DOORBELLD_RUNNER=qemu-aarch64 \
//   DOORBELL_HUB_BIN=target/debug/doorbell-hub node --test tests/e2e/cross_call.mjs
//
// Emulation is ~13x slower than native, so the door sends a small picture with openh264 (the
// faster encoder under qemu) and every wait is generous.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { waitForStats } from "./lib/stats.mjs";
import { startSystem } from "./lib/system.mjs";

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function rssMiB(pid) {
  const kib = Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m)[1]);
  return kib / 1024;
}

test("aarch64 doorbelld under qemu: press, answer, video and audio both ways, hang up", { timeout: 600_000 }, async () => {
  const system = await startSystem({
    doorEnv: {
      DOORBELL__MEDIA__ENCODER: "openh264enc",
      DOORBELL__MEDIA__WIDTH: "320",
      DOORBELL__MEDIA__HEIGHT: "240",
      DOORBELL__MEDIA__FRAMERATE: "15",
      DOORBELL__CALL__CONNECT_TIMEOUT_SECS: "60",
      GST_REGISTRY_FORK: "no",
    },
  });
  cleanups.push(() => system.stop());
  const phone = await launchPhone({ name: "phone" });
  cleanups.push(() => phone.close());
  const { page } = phone;

  // The door process is qemu running the arm64 binary.
  const exe = readFileSync(`/proc/${system.doorProc.pid}/cmdline`, "utf8").split("\0");
  assert.match(exe.join(" "), /qemu-aarch64 .*aarch64-unknown-linux-gnu/);
  console.log(`  aarch64 doorbelld idle RSS under qemu: ${rssMiB(system.doorProc.pid).toFixed(1)} MiB (includes qemu)`);

  await openPairingLink(page, await system.pairingUrl());
  await waitForState(page, "idle");
  assert.equal(await system.pressCli(), "ok");
  await waitForState(page, "ringing", 60_000);
  await page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(page, "in-call", 120_000);
  const stats = await waitForStats(page, (s) => s.video?.framesDecoded > 10 && s.audio?.totalSamplesReceived > 0, {
    timeout: 120_000,
  });
  assert.equal(stats.video.mimeType, "video/H264");
  // The phone's microphone is decoded at the door.
  await system.waitForStatus((s) => s.current_call?.audio_buffers_received > 0, "the phone's audio at the door", 120_000);
  console.log(`  in call: ${stats.video.framesDecoded} frames decoded on the phone, door RSS ${rssMiB(system.doorProc.pid).toFixed(1)} MiB`);

  await page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(page, "idle");
});
