// Smoke test of the phone page on its own (no Rust needed): the web/ files are served by a
// fake hub (lib/fake_hub.mjs) with the real hub's CSP, and the test plays the hub's part on
// the WebSocket. A second Chromium acts as a fake door (plain RTCPeerConnection) for one
// loopback call, to exercise the page's offer/answer/ICE code and stats.
//
// Run: cd tests/e2e && npm install && node --test page_smoke.test.mjs
// Screenshots go to $DOORBELL_SCREENSHOTS (default: <tmp>/doorbell-screens).

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startFakeHub } from "./lib/fake_hub.mjs";
import { callStats, waitForStats } from "./lib/stats.mjs";

const SHOTS = process.env.DOORBELL_SCREENSHOTS || join(tmpdir(), "doorbell-screens");
const CALL = "c-smoke-1";

let hub;
before(async () => {
  await mkdir(SHOTS, { recursive: true });
  hub = await startFakeHub({
    pair: (body) =>
      body?.code === "good-code"
        ? { status: 200, json: { token: "good-token", phone_id: "p-test" } }
        : { status: 410, json: { error: "code used or expired" } },
    extraRoutes: { "/fake-door": "<!doctype html><title>fake door</title>" },
  });
});
after(async () => {
  await hub?.close();
});

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

// A phone paired through the real pairing flow and sitting on the idle screen.
async function pairedPhone(name) {
  const phone = await launchPhone({ name });
  await openPairingLink(phone.page, hub.url + "/#pair=good-code");
  await waitForState(phone.page, "idle");
  return phone;
}

test("without a token the page shows not-paired, with no console errors or CSP violations", async () => {
  const phone = await launchPhone({ name: "fresh" });
  try {
    const { page } = phone;
    const violations = [];
    await page.exposeFunction("__reportCsp", (v) => violations.push(v));
    await page.addInitScript(() =>
      document.addEventListener("securitypolicyviolation", (e) => window.__reportCsp(`${e.violatedDirective} ${e.blockedURI}`)),
    );
    const resp = await page.goto(hub.url + "/");
    assert.equal(resp.status(), 200);
    await waitForState(page, "not-paired");
    await page.getByRole("heading", { name: "Not paired" }).waitFor();
    assert.match(await page.textContent("#screen-not-paired"), /doorbelld pair/);
    assert.match(await page.textContent("#screen-not-paired"), /doorbelld --demo/);
    const api = await page.evaluate(() => ({
      state: window.doorbell.state,
      pc: window.doorbell.pc,
      metrics: window.doorbell.metrics,
      frozen: Object.isFrozen(window.doorbell),
    }));
    assert.deepEqual(api, { state: "not-paired", pc: null, metrics: {}, frozen: true });
    // Stylesheet applied (CSP allows 'self'): the ringing screen is hidden.
    assert.equal(await page.isVisible("#screen-ringing"), false);
    await shot(page, "not-paired");
    assert.deepEqual(violations, []);
    assert.deepEqual(phone.consoleErrors, []);
    assert.equal(hub.sockets.size, 0, "no WebSocket without a token");
  } finally {
    await phone.close();
  }
});

test("a used pairing link shows a clear error and the fragment is removed", async () => {
  const phone = await launchPhone({ name: "used-link" });
  try {
    const { page } = phone;
    assert.equal(await openPairingLink(page, hub.url + "/#pair=spent-code"), "Pair this phone with this doorbell?");
    await waitForState(page, "not-paired");
    await page.getByText("This pairing link was already used or expired. Ask for a new one.").waitFor();
    assert.equal(await page.evaluate(() => location.hash), "");
    const req = hub.pairRequests.at(-1);
    assert.equal(req.code, "spent-code");
    assert.equal("token" in req, false, "no token to send yet");
    assert.equal(typeof req.name, "string");
    await shot(page, "pair-error");
  } finally {
    await phone.close();
  }
});

