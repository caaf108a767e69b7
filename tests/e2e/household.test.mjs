// The household end to end: a real hub, a real doorbelld with test sources, two Chromium
// phones. The first phone paired owns the door; in its Household screen it takes the second
// phone's unlock permission away (that phone then has no Unlock button, and an unlock it
// sends on the call's data channel anyway is refused by the door), makes an invite shown as
// a QR code, and removes the second phone (its page learns it at once; the next press does
// not reach it).
//
// Needs the debug binaries: `cargo build --workspace --bins`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";

let system;
const phones = [];

/** Keeps the call's `control` data channel where the test can reach it (window.__control). */
function captureControlChannel() {
  const proto = RTCPeerConnection.prototype;
  const desc = Object.getOwnPropertyDescriptor(proto, "ondatachannel");
  Object.defineProperty(proto, "ondatachannel", {
    configurable: true,
    get() {
      return desc.get.call(this);
    },
    set(fn) {
      desc.set.call(this, fn && ((ev) => {
        window.__control = ev.channel;
        window.__controlReplies = [];
        ev.channel.addEventListener("message", (m) => window.__controlReplies.push(String(m.data)));
        fn(ev);
      }));
    },
  });
}

before(async () => {
  system = await startSystem();
});

after(async () => {
  for (const phone of phones) await phone.close();
  await system?.stop();
});

async function pairedPhone(name) {
  const phone = await launchPhone({ name, initScript: captureControlChannel });
  phones.push(phone);
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
  await phone.page.getByText("Front door").first().waitFor();
  return phone;
}

/** The other phone's row on the owner's household screen. */
const memberRow = (owner) => owner.page.locator("#household-list li").filter({ hasNotText: "(this phone)" });

test("an owner restricts and removes a member; the door refuses the member's unlock", async () => {
  const owner = await pairedPhone("owner");
  const member = await pairedPhone("member");
  // Only the owner manages the household; it hears that the member joined.
  await owner.page.getByText(/joined Front door/).waitFor({ timeout: 10_000 });
  assert.equal(await member.page.locator("button[data-household]").count(), 0);
  assert.equal(await member.page.locator("button[data-leave]").count(), 1, "a member can leave");
  await owner.page.locator("button[data-household]").click();
  await waitForState(owner.page, "household");
  await memberRow(owner).waitFor();
  assert.equal(await owner.page.locator("#household-list li").count(), 2);

  // Take the member's unlock permission away.
  await memberRow(owner).getByLabel("May unlock").uncheck();
  // The hub tells the member (access_changed) in the same step as it notes it for the door.
  await member.page.waitForFunction(() => window.doorbell.doors[0]?.access?.may_unlock === false, null, {
    timeout: 5_000,
  });
  const before = await system.status();
  assert.equal(await system.press(), "ok");
  await waitForState(member.page, "ringing");
  await member.page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(member.page, "in-call", 20_000);
  assert.equal(await member.page.locator("#btn-unlock").isHidden(), true, "a member without unlock permission sees no Unlock button");

  // Sent on the data channel anyway: the door refuses it and never pulses the strike.
  await member.page.waitForFunction(() => window.__control?.readyState === "open", null, { timeout: 20_000 });
  await member.page.evaluate(() => window.__control.send(JSON.stringify({ version: 1, type: "unlock", request_id: 41 })));
  await member.page.waitForFunction(() => window.__controlReplies.some((r) => r.includes('"request_id":41')), null, {
    timeout: 10_000,
  });
  const reply = JSON.parse(await member.page.evaluate(() => window.__controlReplies.find((r) => r.includes('"request_id":41'))));
  assert.equal(reply.type, "error");
  assert.equal(reply.code, "not_allowed");
  const inCall = await system.status();
  assert.equal(inCall.unlocks, before.unlocks);
  assert.equal(inCall.relay_pulses, before.relay_pulses);
  await member.page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(member.page, "idle");
  await system.waitForStatus((s) => s.state === "idle", "idle after the call");

  // The owner rang too (answered elsewhere): back to its household screen.
  await waitForState(owner.page, "idle", 10_000);
  await owner.page.locator("button[data-household]").click();
  await waitForState(owner.page, "household");
  await memberRow(owner).waitFor();

  // An invite: a link and its QR code.
  await owner.page.locator("#invite-form button[type=submit]").click();
  await owner.page.locator("#invite-result").waitFor();
  // Made by the owner's phone with the key it shares with the door (the door checked it):
  // the door's id, the code id, its secret, the name, the door's pinned fingerprint.
  assert.match(
    await owner.page.locator("#invite-link").inputValue(),
    /\/#pair=d-[0-9a-f]+\.[0-9a-f]{16}\.[0-9a-f]{32}&door=Front%20door&fp=([0-9A-F]{2}:){31}[0-9A-F]{2}$/,
  );
  const qr = await owner.page.locator("#invite-qr").evaluate((img) => ({ src: img.src, w: img.naturalWidth }));
  assert.match(qr.src, /^data:image\/svg\+xml/);
  assert.ok(qr.w > 0, "the QR code image loaded");

  // Remove the member: its page learns it at once, its token is refused from then on.
  owner.page.once("dialog", (d) => d.accept());
  const removedAt = Date.now();
  await memberRow(owner).getByRole("button", { name: "Remove" }).click();
  await waitForState(member.page, "not-paired", 5_000);
  const took = Date.now() - removedAt;
  // The door forgets its certificate too.
  await system.waitForStatus(() => /its certificate is no longer pinned/.test(system.doorLog()), "the door unpinned the member", 5_000);
  assert.ok(took < 3_000, `the removed phone noticed after ${took} ms`);
  // The owner's list drops it; back home, the owner reads who left.
  await owner.page.waitForFunction(() => document.querySelectorAll("#household-list li").length === 1, null, {
    timeout: 5_000,
  });
  await owner.page.getByRole("button", { name: "Back" }).click();
  await owner.page.getByText(/left Front door/).waitFor({ timeout: 5_000 });
  // The next press rings the owner only.
  assert.equal(await system.press(), "ok");
  await waitForState(owner.page, "ringing");
  const ringing = await system.waitForStatus((s) => s.state === "ringing" && s.phones_ringing >= 1, "ringing");
  assert.equal(ringing.phones_ringing, 1);
  assert.equal(await member.page.evaluate(() => document.body.dataset.state), "not-paired");
  await owner.page.getByRole("button", { name: "Decline", exact: true }).click();
  await system.waitForStatus((s) => s.state === "idle", "idle after declining");
});
