// Firefox ESR as the phone (docs: README "Phones and browsers"). Debian's Firefox has no
// H.264 here, so it answers the door's offer with VP8 (the door encodes VP8 only for it), or,
// with `media.vp8 = false`, with the video line rejected: the call must still carry audio both
// ways and Unlock. Driven by puppeteer-core over WebDriver BiDi (lib/firefox.mjs).
//
// Needs the debug binaries: `cargo build --workspace --bins` (scripts/test.sh does it).

import { test, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { clickWhenEnabled, launchFirefoxPhone, pairFirefox, waitForFirefoxState } from "./lib/firefox.mjs";
import { callStats, waitForStats } from "./lib/stats.mjs";
import { startSystem } from "./lib/system.mjs";

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A door and one paired Firefox phone on its idle screen. */
async function firefoxWithDoor(doorEnv) {
  // A short strike pulse, so that call after call each Unlock pulses anew.
  const system = await startSystem({ doorEnv: { DOORBELL__GPIO__RELAY_PULSE_MS: "200", ...doorEnv } });
  cleanups.push(async () => {
    const exit = await system.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, system.logs());
  });
  const phone = await launchFirefoxPhone({ name: "firefox" });
  cleanups.push(() => phone.close());
  await phone.page.evaluateOnNewDocument(keepDescriptions);
  await phone.page.evaluateOnNewDocument(namePreviewPc);
  await pairFirefox(phone.page, await system.pairingUrl());
  return { system, phone };
}

/** The video line of the phone's last answer ("m=video 0 ..." when rejected). */
async function answeredVideoLine(page) {
  return page.evaluate(() => window.__doorbellSdp?.local?.match(/^m=video.*$/m)?.[0] ?? null);
}

/** Waits until the ringing screen on a Firefox page shows the door's video (its ring preview). */
function firefoxPreviewLive(page) {
  const live = () => document.getElementById("screen-ringing")?.dataset.preview === "live";
  return page.waitForFunction(live, { timeout: 15_000, polling: 50 });
}

/** Names a live view's connection (the app's Preview) for lib/stats.mjs. */
function namePreviewPc() {
  Object.defineProperty(window, "doorbellPreviewPc", { get: () => window.doorbell?.previewPc ?? null });
}

/** The last descriptions the phone applied (kept by `keepDescriptions`), for failure messages. */
async function descriptions(page) {
  return page.evaluate(() => `offer:\n${window.__doorbellSdp?.remote}\nanswer:\n${window.__doorbellSdp?.local}`);
}

/** Keeps a copy of the descriptions each peer connection applies, also after it closed. */
function keepDescriptions() {
  const kept = (window.__doorbellSdp = {});
  const proto = RTCPeerConnection.prototype;
  for (const [method, side] of [["setLocalDescription", "local"], ["setRemoteDescription", "remote"]]) {
    const original = proto[method];
    proto[method] = async function (...args) {
      const result = await original.apply(this, args);
      kept[side] = this[`${side}Description`]?.sdp;
      return result;
    };
  }
}

/**
 * Ring, answer on the Firefox phone, wait until audio flows both ways (the door decodes the
 * phone's microphone, the phone receives the door's), press Unlock, hang up. `video(stats,
 * strict)` checks the phone's stats once audio flows. With `inPreview` the phone answers once
 * its ring preview shows the door's video (Answer then continues in the preview's session);
 * otherwise at once (the door's call session).
 */
async function callWithUnlock({ system, phone }, video, { inPreview = false } = {}) {
  const { page } = phone;
  const before = await system.status();
  assert.equal(await system.press(), "ok");
  await waitForFirefoxState(page, "ringing");
  if (inPreview) {
    await firefoxPreviewLive(page).catch(async (e) => {
        throw new Error(`the ring preview never showed video: ${e.message}\n${await descriptions(page)}\n${system.logs()}`);
      });
    const ringing = await system.status();
    assert.equal(ringing.current_call.video_encoders, 2, "H.264 and, for this phone, VP8");
  }
  await page.click("#btn-answer");
  await waitForFirefoxState(page, "in-call", 20_000).catch(async (e) => {
    throw new Error(`${e.message}\n${await descriptions(page)}\n${system.logs()}`);
  });
  const stats = await waitForStats(page, (s) => s.audio?.packetsReceived > 25 && video(s, false), {
    timeout: 20_000,
  }).catch(async (e) => {
    throw new Error(`${e.message}\nanswer: ${await answeredVideoLine(page)}\n${system.logs()}`);
  });
  video(stats, true);
  assert.equal(stats.audio.mimeType?.toLowerCase(), "audio/opus");
  await system.waitForStatus(
    (s) => s.state === "in_call" && s.current_call?.audio_buffers_received > 25,
    "in_call with the phone's audio decoded at the door",
  );

  await clickWhenEnabled(page, "#btn-unlock");
  await system.waitForStatus(
    (s) => s.unlocks === before.unlocks + 1 && s.relay_pulses === before.relay_pulses + 1,
    "one unlock and one relay pulse",
  );
  await system.waitForStatus((s) => s.relay === "off", "the strike released after its pulse");
  await page.click("#btn-hangup");
  await waitForFirefoxState(page, "idle");
  const done = await system.waitForStatus(
    (s) => s.state === "idle" && s.calls_ended === before.calls_ended + 1,
    "idle after the call",
  );
  assert.equal(done.last_call.outcome, "completed");
  assert.ok(done.last_call.stats.audio_buffers_received > 25, JSON.stringify(done.last_call));
  return { stats, done };
}

