// The door's pinned identity (pin.js): links, offers, the decision.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { offerFingerprint, offerMatchesPin, pinFrom } from "./pin.js";

const FP = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, "0").toUpperCase()).join(":");
const OTHER = FP.replace(/^00/, "FF");
const offer = (fp) => `v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 ${fp}\r\n`;

test("a door's link carries its fingerprint; a hub's does not", () => {
  assert.equal(pinFrom(`https://door.local:8443/#pair=abc&fp=${FP}`), FP);
  assert.equal(pinFrom(`https://door.local:8443/#pair=abc&fp=${FP.toLowerCase()}`), FP);
  assert.equal(pinFrom("https://hub.example/#pair=abc"), null);
  assert.equal(pinFrom("https://hub.example/#pair=abc&fp=nonsense"), null);
});

test("an offer naming another certificate is refused; an unpinned door is not checked", () => {
  assert.equal(offerFingerprint(offer(FP)), FP);
  assert.equal(offerMatchesPin(offer(FP), FP), true);
  assert.equal(offerMatchesPin(offer(OTHER), FP), false);
  assert.equal(offerMatchesPin("v=0\r\n", FP), false, "no fingerprint at all");
  assert.equal(offerMatchesPin(offer(OTHER), null), true);
});
