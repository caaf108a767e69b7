// When the phone's kept certificate (phone-cert.js) is replaced.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { CERT_LIFETIME_MS, RENEW_BEFORE_MS, certificateChoice, needsRenewal, renewalStep } from "./phone-cert.js";

test("a certificate is kept until a month before its end, then replaced", () => {
  const now = Date.UTC(2026, 11, 4);
  assert.equal(needsRenewal(now + CERT_LIFETIME_MS, now), false, "a fresh one");
  assert.equal(needsRenewal(now + RENEW_BEFORE_MS + 1, now), false);
  assert.equal(needsRenewal(now + RENEW_BEFORE_MS, now), true);
  assert.equal(needsRenewal(now - 1, now), true, "expired");
  assert.equal(needsRenewal(NaN, now), true, "no end known");
});

test("a renewal asks the doors not yet moved and switches only when none is left", () => {
  assert.deepEqual(renewalStep(["d-1", "d-2"], []), { ask: ["d-1", "d-2"], switchNow: false });
  assert.deepEqual(renewalStep(["d-1", "d-2"], ["d-1"]), { ask: ["d-2"], switchNow: false });
  assert.deepEqual(renewalStep(["d-1", "d-2"], ["d-2", "d-1"]), { ask: [], switchNow: true });
  assert.deepEqual(renewalStep([], []), { ask: [], switchNow: true }, "no door to ask");
  const [old, next] = [{ name: "old" }, { name: "next" }];
  const state = /** @type {any} */ ({ current: old, next, moved: ["d-1"] });
  assert.equal(certificateChoice(state, "d-1"), next, "a door that re-pinned gets the new one");
  assert.equal(certificateChoice(state, "d-2"), old, "the others still the old one");
  assert.equal(certificateChoice({ current: old, next: null, moved: [] }, "d-1"), old);
});

test("the phone keeps its old certificate until every door confirmed the new one", async () => {
  // A browser's certificate API, without IndexedDB (so nothing is stored): the first
  // certificate is 10 days from its end, the later ones fresh.
  const now = Date.now();
  let made = 0;
  class FakeCert {
    /** @param {number} expires */
    constructor(expires) {
      this.expires = expires;
      this.fp = `0${made++}:AA`;
    }
    getFingerprints() {
      return [{ algorithm: "sha-256", value: this.fp }];
    }
  }
  const g = /** @type {any} */ (globalThis);
  g.RTCCertificate = FakeCert;
  g.RTCPeerConnection = {
    generateCertificate: async () => new FakeCert(made === 0 ? now + 10 * 24 * 3600 * 1000 : now + CERT_LIFETIME_MS),
  };
  try {
    // A module of its own: its certificate state is per page.
    const m = await import("./phone-cert.js?renewal");
    const old = await m.phoneCertificate();
    /** @type {string[][]} */
    const asked = [];
    let d2Online = false;
    const ask = async (/** @type {string} */ door, /** @type {string} */ oldFp, /** @type {string} */ newFp) => {
      asked.push([door, oldFp, newFp]);
      return door === "d-1" || d2Online;
    };
    assert.equal(await m.renewCertificate(["d-1", "d-2"], ask), "pending");
    assert.deepEqual(asked, [["d-1", "00:AA", "01:AA"], ["d-2", "00:AA", "01:AA"]]);
    assert.equal(await m.phoneCertificate(), old, "still the old one: d-2 pins it");
    assert.equal(await m.certificateFor("d-2"), old);
    const next = await m.certificateFor("d-1");
    assert.notEqual(next, old, "d-1 pinned the new one: its calls show it");

    d2Online = true;
    asked.length = 0;
    assert.equal(await m.renewCertificate(["d-1", "d-2"], ask), "renewed");
    assert.deepEqual(asked, [["d-2", "00:AA", "01:AA"]], "only the door still to move, with the same new certificate");
    assert.equal(await m.phoneCertificate(), next, "switched once every door confirmed");
    assert.equal(await m.certificateFor("d-2"), next);
    assert.equal(await m.renewCertificate(["d-1", "d-2"], ask), "kept", "the new one is not due");
  } finally {
    delete g.RTCCertificate;
    delete g.RTCPeerConnection;
  }
});
