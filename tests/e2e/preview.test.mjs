// End to end, live preview while ringing: a real hub, a real doorbelld with test sources and
// three headless Chromium phones. Each phone previews the door (> 10 decoded frames) while
// the door sends no audio and decodes none; one answers in its session and audio flows both
// ways over the same candidate pair; the other two end "answered elsewhere"; the door's
// pipeline has one video encoder throughout.
//
// The phones run tests/e2e/lib/preview_client.mjs, not the app (app_preview.test.mjs drives
// the app): the protocol and the door's side pinned on their own.
//
// Needs the debug binaries: `cargo build --workspace --bins`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";
import { startPreviewClient, previewStats, waitForPreview } from "./lib/preview_client.mjs";

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

async function pairedPhone(name) {
  const phone = await launchPhone({ name });
  phones.push(phone);
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
  await startPreviewClient(phone.page);
  return phone;
}

test("three phones preview the door, one answers in its session, the others end answered elsewhere", async () => {
  const all = [];
  for (const name of ["a", "b", "c"]) all.push(await pairedPhone(name));
  assert.equal(await system.press(), "ok");

  // Every phone decodes the door's video; no audio in either direction.
  for (const { page, name } of all) {
    const state = await waitForPreview(page, (s) => s?.framesDecoded > 10, `phone ${name}: > 10 preview frames`, 30_000);
    assert.equal(state.micRequested, false, "no microphone before Answer");
    assert.deepEqual(state.errors, [], `phone ${name}: ${state.errors}`);
  }
  const ringing = await system.status();
  assert.equal(ringing.state, "ringing");
  assert.equal(ringing.current_call.audio_rtp_sent, 0, "door audio left before Answer");
  assert.equal(ringing.current_call.audio_buffers_received, 0, "phone audio decoded at the door before Answer");
  assert.equal(ringing.current_call.video_encoders, 1, "one encoder for three previews");
  for (const { page } of all) {
    assert.equal((await previewStats(page)).audioSamplesReceived, 0, "a phone heard the door before Answer");
  }

  // Phone b answers in its session.
  const [a, b, c] = all;
  const pairBefore = (await previewStats(b.page)).selectedPair;
  assert.ok(pairBefore, "a selected candidate pair while previewing");
  const answeredAt = Date.now();
  await b.page.evaluate(() => window.previewClient.answer());
  const inCall = await system.waitForStatus(
    (s) => s.state === "in_call" && s.current_call?.audio_rtp_sent > 0 && s.current_call?.audio_buffers_received > 0,
    "in_call with audio both ways",
  );
  const heard = await waitForPreview(b.page, (s) => s.audioSamplesReceived > 0, "phone b hears the door");
  console.info(`answer -> audio both ways (door status + phone stats, 50 ms polling): ${Date.now() - answeredAt} ms`);
  assert.equal(heard.stats.selectedPair, pairBefore, "no new ICE connection: same candidate pair");
  assert.equal(heard.stats.connectionState, "connected");
  assert.equal(inCall.current_call.video_encoders, 1);

  for (const { page, name } of [a, c]) {
    const state = await waitForPreview(page, (_, st) => st.closedReason === "answered_elsewhere" && st.answeredElsewhere, `phone ${name}: answered elsewhere`);
    assert.equal(state.micRequested, false);
  }
  const after = await system.status();
  assert.equal(after.current_call.video_encoders, 1, "one encoder after the others left");

  // The answered session carries the call's unlocks (its data channel, no new handshake).
  await b.page.evaluate(() => window.previewClient.control.send(JSON.stringify({ version: 1, type: "unlock", request_id: 1 })));
  const unlocked = await waitForPreview(b.page, (_, st) => st.replies.some((r) => r.type === "unlocked"), "the door's unlocked reply");
  assert.equal(unlocked.replies[0].request_id, 1);
  await system.waitForStatus((s) => s.unlocks === 1, "one unlock");

  assert.equal(await system.hangup(), "ok");
  await system.waitForStatus((s) => s.state === "idle", "idle after hang-up");
});