test("Firefox (no H.264) answers: VP8 video, audio both ways, Unlock; at once and in its ring preview", async () => {
  const door = await firefoxWithDoor({});
  const vp8 = (s, strict) => {
    if (!strict) return s.video?.framesDecoded > 30;
    assert.equal(s.video.mimeType, "video/VP8");
    assert.equal(s.video.frameWidth, 640, JSON.stringify(s.video));
    return true;
  };
  for (const inPreview of [false, true]) {
    const { done } = await callWithUnlock(door, vp8, { inPreview });
    assert.ok(done.last_call.stats.vp8_frames_sent > 30, JSON.stringify(done.last_call));
  }

  // A live view is a preview session too: VP8 on the viewer screen.
  const { system, phone } = door;
  await phone.page.click(`button[data-view="${system.door.door_id}"]`);
  await waitForFirefoxState(phone.page, "viewing");
  const view = await waitForStats(phone.page, (s) => s.video?.framesDecoded > 30, {
    global: "doorbellPreviewPc",
    timeout: 20_000,
  });
  assert.equal(view.video.mimeType, "video/VP8");
  const viewing = await system.waitForStatus((s) => s.viewers === 1, "one viewer");
  assert.ok(viewing.current_call.vp8_frames_sent > 30, JSON.stringify(viewing.current_call));
  await phone.page.click("#btn-view-stop");
  await waitForFirefoxState(phone.page, "idle");
  await system.waitForStatus((s) => s.viewers === 0 && s.state === "idle", "the view ended");
  assert.deepEqual(phone.consoleErrors, []);
});

test("media.vp8 = false: Firefox rejects the video line and the call still has audio and Unlock", async () => {
  const door = await firefoxWithDoor({ DOORBELL__MEDIA__VP8: "false" });
  const { done } = await callWithUnlock(door, (s) => (s.video?.framesDecoded ?? 0) === 0);
  assert.match(String(await answeredVideoLine(door.phone.page)), /^m=video 0 /, "the phone rejected the video");
  assert.equal(done.last_call.stats.vp8_frames_sent ?? 0, 0);
});

test("Firefox and Chromium ring together; Chromium answers: the VP8 encoder stops with Firefox's preview", async () => {
  const { system, phone: firefox } = await firefoxWithDoor({});
  const chromium = await launchPhone({ name: "chromium" });
  cleanups.push(() => chromium.close());
  await openPairingLink(chromium.page, await system.pairingUrl());
  await waitForState(chromium.page, "idle");

  assert.equal(await system.press(), "ok");
  await Promise.all([waitForFirefoxState(firefox.page, "ringing"), waitForState(chromium.page, "ringing")]);
  // Both previews live: Firefox's VP8 from the second encoder, Chromium's H.264 from the first.
  await firefoxPreviewLive(firefox.page);
  await chromium.page.waitForFunction(() => document.getElementById("screen-ringing")?.dataset.preview === "live", null, {
    timeout: 15_000,
  });
  const ringing = await system.status();
  assert.equal(ringing.current_call.video_encoders, 2, JSON.stringify(ringing.current_call));
  assert.ok(ringing.current_call.vp8_frames_sent > 0, JSON.stringify(ringing.current_call));

  await chromium.page.click("#btn-answer");
  await waitForFirefoxState(firefox.page, "answered-elsewhere");
  await waitForState(chromium.page, "in-call", 20_000);
  const first = await waitForStats(chromium.page, (s) => s.video?.framesDecoded > 10 && s.audio?.totalSamplesReceived > 0);
  assert.equal(first.video.mimeType, "video/H264");
  // Firefox's session is gone: no VP8 is encoded while Chromium alone watches (a frame or two
  // may still have been on their way when its preview closed).
  const stopped = (await system.waitForStatus((s) => s.state === "in_call", "in_call")).current_call.vp8_frames_sent;
  const later = await waitForStats(chromium.page, (s) => s.video.framesDecoded > first.video.framesDecoded + 30);
  assert.ok(later.video.framesDecoded > first.video.framesDecoded + 30);
  const after = (await system.status()).current_call;
  assert.ok(after.vp8_frames_sent <= stopped + 2, `VP8 still encoded: ${stopped} -> ${after.vp8_frames_sent}`);

  await chromium.page.click("#btn-hangup");
  await waitForState(chromium.page, "idle");
  await system.waitForStatus((s) => s.state === "idle", "idle after the call");
  assert.deepEqual(chromium.consoleErrors, []);
  assert.equal((await callStats(chromium.page)), null, "the phone closed its peer connection");
});
