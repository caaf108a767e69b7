// Quick replies end to end: Chromium (fake microphone) records a prepared reply on the idle
// screen and one on the spot while the door rings; both reach the hub as Opus in WebM, and the
// door fetches each and plays it on its speaker (decoded samples counted by `doorbelld status`).
//
// Needs the debug binaries: `cargo build --workspace --bins` (scripts/test.sh does it).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";

let system;
let phone;

before(async () => {
  // No voice message after the ring: this test is about replies only.
  system = await startSystem({ prepareDoor: () => ({ env: { DOORBELL__CALL__VOICE_MESSAGE_SECS: "0" } }) });
  phone = await launchPhone({ name: "quick-reply" });
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
});

after(async () => {
  await phone?.close();
  const exit = await system?.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, system?.logs());
});

/** Waits until the element's text contains `text`. */
async function waitForText(page, selector, text, what) {
  await page
    .waitForFunction(([sel, t]) => document.querySelector(sel)?.textContent?.includes(t), [selector, text], { timeout: 15_000 })
    .catch(async (e) => {
      const now = await page.textContent(selector).catch(() => "?");
      throw new Error(`${what}: ${e.message}; text is ${JSON.stringify(now)}\n${system.logs()}`);
    });
}

test("a prepared reply and one recorded on the spot are played at the door", async () => {
  const { page } = phone;
  // Recorded once on the idle screen.
  await page.fill("#prepare-label", "Coming");
  await page.click("#btn-prepare-reply");
  await waitForText(page, "#prepare-status", "Recording", "recording starts");
  await page.waitForTimeout(1200); // the clip's length: the fake microphone's beeps for ~1 s
  await page.click("#btn-prepare-reply");
  await waitForText(page, "#prepare-status", 'Saved "Coming"', "the prepared reply is saved");

  assert.equal(await system.press(), "ok");
  await waitForState(page, "ringing");
  await page.click("#quick-replies .quick-reply >> text=Coming");
  await waitForText(page, "#quick-replies .quick-status", 'Sent "Coming"', "the reply is sent");
  const first = await system.waitForStatus((s) => s.quick_replies_played >= 1, "the prepared reply played");
  assert.ok(first.quick_reply_samples > 0, `decoded samples at the door: ${first.quick_reply_samples}`);

  // On the spot, still ringing.
  await page.click("#quick-replies .quick-record");
  await waitForText(page, "#quick-replies .quick-status", "Recording", "recording starts");
  await page.waitForTimeout(1200); // the clip's length
  await page.click("#quick-replies .quick-record");
  await waitForText(page, "#quick-replies .quick-status", "Sent", "the recorded reply is sent");
  const second = await system.waitForStatus((s) => s.quick_replies_played >= 2, "the recorded reply played");
  assert.ok(second.quick_reply_samples > first.quick_reply_samples, "more samples played");
  assert.ok(second.quick_reply_samples >= 48_000 * 0.5, `about a second or more: ${second.quick_reply_samples}`);

  await page.click("#btn-decline");
  await waitForState(page, ["idle", "declined"]);
});
