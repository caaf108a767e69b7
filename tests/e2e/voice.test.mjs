// Quiet hours and voice messages end to end: a real `doorbell-hub`, a real `doorbelld` (test
// microphone, speaker discarded but counted), Chromium as the phone. The phone turns on Do
// not disturb in its settings panel; a press then rings nobody: the hub ends the ring as
// `quiet`, the door plays its prompt (decoded samples counted by `doorbelld status`), records
// the visitor and uploads the message; the phone finds it in its history and plays it (the
// <audio> element has a duration, and the file decodes to samples).
//
// Needs the debug binaries: `cargo build --workspace --bins` (scripts/test.sh does it).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";

/** The visitor speaks for at most this long in this test (call.voice_message_secs). */
const VOICE_SECS = 2;

let system;
let phone;

before(async () => {
  system = await startSystem({
    prepareDoor: () => ({ env: { DOORBELL__CALL__VOICE_MESSAGE_SECS: String(VOICE_SECS) } }),
  });
  phone = await launchPhone({ name: "voice" });
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
});

after(async () => {
  await phone?.close();
  const exit = await system?.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, system?.logs());
});

test("with every phone quiet the door prompts, records and uploads; the phone plays the message", async () => {
  const { page } = phone;
  // Do not disturb for an hour, from the app's settings panel.
  await page.waitForFunction(() => document.getElementById("quiet-text")?.textContent?.includes("rings for every"), null, {
    timeout: 10_000,
  });
  await page.selectOption("#quiet-dnd", "1h");
  await page.click("#quiet-panel button[type=submit]");
  await page.waitForFunction(() => document.getElementById("quiet-text")?.textContent?.includes("Quiet now"), null, {
    timeout: 10_000,
  });
  // Record every screen the page shows from now on: it must never ring.
  await page.evaluate(() => {
    /** @type {any} */ (window).seenStates = [];
    new MutationObserver(() => /** @type {any} */ (window).seenStates.push(document.body.dataset.state)).observe(
      document.body,
      { attributes: true, attributeFilter: ["data-state"] },
    );
  });

  assert.equal(await system.press(), "ok");
  const status = await system.waitForStatus(
    (s) => s.voice_messages_uploaded >= 1,
    "a voice message uploaded",
    20_000 + VOICE_SECS * 1000,
  );
  assert.ok(status.voice_prompt_samples > 48_000, `the prompt reached the speaker: ${status.voice_prompt_samples} samples`);
  assert.equal(status.voice_messages_recorded, 1);
  assert.equal(status.last_call?.outcome, "missed");
  const seen = await page.evaluate(() => /** @type {any} */ (window).seenStates);
  assert.ok(!seen.includes("ringing"), `the quiet phone rang: ${seen.join(",")}`);

  await page.click("#btn-history");
  await waitForState(page, "history");
  await page.waitForSelector("audio.history-voice", { timeout: 10_000 });
  const outcome = await page.textContent(".history-outcome");
  assert.match(outcome ?? "", /quiet hours/);
  const played = await page.evaluate(async () => {
    const audio = /** @type {HTMLAudioElement} */ (document.querySelector("audio.history-voice"));
    if (!(audio.duration > 0)) {
      await new Promise((resolve, reject) => {
        audio.addEventListener("loadedmetadata", resolve, { once: true });
        audio.addEventListener("error", () => reject(new Error(`audio error ${audio.error?.code}`)), { once: true });
        setTimeout(() => reject(new Error("no metadata within 10 s")), 10_000);
      });
    }
    await audio.play();
    await new Promise((resolve, reject) => {
      const started = performance.now();
      const check = () =>
        audio.currentTime > 0 ? resolve(null) : performance.now() - started > 10_000 ? reject(new Error("never played")) : setTimeout(check, 20);
      check();
    });
    const bytes = await (await fetch(audio.currentSrc)).arrayBuffer();
    const decoded = await new OfflineAudioContext(1, 48_000, 48_000).decodeAudioData(bytes);
    return { duration: audio.duration, samples: decoded.length, rate: decoded.sampleRate };
  });
  assert.ok(played.duration > 0, `duration ${played.duration}`);
  assert.ok(played.samples > 0, `decoded ${played.samples} samples`);
  assert.ok(played.duration <= VOICE_SECS + 1, `at most call.voice_message_secs: ${played.duration} s`);
});

test("a message left while the hub is down is kept on the door and uploaded once it is back", async () => {
  const before = await system.status();
  await system.killHub("SIGKILL");
  await system.waitForStatus((s) => !s.hub_connected, "the door noticing the hub is gone", 30_000);
  // The door chimes, prompts and records; the upload cannot reach the hub, so it is kept.
  assert.equal(await system.press(), "ok");
  const kept = await system.waitForStatus(
    (s) => s.voice_messages_recorded === before.voice_messages_recorded + 1,
    "the message recorded while the hub is down",
    20_000 + VOICE_SECS * 1000,
  );
  assert.equal(kept.voice_messages_uploaded, before.voice_messages_uploaded, "nothing uploaded yet");
  await system.restartHub();
  await system.waitForStatus(
    (s) => s.hub_connected && s.voice_messages_uploaded === before.voice_messages_uploaded + 1,
    "the kept message uploaded after the hub came back",
    40_000,
  );
  // The phone's history shows it with the missed ring.
  const { page } = phone;
  await page.goto(page.url().split("#")[0]);
  await waitForState(page, "idle", 30_000);
  await page.click("#btn-history");
  await waitForState(page, "history");
  await page.waitForFunction(() => document.querySelectorAll("audio.history-voice").length >= 2, null, { timeout: 15_000 });
});
