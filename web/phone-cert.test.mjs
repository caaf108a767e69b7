// When the phone's kept certificate (phone-cert.js) is replaced.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { CERT_LIFETIME_MS, RENEW_BEFORE_MS, needsRenewal } from "./phone-cert.js";

test("a certificate is kept until a month before its end, then replaced", () => {
  const now = Date.UTC(2026, 11, 4);
  assert.equal(needsRenewal(now + CERT_LIFETIME_MS, now), false, "a fresh one");
  assert.equal(needsRenewal(now + RENEW_BEFORE_MS + 1, now), false);
  assert.equal(needsRenewal(now + RENEW_BEFORE_MS, now), true);
  assert.equal(needsRenewal(now - 1, now), true, "expired");
  assert.equal(needsRenewal(NaN, now), true, "no end known");
});
