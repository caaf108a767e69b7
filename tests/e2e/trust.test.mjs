// Trust: a hub that swaps the door's certificate fingerprint in the offer (a tampering hub,
// played by lib/fake_hub.mjs) cannot get a phone that pinned the door's identity at pairing
// to answer: the phone refuses the call with the identity-changed message and hangs up. A
// door left unpinned (a link without `&fp=`, e.g. an older app's invite) is not checked.
//
// Run: node --test tests/e2e/trust.test.mjs (no Rust needed)

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startFakeHub } from "./lib/fake_hub.mjs";

/** The door's fingerprint as its own pairing link carries it. */
const DOOR_FP = Array.from({ length: 32 }, (_, i) => (i * 7 + 3).toString(16).padStart(2, "0").toUpperCase()).join(":");
/** What a tampering hub (or whoever it relays) presents instead. */
const SWAPPED_FP = DOOR_FP.replace(/^../, "EE");

let hub;
before(async () => {
  hub = await startFakeHub({
    pair: (body) =>
      body?.code === "door-code"
        ? { status: 200, json: { token: "good-token", phone_id: "p-trust", door_id: "d-front" } }
        : { status: 410, json: { error: "code used or expired" } },
  });
});
after(async () => {
  await hub?.close();
});

/** A minimal offer declaring `fp` as the DTLS certificate's fingerprint. */
function offer(fp) {
  return [
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "c=IN IP4 0.0.0.0",
    "a=ice-ufrag:abcd",
    "a=ice-pwd:abcdefghijklmnopqrstuvwx",
    `a=fingerprint:sha-256 ${fp}`,
    "a=setup:actpass",
    "a=mid:0",
    "a=sendonly",
    "a=rtcp-mux",
    "a=rtpmap:96 H264/90000",
    "",
  ].join("\r\n");
}

test("an offer whose fingerprint is not the pinned door's is refused: 'this door's identity changed'", async () => {
  const phone = await launchPhone({ name: "pinned" });
  try {
    const { page } = phone;
    await openPairingLink(page, `${hub.url}/#pair=door-code&door=Front%20door&fp=${DOOR_FP}`);
    await waitForState(page, "idle");
    const pins = await page.evaluate(() => JSON.parse(localStorage.getItem("doorbell.pins")));
    assert.deepEqual(pins, { "d-front": DOOR_FP });
    await hub.waitFor("hello");

    hub.send({ type: "ring", call_id: "c-swap", door_id: "d-front", door_name: "Front door" });
    await waitForState(page, "ringing");
    await page.getByRole("button", { name: "Answer", exact: true }).click();
    await hub.waitFor("answer");
    hub.send({ type: "sdp_offer", call_id: "c-swap", sdp: offer(SWAPPED_FP) });
    await waitForState(page, "ended");
    await page.getByText("This door's identity changed").waitFor();
    const hangUp = await hub.waitFor("hang_up");
    assert.deepEqual(hangUp, { type: "hang_up", call_id: "c-swap", reason: "failed" });
    assert.equal(
      hub.received.some((r) => r.msg.type === "sdp_answer"),
      false,
      "the phone never answered the swapped offer",
    );
  } finally {
    await phone.close();
  }
});
