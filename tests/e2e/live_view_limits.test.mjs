// Live view limits end to end through the real phone app, on a door configured with
// `view.max_viewers = 1`, `view.max_secs = 10` and `view.door_audio = true`: the viewer hears
// the door (its audio RTP arrives) while the door plays nothing from the phone; a second phone
// is refused with a clear message (`limit`); the view ends by itself at its longest length
// (`time_limit`) and the door's LED and status go back to idle.
//
// Needs the debug binaries: `cargo build --workspace --bins`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { waitForStats } from "./lib/stats.mjs";
import { startSystem } from "./lib/system.mjs";

const MAX_SECS = 10;
let system;
const phones = [];

before(async () => {
  system = await startSystem({
    prepareDoor: () => ({
      env: { DOORBELL__VIEW__MAX_VIEWERS: "1", DOORBELL__VIEW__MAX_SECS: String(MAX_SECS), DOORBELL__VIEW__DOOR_AUDIO: "true" },
    }),
  });
});

after(async () => {
  for (const phone of phones) await phone.close();
  const exit = await system?.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, system?.logs());
});

function instrument() {
  Object.defineProperty(window, "doorbellPreviewPc", { get: () => window.doorbell?.previewPc ?? null });
}
const VIEW = { global: "doorbellPreviewPc" };

async function pairedPhone(name) {
  const phone = await launchPhone({ name, initScript: instrument });
  phones.push(phone);
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
  return phone;
}

test("door audio where allowed, a viewer past the cap refused, the longest view ended by the door", async () => {
  const a = await pairedPhone("a");
  const b = await pairedPhone("b");
  const view = `button[data-view="${system.door.door_id}"]`;

  await a.page.click(view);
  await waitForState(a.page, "viewing");
  const startedAt = Date.now();
  const heard = await waitForStats(a.page, (s) => s.video?.framesDecoded > 10 && s.audio?.packetsReceived > 0, {
    ...VIEW,
    timeout: 30_000,
  });
  assert.equal(heard.connectionState, "connected");
  const status = await system.waitForStatus(
    (s) => s.viewers === 1 && s.led === "viewing" && s.current_call?.audio_rtp_sent > 0,
    "one viewer hearing the door",
  );
  assert.equal(status.current_call.audio_buffers_received, 0, "the phone's audio is never played at the door in a view");

  // The cap: one viewer at once.
  await b.page.click(view);
  await waitForState(b.page, "ended", 15_000).catch(async (e) => {
    const seen = await b.page.evaluate(() => window.doorbell.view);
    throw new Error(`${e.message}; b's view ${JSON.stringify(seen)}; door ${JSON.stringify(await system.status())}\n${system.logs()}`);
  });
  assert.equal(await b.page.textContent("#notice-title"), "View ended");
  assert.match(await b.page.textContent("#notice-detail"), /Too many phones/);
  assert.equal((await system.status()).viewers, 1);

  // The longest view: the door ends it.
  await waitForState(a.page, "ended", (MAX_SECS + 10) * 1000);
  const lasted = (Date.now() - startedAt) / 1000;
  assert.ok(lasted >= MAX_SECS - 2, `the view ended after ${lasted} s, before view.max_secs`);
  assert.match(await a.page.textContent("#notice-detail"), /time limit/);
  await system.waitForStatus((s) => s.viewers === 0 && s.led === "idle" && s.state === "idle", "idle again, LED idle");
  for (const { consoleErrors, name } of [a, b]) assert.deepEqual(consoleErrors, [], `phone ${name} console errors`);
});