test("pair, hello, idle door list; ring -> decline; answered elsewhere; missed; hub drop", async () => {
  const phone = await pairedPhone("A");
  try {
    const { page } = phone;
    assert.equal(await page.evaluate(() => localStorage.getItem("doorbell.token")), "good-token");
    assert.equal(await page.evaluate(() => location.hash), "");
    const hello = await hub.waitFor("hello");
    assert.deepEqual(hello, { type: "hello", protocol_version: 1, token: "good-token" });
    await page.getByText("Front door").waitFor();
    assert.match(await page.textContent("#door-list"), /Garden gate\s*Offline/);
    await shot(page, "idle");

    // door_status updates the list.
    hub.send({ type: "door_status", door_id: "d-garden", online: true });
    await page.waitForSelector('#door-list [data-door-id="d-garden"][data-online="true"]');

    // Ring -> Decline.
    hub.send({ type: "ring", call_id: "c-1", door_id: "d-front", door_name: "Front door" });
    await waitForState(page, "ringing");
    const m = await page.evaluate(() => window.doorbell.metrics);
    assert.equal(m.callId, "c-1");
    assert.equal(typeof m.ringAt, "number");
    assert.ok(Math.abs(m.ringAtEpochMs - Date.now()) < 10_000);
    await page.getByRole("heading", { name: "Front door" }).waitFor();
    await page.getByText("is ringing").waitFor();
    await shot(page, "ringing");
    await page.getByRole("button", { name: "Decline", exact: true }).click();
    assert.deepEqual(await hub.waitFor("decline"), { type: "decline", call_id: "c-1" });
    await waitForState(page, "idle");

    // Ring -> answered elsewhere -> back to idle on tap.
    hub.send({ type: "ring", call_id: "c-2", door_id: "d-front", door_name: "Front door" });
    await waitForState(page, "ringing");
    hub.send({ type: "answered_elsewhere", call_id: "c-2" });
    await waitForState(page, "answered-elsewhere");
    await page.getByText("Answered on another phone").first().waitFor();
    await shot(page, "answered-elsewhere");
    await page.click("#notice-dismiss");
    await waitForState(page, "idle");

    // Ring -> timeout -> missed; a new ring takes over the notice at once.
    hub.send({ type: "ring", call_id: "c-3", door_id: "d-front", door_name: "Front door" });
    await waitForState(page, "ringing");
    hub.send({ type: "ringing_cancelled", call_id: "c-3", reason: "timeout" });
    await waitForState(page, "missed");
    await page.getByText("Missed call from Front door").waitFor();
    await shot(page, "missed");
    hub.send({ type: "ring", call_id: "c-4", door_id: "d-front", door_name: "Front door" });
    await waitForState(page, "ringing");
    hub.send({ type: "ringing_cancelled", call_id: "c-4", reason: "declined" });
    await waitForState(page, "declined");
    // Terminal screens return to idle by themselves.
    await waitForState(page, "idle", 8000);

    // Ring -> door goes offline while ringing.
    hub.send({ type: "ring", call_id: "c-5", door_id: "d-front", door_name: "Front door" });
    await waitForState(page, "ringing");
    hub.send({ type: "ringing_cancelled", call_id: "c-5", reason: "door_offline" });
    await waitForState(page, "door-offline");
    await shot(page, "door-offline");
    await page.click("#notice-dismiss");
    await waitForState(page, "idle");

    // Messages the page must ignore: bad JSON, unknown type, another call's id.
    const before = phone.consoleErrors.length;
    for (const c of hub.sockets) c.socket.write(Buffer.from([0x81, 5, ...Buffer.from("nope!")]));
    hub.send({ type: "teleport" });
    hub.send({ type: "hang_up", call_id: "c-unknown", reason: "normal" });
    await page.waitForTimeout(100);
    assert.equal(await page.evaluate(() => window.doorbell.state), "idle");
    assert.equal(phone.consoleErrors.length, before, "bad hub messages are warnings, not errors");

    // Hub drops -> hub-unreachable -> reconnects -> idle.
    hub.dropAll();
    await waitForState(page, "hub-unreachable");
    await page.getByText("Hub unreachable, reconnecting").waitFor();
    await shot(page, "hub-unreachable");
    await waitForState(page, "idle", 10_000);
  } finally {
    await phone.close();
  }
});

