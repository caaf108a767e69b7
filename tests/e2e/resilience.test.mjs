// Links that heal, end to end with the real processes (see call.test.mjs for the set-up):
//
// 1. The hub is killed (SIGKILL) in the middle of a call: media keeps flowing peer to peer,
//    the hub comes back on the same port and database, door and phone reconnect by
//    themselves, the call can still be hung up, and the next ring works.
// 2. The door's network to the hub is cut silently (DROP rules in the door's own network
//    namespace) and restored: the door notices (hub.keepalive_secs), a press during the cut
//    chimes locally and is reported as a missed ring with its time once the link is back,
//    and the next ring works. Needs root for the namespace.
// 3. Only the door's link to the hub drops in the middle of a call (DROP on its TCP
//    connection): the call goes on at both ends while the door reconnects, the phone is told
//    the door's link went away but keeps the call, and the door's hang-up still ends it on the
//    phone (the door closing its side of the call, since no hang_up can reach the phone).
//
// Needs the debug binaries: `cargo build --workspace --bins` (scripts/test.sh does it).

import { test, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { waitForStats, framesDecoded } from "./lib/stats.mjs";
import { startSystem } from "./lib/system.mjs";
import { createDoorNetns } from "./lib/netns.mjs";

// Short keepalive so a silent cut is noticed in ~3 s instead of 60 s (documented key).
const KEEPALIVE_ENV = { DOORBELL__HUB__KEEPALIVE_SECS: "1" };

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Start a system, remember to stop it, and check the door exits cleanly on SIGTERM. */
async function system(options) {
  const s = await startSystem(options);
  cleanups.push(async () => {
    const exit = await s.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, s.logs());
  });
  return s;
}

async function pairedPhone(sys, name) {
  const phone = await launchPhone({ name });
  cleanups.push(() => phone.close());
  await openPairingLink(phone.page, await sys.pairingUrl());
  await waitForState(phone.page, "idle");
  await phone.page.getByText("Front door").first().waitFor();
  return phone;
}

/** Press, answer on the phone, and wait until video frames are decoded. */
async function ringAndAnswer(sys, phone) {
  const { page } = phone;
  assert.equal(await sys.press(), "ok");
  await waitForState(page, "ringing");
  await page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(page, "in-call", 20_000);
  await waitForStats(page, (s) => s.video?.framesDecoded > 30, { timeout: 20_000 });
  return sys.waitForStatus((s) => s.state === "in_call" && s.current_call?.video_frames_sent > 30, "in_call");
}

async function hangUpOnPhone(sys, phone) {
  await phone.page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(phone.page, ["ended", "idle"]);
  return sys.waitForStatus((s) => s.state === "idle", "the door idle after the phone hung up");
}

const hubConnected = (page) => page.evaluate(() => window.doorbell.hubConnected);

test("hub killed mid-call: media keeps flowing, both sides re-register, the next ring works", async () => {
  const sys = await system({ doorEnv: KEEPALIVE_ENV });
  const phone = await pairedPhone(sys, "A");
  const { page } = phone;
  await ringAndAnswer(sys, phone);

  await sys.killHub("SIGKILL");
  const down = await sys.waitForStatus((s) => !s.hub_connected, "the door noticing the hub is gone");
  assert.equal(down.state, "in_call", "an established call survives losing the hub");
  const phoneFramesAtKill = await framesDecoded(page);
  const doorFramesAtKill = down.current_call.video_frames_sent;

  // Peer to peer: frames keep arriving at the phone and leaving the door with no hub at all.
  await waitForStats(page, (s) => s.video?.framesDecoded > phoneFramesAtKill + 30, { timeout: 10_000 });
  await sys.waitForStatus(
    (s) => s.state === "in_call" && s.current_call.video_frames_sent > doorFramesAtKill + 30,
    "door frames rising without a hub",
  );
  assert.equal(await page.evaluate(() => window.doorbell.state), "in-call");
  assert.equal(await hubConnected(page), false);

  // Same port, same database: the door and the phone find it again by themselves.
  await sys.restartHub();
  const back = await sys.waitForStatus((s) => s.hub_connected, "the door re-registered", 30_000);
  assert.equal(back.state, "in_call", "the call went on through the hub restart");
  await page.waitForFunction(() => window.doorbell.hubConnected, null, { timeout: 30_000, polling: 50 });
  const resumed = await framesDecoded(page);
  await waitForStats(page, (s) => s.video?.framesDecoded > resumed + 10);

  // The new hub never knew this call; hanging up on the phone still ends it at the door.
  const ended = await hangUpOnPhone(sys, phone);
  assert.equal(ended.last_call.outcome, "completed");
  await waitForState(page, "idle", 10_000);

  // The next ring works end to end through the restarted hub.
  await ringAndAnswer(sys, phone);
  await hangUpOnPhone(sys, phone);
});

