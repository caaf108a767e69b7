// End to end through the real phone app (web/app.js, not tests/e2e/lib/preview_client.mjs):
// a real hub, a real doorbelld with test sources and two headless Chromium phones. Both
// ringing screens show the door's live video (decoded frames, videoWidth > 0) without asking
// for the microphone; one taps Answer and the call runs in its preview session (audio both ways,
// the same candidate pair, Unlock over the session's data channel); the other shows
// "Answered on another phone". A phone whose preview fails still answers, the old way.
//
// Needs the debug binaries: `cargo build --workspace --bins`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { callStats, waitForStats } from "./lib/stats.mjs";
import { startSystem } from "./lib/system.mjs";

let system;
const phones = [];

before(async () => {
  system = await startSystem();
});

after(async () => {
  for (const phone of phones) await phone.close();
  const exit = await system?.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, system?.logs());
});

// Counts microphone requests (the app must not ask before Answer) and names the preview's
// connection for lib/stats.mjs (`global`).
function instrument() {
  Object.defineProperty(window, "doorbellPreviewPc", { get: () => window.doorbell?.previewPc ?? null });
  window.micRequests = 0;
  const media = navigator.mediaDevices;
  if (!media) return;
  const original = media.getUserMedia.bind(media);
  media.getUserMedia = (constraints) => {
    window.micRequests += 1;
    return original(constraints);
  };
}

async function pairedPhone(name) {
  const phone = await launchPhone({ name, initScript: instrument });
  phones.push(phone);
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
  return phone;
}

/** The ringing screen's preview: the app's state, the <video>, and the preview connection's stats. */
function ringView(page) {
  return page.evaluate(async () => {
    const video = /** @type {HTMLVideoElement} */ (document.getElementById("ring-video"));
    const shown = getComputedStyle(video).opacity === "1";
    return {
      screen: document.body.dataset.state,
      preview: window.doorbell.previewState,
      videoWidth: video.videoWidth,
      shown,
      bellHidden: document.getElementById("ring-bell").hidden,
      micRequests: window.micRequests,
    };
  });
}