test("missed rings: from the history after welcome and live, as 'Missed ring at HH:MM'", async () => {
  const now = Date.now();
  const day = 24 * 3600 * 1000;
  hub.events.push(
    { at: now - 60_000, door_id: "d-front", kind: "missed_ring" },
    { at: now - 30_000, door_id: "d-front", call_id: "c-1", kind: "ring" },
    { at: now - 8 * day, door_id: "d-front", kind: "missed_ring" }, // too old to be news
  );
  const phone = await pairedPhone("missed");
  try {
    const { page } = phone;
    const lines = page.locator("#missed-list li");
    await lines.first().waitFor();
    assert.equal(await lines.count(), 1);
    assert.equal(Number(await lines.first().getAttribute("data-at-ms")), now - 60_000);
    assert.match(await lines.first().innerText(), /Missed ring at \d\d:\d\d\s+Front door/);

    // Live, while the page is open: newest first.
    hub.send({ type: "missed_ring", door_id: "d-garden", door_name: "Garden gate", at_ms: now - 5_000 });
    await page.waitForFunction(() => document.querySelectorAll("#missed-list li").length === 2);
    assert.match(await lines.first().innerText(), /Garden gate/);
    await shot(page, "missed-rings");
    assert.equal(await page.evaluate(() => window.doorbell.state), "idle", "a missed ring does not ring");
    assert.deepEqual(phone.consoleErrors, []);
  } finally {
    hub.events.length = 0;
    await phone.close();
  }
});

test("unauthorized forgets the token and shows not-paired", async () => {
  const phone = await pairedPhone("revoked");
  try {
    const { page } = phone;
    hub.tokens.delete("good-token");
    hub.dropAll();
    await waitForState(page, "not-paired", 10_000);
    assert.equal(await page.evaluate(() => localStorage.getItem("doorbell.token")), null);
  } finally {
    hub.tokens.add("good-token");
    await phone.close();
  }
});

// The fake door: a browser RTCPeerConnection offering what doorbelld offers (video sendonly,
// H.264 Constrained Baseline when this Chromium can encode it; audio sendrecv).
async function startFakeDoor(doorPage) {
  return doorPage.evaluate(async () => {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    window.doorPc = pc;
    window.doorCandidates = [];
    pc.onicecandidate = (e) => {
      if (e.candidate && e.candidate.candidate) {
        window.doorCandidates.push({ candidate: e.candidate.candidate, sdp_m_line_index: e.candidate.sdpMLineIndex });
      }
    };
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    const video = pc.addTransceiver(stream.getVideoTracks()[0], { direction: "sendonly" });
    const h264 = (RTCRtpSender.getCapabilities("video")?.codecs ?? []).filter(
      (c) => c.mimeType === "video/H264" && /42e01f/.test(c.sdpFmtpLine ?? "") && /packetization-mode=1/.test(c.sdpFmtpLine ?? ""),
    );
    if (h264.length) video.setCodecPreferences(h264);
    pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendrecv" });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    return { sdp: pc.localDescription.sdp, h264: h264.length > 0 };
  });
}

// Plays the hub between the page and the fake door for call `callId` (already answered on
// the page): offer, answer, trickle ICE both ways until stopRelay(). Checks the answer's
// audio direction (`audioDirection`).
// Relays still pumping: a failed assertion must not leave one running (it would keep node,
// and so CI, waiting forever).
const activeRelays = new Set();
afterEach(async () => {
  for (const stop of activeRelays) await stop();
});

