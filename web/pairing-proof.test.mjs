// The phone's pairing proof must be byte for byte what the door checks (src/pairing/codes.rs).
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { doorCodeFrom, inviteAuth, inviteSecret, newCodeId, pairingProof, phoneKey, repinProof } from "./pairing-proof.js";

const FP = "3B:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C:A9:32:87:5E:D4:10:6B:C8:2F:93:E7:01";

test("a door-made code splits into door, code id and secret; a hub code is not one", () => {
  const secret = "00112233445566778899aabbccddeeff";
  assert.deepEqual(doorCodeFrom(`d-1a2b.0123456789abcdef.${secret}`), {
    doorId: "d-1a2b",
    codeId: "0123456789abcdef",
    secretHex: secret,
  });
  assert.equal(doorCodeFrom("0123456789abcdef01234567"), null);
  assert.equal(doorCodeFrom(`d-1.0123.${secret}`), null);
  assert.equal(doorCodeFrom(`.0123456789abcdef.${secret}`), null);
});

test("the proof is HMAC-SHA256 over the label, door, code id and fingerprint", async () => {
  // The same vector as src/pairing/tests.rs `the_proof_matches_the_phones`.
  const secret = Buffer.from("0123456789abcdef").toString("hex");
  const proof = await pairingProof(secret, "d-1", "c1", FP);
  assert.equal(proof, "a75a776a9b140b4a991d63609455ad7e60217efdd1166069cd852bceca7eb62f");
});

test("the phone's key, an invite's secret and its authorisation match the door's", async () => {
  // The same vectors as src/pairing/tests.rs `invite_vectors_match_the_phones`.
  const secret = Buffer.from("0123456789abcdef").toString("hex");
  const key = await phoneKey(secret);
  assert.equal(key, "bc0931ed90d12c27ff0c20134c57d64288065f2e3d8b0fa4868a20de8188d6f6");
  assert.equal(await inviteSecret(key, "0f1e2d3c4b5a6978"), "e991a3b5a74f0c251e596824028d3456");
  const access = { role: "guest", may_unlock: true, may_view: false, until_ms: 1767312000000 };
  assert.equal(await inviteAuth(key, "d-1", "0f1e2d3c4b5a6978", access), "0ffadbda1d79eebfbded13e3ffe7827ac555c6e04426a95139a4d27f82aa00df");
  assert.match(newCodeId(), /^[0-9a-f]{16}$/);
});

test("a re-pin proof covers the door, the phone and both fingerprints, as the door checks it", async () => {
  // The same vector as src/pairing/tests.rs `repin_vector_matches_the_phones`.
  const key = await phoneKey(Buffer.from("0123456789abcdef").toString("hex"));
  const next = "C4:19:8E:02:7F:B3:56:DA:21:90:4C:E8:0B:A7:63:1F:5D:C2:38:94:E0:7B:16:AF:49:D3:82:05:6E:B1:FA:27";
  assert.equal(await repinProof(key, "d-1", "p-1", FP, next), "a2168b8b0787511f55764dcdddf8acb78a2c837699c9e2f0a3a6aa02cdda8ca2");
  assert.notEqual(await repinProof(key, "d-1", "p-2", FP, next), await repinProof(key, "d-1", "p-1", FP, next));
});
