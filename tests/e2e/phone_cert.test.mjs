// The phone's own DTLS certificate (web/phone-cert.js), end to end with a real hub and door:
// made once, kept in IndexedDB, and the one every call shows, across calls and page reloads.
// It is the identity the door is to pin at pairing (docs/SECURITY-MODEL.md).
//
// Needs the debug binaries: `cargo build --workspace --bins` (scripts/test.sh does it).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";

let system;
let phone;

before(async () => {
  system = await startSystem();
  phone = await launchPhone({ name: "cert" });
});

after(async () => {
  await phone?.close();
  await system?.stop();
});

/** Ring, answer, read the fingerprint the phone's answer carries, hang up. */
async function answeredFingerprint(page) {
  assert.equal(await system.press(), "ok");
  await waitForState(page, "ringing");
  await page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(page, "in-call", 20_000);
  const sdp = await page.evaluate(() => window.doorbell.pc.localDescription.sdp);
  const fp = /^a=fingerprint:sha-256 (\S+)/im.exec(sdp)?.[1];
  assert.ok(fp, `no fingerprint in the answer:\n${sdp}`);
  await page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(page, "idle", 10_000);
  await system.waitForStatus((s) => s.state === "idle", "the door back to idle");
  return fp.toUpperCase();
}

/** The fingerprint of the certificate kept in IndexedDB. */
const keptFingerprint = (page) =>
  page.evaluate(async () => {
    const { phoneCertificate } = await import("/phone-cert.js");
    const cert = await phoneCertificate();
    return cert.getFingerprints().find((f) => f.algorithm === "sha-256").value.toUpperCase();
  });

test("every call shows the phone's kept certificate, also after a reload", async () => {
  const { page } = phone;
  await openPairingLink(page, await system.pairingUrl());
  await waitForState(page, "idle");
  const kept = await keptFingerprint(page);
  assert.match(kept, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

  assert.equal(await answeredFingerprint(page), kept, "first call");
  assert.equal(await answeredFingerprint(page), kept, "second call");
  await page.reload();
  await waitForState(page, "idle");
  assert.equal(await answeredFingerprint(page), kept, "after a reload");
  assert.equal(await keptFingerprint(page), kept, "the stored certificate is reused");
});