async function until(fn, what, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last.ok) return last;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeout} ms; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("two ringing app pages show the door's live video; one answers in its session, the other is answered elsewhere", async () => {
  const a = await pairedPhone("a");
  const b = await pairedPhone("b");
  assert.equal(await system.press(), "ok");

  const pairs = {};
  for (const { page, name } of [a, b]) {
    await waitForState(page, "ringing");
    // Decoded preview frames, growing, on the ringing screen's video, the bell gone.
    const first = await until(async () => {
      const view = await ringView(page);
      const stats = await callStats(page, { global: "doorbellPreviewPc" }).catch(() => null);
      return { ok: view.preview === "live" && view.videoWidth > 0 && stats?.video?.framesDecoded > 10, view, stats };
    }, `phone ${name}: preview video with > 10 decoded frames`, 30_000);
    assert.equal(first.view.screen, "ringing");
    assert.equal(first.view.shown, true, "the live video shows behind the buttons");
    assert.equal(first.view.bellHidden, true, "no bell over the video");
    assert.equal(first.view.micRequests, 0, `phone ${name}: microphone requested before Answer`);
    assert.equal(first.stats.audio?.totalSamplesReceived ?? 0, 0, `phone ${name} heard the door before Answer`);
    const later = await waitForStats(page, (s) => s.video?.framesDecoded > first.stats.video.framesDecoded + 5, {
      global: "doorbellPreviewPc",
    });
    pairs[name] = (await page.evaluate(async () => {
      const stats = [...(await window.doorbell.previewPc.getStats()).values()];
      return stats.find((s) => s.type === "transport")?.selectedCandidatePairId ?? null;
    })) ?? assert.fail(`phone ${name}: no selected candidate pair while previewing`);
    assert.equal(later.connectionState, "connected");
  }
  const ringing = await system.status();
  assert.equal(ringing.state, "ringing");
  assert.equal(ringing.current_call.audio_rtp_sent, 0, "door audio left before Answer");
  assert.equal(ringing.current_call.audio_buffers_received, 0, "phone audio decoded at the door before Answer");
  assert.equal(ringing.current_call.video_encoders, 1, "one encoder for both previews");

  // Phone b taps Answer: the call is its preview session.
  const answeredAt = Date.now();
  await b.page.click("#btn-answer");
  await waitForState(b.page, "in-call");
  await system.waitForStatus(
    (s) => s.state === "in_call" && s.current_call?.audio_rtp_sent > 0 && s.current_call?.audio_buffers_received > 0,
    "in_call with audio both ways",
  );
  console.info(`Answer tap -> door status in_call with audio both ways (50 ms polling): ${Date.now() - answeredAt} ms`);
  const heard = await waitForStats(b.page, (s) => s.audio?.totalSamplesReceived > 0 && s.outboundAudio?.packetsSent > 0, {
    timeout: 20_000,
  });
  assert.equal(heard.connectionState, "connected");
  const pairAfter = await b.page.evaluate(async () => {
    const stats = [...(await window.doorbell.pc.getStats()).values()];
    return stats.find((s) => s.type === "transport")?.selectedCandidatePairId ?? null;
  });
  assert.equal(pairAfter, pairs.b, "no new ICE connection: the same candidate pair");
  assert.equal(await b.page.evaluate(() => window.micRequests), 1, "the microphone, once, at Answer");

  await waitForState(a.page, "answered-elsewhere");
  assert.equal(await a.page.textContent("#notice-title"), "Answered on another phone");
  assert.equal(await a.page.evaluate(() => window.micRequests), 0);
  assert.equal((await system.status()).current_call.video_encoders, 1);

  // Unlock over the session's data channel.
  await b.page.waitForSelector("#btn-unlock:not([disabled])", { timeout: 10_000 });
  await b.page.click("#btn-unlock");
  await system.waitForStatus((s) => s.unlocks === 1, "one unlock");

  // The phone hangs up: the door goes idle.
  await b.page.click("#btn-hangup");
  await system.waitForStatus((s) => s.state === "idle", "idle after the phone hung up");
  for (const { consoleErrors, name } of [a, b]) assert.deepEqual(consoleErrors, [], `phone ${name} console errors`);
});

// The preview's offer cannot be applied (here: the first remote description fails): the ring
// goes on with the snapshot, and Answer takes the plain path (`answer`, a new connection).
function breakFirstOffer() {
  let broken = false;
  const original = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (...args) {
    if (!broken) {
      broken = true;
      return Promise.reject(new DOMException("broken by the test", "OperationError"));
    }
    return original.apply(this, args);
  };
}

test("a preview that fails never blocks answering: Answer negotiates a new connection", async () => {
  const phone = await launchPhone({ name: "c", initScript: breakFirstOffer });
  phones.push(phone);
  const { page } = phone;
  await openPairingLink(page, await system.pairingUrl());
  await waitForState(page, "idle");
  assert.equal(await system.press(), "ok");
  await waitForState(page, "ringing");
  await until(async () => {
    const preview = await page.evaluate(() => window.doorbell.previewState);
    return { ok: preview === "failed", preview };
  }, "the preview marked failed");
  assert.equal(await page.evaluate(() => window.doorbell.previewPc), null, "the failed preview is closed");
  assert.equal(await page.evaluate(() => document.body.dataset.state), "ringing", "still ringing");

  await page.click("#btn-answer");
  await waitForState(page, "in-call", 20_000);
  const stats = await waitForStats(page, (s) => s.video?.framesDecoded > 10 && s.audio?.totalSamplesReceived > 0, {
    timeout: 20_000,
  });
  assert.equal(stats.connectionState, "connected");
  await system.waitForStatus(
    (s) => s.state === "in_call" && s.current_call?.audio_buffers_received > 0,
    "in_call with the phone's audio at the door",
  );
  await page.click("#btn-hangup");
  await system.waitForStatus((s) => s.state === "idle", "idle after the phone hung up");
});
