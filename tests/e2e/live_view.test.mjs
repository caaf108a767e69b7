// Live view end to end through the real phone app: a real hub, a real doorbelld with test
// sources (its default config: `view.door_audio` off) and headless Chromium phones.
//
// A phone taps View: the viewer screen decodes the door's video while the door sends no
// audio, the door's status shows the `viewing` LED and one viewer, and the history has the
// view with who viewed. A second phone views too; a press rings both; the first answers in its
// view's session (the same candidate pair, audio both ways), the second keeps its view with
// video only. A member without `may_view` has no View button and the hub refuses its `view`
// with the typed error `forbidden`.
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

/** Names the view's connection (the app's Preview) for lib/stats.mjs. */
function instrument() {
  Object.defineProperty(window, "doorbellPreviewPc", { get: () => window.doorbell?.previewPc ?? null });
}
const VIEW = { global: "doorbellPreviewPc" };

async function pairedPhone(name, link) {
  const phone = await launchPhone({ name, initScript: instrument });
  phones.push(phone);
  await openPairingLink(phone.page, link ?? (await system.pairingUrl()));
  await waitForState(phone.page, "idle");
  return phone;
}

/** Tap View on the door and wait for > 10 decoded frames on the viewer screen. */
async function startViewing(phone) {
  const { page, name } = phone;
  await page.click(`button[data-view="${system.door.door_id}"]`);
  await waitForState(page, "viewing");
  const stats = await waitForStats(page, (s) => s.video?.framesDecoded > 10, { ...VIEW, timeout: 30_000 });
  const shown = await page.evaluate(() => /** @type {HTMLVideoElement} */ (document.getElementById("view-video")).videoWidth);
  assert.ok(shown > 0, `phone ${name}: the viewer screen shows the video`);
  return stats;
}

/** The selected candidate pair's id of the view's (`preview`) or the call's connection. */
function pairId(page, which) {
  return page.evaluate(async (which) => {
    const pc = which === "view" ? window.doorbell.previewPc : window.doorbell.pc;
    const stats = [...(await pc.getStats()).values()];
    return stats.find((s) => s.type === "transport")?.selectedCandidatePairId ?? null;
  }, which);
}

/** The door's history as the phone's token sees it. */
function history(page) {
  return page.evaluate(async () => {
    const res = await fetch("/api/events", { headers: { Authorization: `Bearer ${localStorage.getItem("doorbell.token")}` } });
    return (await res.json()).events;
  });
}

test("viewing, a press during the view answered in the view's session, a second viewer on video only", async () => {
  const a = await pairedPhone("a");
  const b = await pairedPhone("b");
  const first = await startViewing(a);
  assert.equal(first.audio?.totalSamplesReceived ?? 0, 0, "no door audio in a view by default");

  const viewing = await system.waitForStatus((s) => s.viewers === 1 && s.led === "viewing", "one viewer, the Viewing LED");
  assert.equal(viewing.state, "idle");
  assert.equal(viewing.current_call.audio_rtp_sent, 0, "the door sent audio to a view (view.door_audio is off)");
  assert.equal(viewing.current_call.audio_buffers_received, 0, "phone audio decoded at the door in a view");
  const me = await a.page.evaluate(() => localStorage.getItem("doorbell.phone_id"));
  const views = (await history(a.page)).filter((e) => e.kind === "view");
  assert.equal(views.length, 1, JSON.stringify(views));
  assert.equal(views[0].phone_id, me, "the history names who viewed");

  await startViewing(b);
  await system.waitForStatus((s) => s.viewers === 2, "two viewers");
  assert.equal((await system.status()).current_call.video_encoders, 1, "one encoder for both viewers");

  // A press rings everyone as usual; the viewers' ringing screens show their views' video.
  const pairBefore = await pairId(a.page, "view");
  assert.ok(pairBefore, "a selected candidate pair while viewing");
  assert.equal(await system.press(), "ok");
  for (const { page } of [a, b]) {
    await waitForState(page, "ringing");
    await page.waitForFunction(() => window.doorbell.previewState === "live", null, { timeout: 10_000 });
  }
  await system.waitForStatus((s) => s.state === "ringing" && s.led === "ringing", "ringing, LED ringing");

  await a.page.click("#btn-answer");
  await waitForState(a.page, "in-call", 20_000);
  await system.waitForStatus(
    (s) => s.state === "in_call" && s.current_call?.audio_rtp_sent > 0 && s.current_call?.audio_buffers_received > 0,
    "in_call with audio both ways",
  );
  const heard = await waitForStats(a.page, (s) => s.audio?.totalSamplesReceived > 0 && s.outboundAudio?.packetsSent > 0, {
    timeout: 20_000,
  });
  assert.equal(heard.connectionState, "connected");
  assert.equal(await pairId(a.page, "call"), pairBefore, "answered in the same session: no new ICE connection");

  // The other viewer: "answered on another phone", then back to its view, video only.
  await waitForState(b.page, "answered-elsewhere");
  await b.page.click("#notice-dismiss");
  await waitForState(b.page, "viewing");
  const bNow = await callStats(b.page, VIEW);
  const bLater = await waitForStats(b.page, (s) => s.video?.framesDecoded > bNow.video.framesDecoded + 10, VIEW);
  assert.equal(bLater.audio?.totalSamplesReceived ?? 0, 0, "the second viewer hears nothing: only the answering phone talks");

  // The call ends: the view that became the call and the other view end with it.
  await a.page.click("#btn-hangup");
  await system.waitForStatus((s) => s.state === "idle" && s.viewers === 0 && s.led === "idle", "idle, no viewers, LED idle");
  await waitForState(b.page, "ended");
  assert.equal(await b.page.textContent("#notice-title"), "View ended");
  for (const { consoleErrors, name } of [a, b]) assert.deepEqual(consoleErrors, [], `phone ${name} console errors`);
});

test("a member without may_view has no View button and the hub refuses its view (forbidden)", async () => {
  const owner = phones[0] ?? (await pairedPhone("owner"));
  const invite = await owner.page.evaluate(async (doorId) => {
    const res = await fetch(`/api/doors/${encodeURIComponent(doorId)}/invites`, {
      method: "POST",
      headers: { Authorization: `Bearer ${localStorage.getItem("doorbell.token")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ role: "member", may_view: false }),
    });
    return { status: res.status, body: await res.json() };
  }, system.door.door_id);
  assert.equal(invite.status, 200, JSON.stringify(invite));
  const c = await pairedPhone("c", invite.body.url);
  await c.page.waitForSelector(`li[data-door-id="${system.door.door_id}"]`);
  assert.equal(await c.page.locator("button[data-view]").count(), 0, "no View button without may_view");

  // Asked anyway, on its own connection: a typed error, and the door hears nothing.
  const code = await c.page.evaluate(
    (doorId) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`${location.origin.replace(/^http/, "ws")}/ws`);
        const timer = setTimeout(() => reject(new Error("no reply to view")), 10_000);
        ws.onopen = () => ws.send(JSON.stringify({ type: "hello", protocol_version: 1, token: localStorage.getItem("doorbell.token") }));
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data);
          if (msg.type === "welcome") ws.send(JSON.stringify({ type: "view", door_id: doorId }));
          if (msg.type === "error") {
            clearTimeout(timer);
            ws.close();
            resolve(msg.code);
          }
        };
      }),
    system.door.door_id,
  );
  assert.equal(code, "forbidden");
  const status = await system.status();
  assert.equal(status.viewers, 0);
  assert.equal(status.state, "idle");
});
