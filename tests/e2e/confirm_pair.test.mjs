// "Pair this phone with Front door?" (issue 11, item 2), end to end with a real hub and door:
// opening a pairing link asks first, names the door, and redeems nothing until "Pair".
//
// Needs the debug binaries: `cargo build --workspace --bins` (scripts/test.sh does it).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";

// A name that needs encoding in the link: spaces, "&", "#" and a non-ASCII letter.
const DOOR_NAME = "Küche & Hof #2";

let system;
let phone;

before(async () => {
  system = await startSystem({ doorName: DOOR_NAME });
  phone = await launchPhone({ name: "confirm" });
});

after(async () => {
  await phone?.close();
  await system?.stop();
});

/** Opens `link` and waits for the question; returns it as shown. */
async function asked(link) {
  await phone.page.goto(link);
  await waitForState(phone.page, "confirm-pair");
  assert.equal(await phone.page.evaluate(() => location.hash), "", "the code leaves the address bar");
  return phone.page.locator("#confirm-pair-title").innerText();
}

test("a link asks before pairing; 'Not now' redeems nothing, 'Pair' pairs", async () => {
  const { page } = phone;
  const link = await system.pairingUrl();
  assert.equal(await asked(link), `Pair this phone with ${DOOR_NAME}?`);
  await page.click("#btn-pair-no");
  await waitForState(page, "not-paired");
  assert.equal(await page.evaluate(() => localStorage.getItem("doorbell.token")), null);

  // The same one-time link still works: declining spent nothing.
  assert.equal(await asked(link), `Pair this phone with ${DOOR_NAME}?`);
  await page.click("#btn-pair-yes");
  await waitForState(page, "idle");
  await page.locator("#door-list").getByText(DOOR_NAME).waitFor({ timeout: 10_000 });
});

test("a paired phone that opens another link stays asked while connected; 'Not now' goes home", async () => {
  const { page } = phone;
  await asked(await system.pairingUrl());
  // The app connects to the hub meanwhile (the welcome arrives); the question stays up.
  await page.locator("#door-list").getByText(DOOR_NAME).waitFor({ state: "attached", timeout: 10_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), "confirm-pair");
  await page.click("#btn-pair-no");
  await waitForState(page, "idle");
});