async function connectCall(page, doorPage, callId, audioDirection = "sendrecv") {
  // Door candidates are sent first on purpose (before the offer) to check the page queues them.
  const { sdp, h264 } = await startFakeDoor(doorPage);
  await doorPage.waitForFunction(() => window.doorCandidates.length > 0);
  for (const c of await doorPage.evaluate(() => window.doorCandidates.splice(0))) {
    hub.send({ type: "ice", call_id: callId, candidate: c });
  }
  hub.send({ type: "sdp_offer", call_id: callId, sdp });
  const ans = await hub.waitFor((m) => m.type === "sdp_answer" && m.call_id === callId);
  const audioSection = ans.sdp.slice(ans.sdp.indexOf("m=audio"));
  assert.match(ans.sdp.slice(ans.sdp.indexOf("m=video"), ans.sdp.indexOf("m=audio")), /a=recvonly/, "video recvonly");
  assert.match(audioSection, new RegExp(`a=${audioDirection}`), `audio ${audioDirection}`);
  await doorPage.evaluate((s) => window.doorPc.setRemoteDescription({ type: "answer", sdp: s }), ans.sdp);

  let relay = true;
  const pump = (async () => {
    while (relay) {
      for (const c of await doorPage.evaluate(() => window.doorCandidates.splice(0)).catch(() => [])) {
        hub.send({ type: "ice", call_id: callId, candidate: c });
      }
      for (const r of hub.received) {
        if (r.msg.type === "ice" && !r.relayed) {
          r.relayed = true;
          assert.equal(r.msg.call_id, callId);
          assert.equal(typeof r.msg.candidate.sdp_m_line_index, "number");
          await doorPage
            .evaluate((c) => window.doorPc.addIceCandidate({ candidate: c.candidate, sdpMLineIndex: c.sdp_m_line_index }), r.msg.candidate)
            .catch(() => {});
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const stopRelay = async () => {
    relay = false;
    activeRelays.delete(stopRelay);
    await pump.catch(() => {});
  };
  activeRelays.add(stopRelay);
  return { h264, stopRelay };
}

// The phone's microphone is heard at the door: not just packets (Chrome sends silent ones for
// a sendrecv transceiver without a track) but sound energy from the fake microphone's beep.
async function doorReceivesAudio(doorPage) {
  await doorPage.waitForFunction(
    async () => {
      const r = await window.doorPc.getStats();
      return [...r.values()].some((s) => s.type === "inbound-rtp" && s.kind === "audio" && s.totalAudioEnergy > 0);
    },
    null,
    { timeout: 10_000, polling: 100 },
  );
}

test("loopback call with a fake door: answer, media flows, mute, hang up", async () => {
  const phone = await pairedPhone("caller");
  const door = await launchPhone({ name: "door" });
  try {
    const { page } = phone;
    await door.page.goto(hub.url + "/fake-door");

    hub.send({ type: "ring", call_id: CALL, door_id: "d-front", door_name: "Front door" });
    await waitForState(page, "ringing");
    await page.getByRole("button", { name: "Answer", exact: true }).click();
    assert.deepEqual(await hub.waitFor("answer"), { type: "answer", call_id: CALL });
    await waitForState(page, "connecting");
    await page.locator("#call-status-text").getByText("Connecting…").waitFor();
    assert.ok(await page.evaluate(() => window.doorbell.pc instanceof RTCPeerConnection), "pc exists at answer press");
    await shot(page, "connecting");

    const { h264, stopRelay } = await connectCall(page, door.page, CALL);
    await waitForState(page, "in-call", 15_000);
    const stats = await waitForStats(page, (s) => s.video?.framesDecoded > 5 && s.audio?.totalSamplesReceived > 0);
    if (h264) assert.equal(stats.video.mimeType, "video/H264");
    assert.equal(stats.connectionState, "connected");
    assert.equal(stats.candidatePair.localType, "host");
    const m = await page.evaluate(() => window.doorbell.metrics);
    assert.ok(m.answerClickAt > m.ringAt && m.firstFrameAt > m.answerClickAt, JSON.stringify(m));
    console.log(`  fake door codec ${stats.video.mimeType}; answer -> first frame ${(m.firstFrameAt - m.answerClickAt).toFixed(0)} ms (includes the test's relay)`);

    // The phone's mic reaches the door.
    await doorReceivesAudio(door.page);

    await page.waitForTimeout(1200); // let the call timer tick for the screenshot
    assert.match(await page.textContent("#call-timer"), /^00:0[1-9]$/);
    await shot(page, "in-call");

    // Mute toggles the mic track and the button label.
    await page.getByRole("button", { name: "Mute", exact: true }).click();
    await page.getByRole("button", { name: "Unmute", exact: true }).waitFor();
    await shot(page, "in-call-muted");
    await page.getByRole("button", { name: "Unmute", exact: true }).click();

    await page.getByRole("button", { name: "Hang up", exact: true }).click();
    assert.deepEqual(await hub.waitFor("hang_up"), { type: "hang_up", call_id: CALL, reason: "normal" });
    await waitForState(page, "idle");
    assert.equal(await page.evaluate(() => window.doorbell.pc), null);
    await stopRelay();

    // A second call ended by the door: "Call ended".
    hub.send({ type: "ring", call_id: "c-smoke-2", door_id: "d-front", door_name: "Front door" });
    await waitForState(page, "ringing");
    await page.getByRole("button", { name: "Answer", exact: true }).click();
    await hub.waitFor((msg) => msg.type === "answer" && msg.call_id === "c-smoke-2");
    hub.send({ type: "hang_up", call_id: "c-smoke-2", reason: "normal" });
    await waitForState(page, "ended");
    await page.getByText("Call ended").waitFor();
    await shot(page, "ended");

    assert.deepEqual(phone.consoleErrors, []);
  } finally {
    await door.close();
    await phone.close();
  }
});

// getUserMedia is replaced in the page (test-only, via an init script) to model a phone that
// refuses the microphone, and one where the permission prompt is answered after the offer.
for (const [what, script, audioDirection] of [
  [
    "microphone denied: call continues receive-only",
    () => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("denied", "NotAllowedError"));
    },
    "recvonly",
  ],
  [
    "microphone granted after the offer: mic still reaches the door",
    () => {
      const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (c) => new Promise((r) => setTimeout(r, 2500)).then(() => real(c));
    },
    "sendrecv",
  ],
]) {
  test(what, async () => {
    const phone = await launchPhone({ name: "mic" });
    const door = await launchPhone({ name: "door" });
    try {
      const { page } = phone;
      await page.addInitScript(script);
      await openPairingLink(page, hub.url + "/#pair=good-code");
      await waitForState(page, "idle");
      await door.page.goto(hub.url + "/fake-door");
      const id = `c-mic-${audioDirection}`;
      hub.send({ type: "ring", call_id: id, door_id: "d-front", door_name: "Front door" });
      await waitForState(page, "ringing");
      await page.getByRole("button", { name: "Answer", exact: true }).click();
      await hub.waitFor((m) => m.type === "answer" && m.call_id === id);
      const { stopRelay } = await connectCall(page, door.page, id, audioDirection);
      await waitForState(page, "in-call", 15_000);
      await waitForStats(page, (s) => s.video?.framesDecoded > 0 && s.audio?.totalSamplesReceived > 0);
      if (audioDirection === "recvonly") {
        await page.getByText("Microphone unavailable").waitFor();
        assert.equal(await page.isDisabled("#btn-mute"), true);
        await shot(page, "in-call-no-mic");
      } else {
        // Chromium sends audio RTP on a sendrecv transceiver before any track is attached, so
        // "the door receives packets" can hold before a late microphone arrives: wait for the
        // microphone (Mute becomes usable), with a timeout, before checking.
        await page.waitForFunction(() => !document.getElementById("btn-mute").disabled, null, { timeout: 10_000 });
        await doorReceivesAudio(door.page);
      }
      await page.getByRole("button", { name: "Hang up", exact: true }).click();
      await hub.waitFor((m) => m.type === "hang_up" && m.call_id === id);
      await waitForState(page, "idle");
      await stopRelay();
      assert.deepEqual(phone.consoleErrors, []);
    } finally {
      await door.close();
      await phone.close();
    }
  });
}

test("stats helper returns null without a call", async () => {
  const phone = await launchPhone({ name: "nostats" });
  try {
    await phone.page.goto(hub.url + "/");
    await waitForState(phone.page, "not-paired");
    assert.equal(await callStats(phone.page), null);
  } finally {
    await phone.close();
  }
});