test("network to the hub cut silently and restored: the door heals and reports the missed ring", async () => {
  const netns = await createDoorNetns();
  cleanups.push(() => netns.destroy());
  const sys = await system({ doorEnv: KEEPALIVE_ENV, prepareDoor: netns.prepareDoor });
  const phone = await pairedPhone(sys, "A");
  const { page } = phone;
  const before = await sys.status();
  assert.equal(before.hub_connected, true);

  await netns.cut();
  // Pressed at once, before the door can know: its `ring` vanishes into the cut. The hub never
  // confirms it, so when the link is declared dead the door keeps it as a missed ring.
  const first = { from: Date.now() };
  assert.equal(await sys.press(), "ok");
  first.to = Date.now();
  // No FIN, no RST: only the door's own keepalive can tell (3 x 1 s here).
  await sys.waitForStatus((s) => !s.hub_connected, "the door noticing the silent cut", 15_000);
  await sys.waitForStatus((s) => s.state === "idle" && s.missed_rings_pending === 1, "the swallowed ring kept as missed");

  // Pressed while the door knows: no call can start, it chimes locally and keeps the time.
  const second = { from: Date.now() };
  assert.equal(await sys.press(), "ok");
  const pending = await sys.waitForStatus((s) => s.missed_rings_pending === 2, "the second press kept as a missed ring");
  second.to = Date.now();
  assert.equal(pending.state, "idle", "no call without the hub");
  assert.equal(pending.local_chimes, before.local_chimes + 1, "the door played its own chime");
  assert.equal(await page.evaluate(() => window.doorbell.state), "idle", "the phone did not ring");

  await netns.restore();
  const healed = await sys.waitForStatus(
    (s) => s.hub_connected && s.missed_rings_pending === 0 && s.missed_rings_reported === before.missed_rings_reported + 2,
    "the door back online with both missed rings reported",
    45_000,
  );
  assert.equal(healed.state, "idle");

  // The phone that was online is told, with each press's time (door and test share a clock).
  const lines = page.locator("#missed-list li");
  await page.waitForFunction(() => document.querySelectorAll("#missed-list li").length === 2, null, { timeout: 10_000 });
  const shown = (await lines.evaluateAll((els) => els.map((e) => Number(e.dataset.atMs)))).sort((a, b) => a - b);
  const within = (at, { from, to }) => at >= from - 1000 && at <= to + 1000;
  assert.ok(within(shown[0], first) && within(shown[1], second), JSON.stringify({ shown, first, second }));
  assert.match(await lines.first().innerText(), /Missed ring at \d\d:\d\d/);

  // And the history has them, for phones that were not online.
  const token = await page.evaluate(() => localStorage.getItem("doorbell.token"));
  const res = await fetch(`${sys.baseUrl}/api/events`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const missed = (await res.json()).events.filter((e) => e.kind === "missed_ring");
  assert.deepEqual(missed.map((e) => e.at).sort((a, b) => a - b), shown);
  assert.ok(missed.every((e) => e.door_id === sys.door.door_id));

  // The next ring works end to end over the healed link.
  await ringAndAnswer(sys, phone);
  await hangUpOnPhone(sys, phone);
});

test("the door's link to the hub drops mid-call: the call goes on at both ends", async () => {
  const netns = await createDoorNetns();
  cleanups.push(() => netns.destroy());
  const sys = await system({ doorEnv: KEEPALIVE_ENV, prepareDoor: netns.prepareDoor });
  const phone = await pairedPhone(sys, "A");
  const { page } = phone;
  await ringAndAnswer(sys, phone);

  await netns.cut({ hubOnly: true });
  await sys.waitForStatus((s) => !s.hub_connected, "the door noticing its hub link is dead", 15_000);
  await netns.restore();
  // The door reconnects; the hub replaces its old connection and tells the phone the door's
  // link went away (hang_up peer_gone), which the phone must not take as the call's end.
  const back = await sys.waitForStatus((s) => s.hub_connected, "the door re-registered", 45_000);
  assert.equal(back.state, "in_call", sys.logs());
  await page.waitForFunction(
    () => document.getElementById("call-status-text")?.textContent.includes("link to the hub dropped"),
    null,
    { timeout: 10_000, polling: 50 },
  ).catch(async (e) => {
    const seen = await page.evaluate(() => [window.doorbell.state, window.doorbell.pc?.connectionState, document.getElementById("call-status-text")?.textContent]);
    throw new Error(`${e.message}: phone ${JSON.stringify(seen)}\n${sys.logs()}`);
  });
  assert.equal(await page.evaluate(() => window.doorbell.state), "in-call");
  const frames = await framesDecoded(page);
  await waitForStats(page, (s) => s.video?.framesDecoded > frames + 30, { timeout: 10_000 });

  // The hub no longer knows the call, so the door's hang-up cannot reach the phone as
  // `hang_up`: the door closing its side of the call is what ends it on the phone.
  assert.equal(await sys.hangup(), "ok");
  const ended = await sys.waitForStatus((s) => s.state === "idle", "the door idle after its hang-up");
  assert.equal(ended.last_call.outcome, "completed");
  await waitForState(page, ["ended", "idle"], 10_000);
  await waitForState(page, "idle", 10_000);
  await ringAndAnswer(sys, phone);
  await hangUpOnPhone(sys, phone);
});
