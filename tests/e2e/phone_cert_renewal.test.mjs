// A phone's certificate renewed a month before its end (web/phone-cert.js), end to end with a
// real hub and door: the phone asks the door to re-pin the new certificate with a proof under
// the key they share since pairing (docs/PROTOCOL.md "Pairing", renewed phone certificates),
// switches to it once the door did, and its next call, made with the new certificate, is
// accepted by the door. Renewal is forced by pairing with a certificate 10 days from its end.
//
// Needs the debug binaries: `cargo build --workspace --bins` (scripts/test.sh does it).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";

/** Less than phone-cert.js RENEW_BEFORE_MS: due for renewal at once. */
const NEAR_END_MS = 10 * 24 * 3600 * 1000;
/** The renewal runs after the welcome that lists the door: pairing, reconnect, one POST. */
const RENEWED_WITHIN_MS = 20_000;

let system;
let phone;

before(async () => {
  system = await startSystem();
  phone = await launchPhone({ name: "renewal" });
});

after(async () => {
  await phone?.close();
  await system?.stop();
});

/** The fingerprint of the certificate the app keeps (the one for every door once renewed). */
const keptFingerprint = (page) =>
  page.evaluate(async () => {
    const { phoneCertificate } = await import("/phone-cert.js");
    const cert = await phoneCertificate();
    return cert.getFingerprints().find((f) => f.algorithm === "sha-256").value.toUpperCase();
  });

/** Replaces the kept certificate in IndexedDB with one `lifeMs` from its end; its fingerprint. */
const seedCertificate = (page, lifeMs) =>
  page.evaluate(async (lifeMs) => {
    // After the app's own first certificate is stored, so that one does not overwrite this.
    await (await import("/phone-cert.js")).phoneCertificate();
    const cert = await RTCPeerConnection.generateCertificate({ name: "ECDSA", namedCurve: "P-256", expires: lifeMs });
    await new Promise((resolve, reject) => {
      const req = indexedDB.open("doorbell-keys", 1);
      req.onupgradeneeded = () => req.result.createObjectStore("keys");
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const tx = req.result.transaction("keys", "readwrite");
        tx.objectStore("keys").put(cert, "dtls");
        tx.oncomplete = () => {
          req.result.close();
          resolve();
        };
        tx.onerror = () => reject(tx.error);
      };
    });
    return cert.getFingerprints().find((f) => f.algorithm === "sha-256").value.toUpperCase();
  }, lifeMs);

/** Waits until the door's log (which reaches this process a moment late) matches `pattern`. */
async function doorLogged(page, pattern, what, ms = RENEWED_WITHIN_MS) {
  const deadline = Date.now() + ms;
  while (!pattern.test(system.doorLog())) {
    assert.ok(Date.now() < deadline, `the door never logged ${what}:\n${system.logs()}`);
    await page.waitForTimeout(100);
  }
}

test("a renewed certificate is re-pinned by the door, and the next call uses it", async () => {
  const { page } = phone;
  await page.goto(system.baseUrl + "/");
  const old = await seedCertificate(page, NEAR_END_MS);
  // A fresh page load, so the app reads the seeded certificate and pairs with it.
  await page.goto("about:blank");
  await openPairingLink(page, await system.pairingUrl());
  await waitForState(page, "idle");
  await doorLogged(page, new RegExp(`phone paired: its certificate is pinned.*${old}`), "the pairing with the old certificate");

  const deadline = Date.now() + RENEWED_WITHIN_MS;
  let kept = await keptFingerprint(page);
  while (kept === old) {
    assert.ok(Date.now() < deadline, `the phone still keeps its old certificate after ${RENEWED_WITHIN_MS} ms`);
    await page.waitForTimeout(200);
    kept = await keptFingerprint(page);
  }
  assert.match(kept, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  await doorLogged(page, new RegExp(`a phone renewed its certificate: the new one is pinned.*${kept}`), "the re-pin");

  // The door now accepts the new certificate: a call connects, and its answer names it.
  assert.equal(await system.press(), "ok");
  await waitForState(page, "ringing", 20_000);
  await page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(page, "in-call", 40_000);
  const sdp = await page.evaluate(() => window.doorbell.pc.localDescription.sdp);
  assert.equal(/^a=fingerprint:sha-256 (\S+)/im.exec(sdp)?.[1]?.toUpperCase(), kept);
  await page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(page, "idle", 10_000);
  const status = await system.waitForStatus((s) => s.state === "idle", "the door back to idle");
  assert.equal(status.last_call.outcome, "completed", "the door accepted the renewed certificate");

  // Kept for good: a reload shows the new one, and does not renew again.
  await page.reload();
  await waitForState(page, "idle");
  assert.equal(await keptFingerprint(page), kept);
});
