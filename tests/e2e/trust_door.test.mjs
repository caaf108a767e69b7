// Trust, at a real door: only the door admits a phone, and only the certificate it pinned gets
// a call. A hub (or anyone) that does not know a pairing code's secret cannot make the proof
// the door checks, so its forged pairing is refused; a phone with a valid token but another
// certificate (a copy of the token in another browser, or a phone a compromised hub admitted)
// answers a ring and is refused by the door: no media, no unlock. Nor does an answer that
// names the pinned certificate but comes from a peer holding another (what a hub relaying its
// own peer's answer would send): the door checks the certificate of the DTLS handshake.
//
// Needs the debug binaries: `cargo build --workspace --bins`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";
import { doorCodeFrom, pairingProof } from "../../web/pairing-proof.js";

let system;
const phones = [];

before(async () => {
  system = await startSystem();
});

after(async () => {
  for (const phone of phones) await phone.close();
  await system?.stop();
});

/** A door-made link's code, as the hub would see it relayed (id only) and the phone holds it. */
const codeOf = (link) => doorCodeFrom(new URL(link).hash.replace("#pair=", "").split("&")[0]);

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => (200 - i).toString(16).toUpperCase()).join(":");

async function postPair(body) {
  const res = await fetch(`${system.baseUrl}/api/pair`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

test("a pairing proof made without the code's secret is refused by the door, and uses nothing up", async () => {
  const link = await system.pairingUrl();
  const code = codeOf(link);
  assert.ok(code, `not a door-made link: ${link}`);
  // What a forging hub knows: the door, the code id, any fingerprint it likes. Not the secret.
  const forged = await postPair({
    door_id: code.doorId,
    code_id: code.codeId,
    fingerprint: FINGERPRINT,
    proof: await pairingProof("00".repeat(16), code.doorId, code.codeId, FINGERPRINT),
  });
  assert.equal(forged.status, 403, JSON.stringify(forged.body));
  assert.match(forged.body.error, /^bad_proof: the door refused/);
  // A proof for the real secret but another certificate than the one it was made for.
  const good = await pairingProof(code.secretHex, code.doorId, code.codeId, FINGERPRINT);
  const swapped = await postPair({
    door_id: code.doorId,
    code_id: code.codeId,
    fingerprint: FINGERPRINT.replace(/^../, "00"),
    proof: good,
  });
  assert.equal(swapped.status, 403);
  assert.match(swapped.body.error, /^bad_proof/);
  // An id the door never made.
  const unknown = await postPair({ door_id: code.doorId, code_id: "0123456789abcdef", fingerprint: FINGERPRINT, proof: good });
  assert.equal(unknown.status, 403);
  assert.match(unknown.body.error, /^unknown_code/);
  assert.match(system.doorLog(), /pairing refused/);

  // The real phone still pairs with the same link: the forgeries consumed nothing.
  const phone = await launchPhone({ name: "owner" });
  phones.push(phone);
  await openPairingLink(phone.page, link);
  await waitForState(phone.page, "idle");
  await phone.page.getByText("Front door").first().waitFor();
  // The link works once.
  const again = await postPair({ door_id: code.doorId, code_id: code.codeId, fingerprint: FINGERPRINT, proof: good });
  assert.equal(again.status, 403);
  assert.match(again.body.error, /^used/);
});

test("a valid token with another certificate answers and is refused by the door: no call, no unlock", async () => {
  const owner = phones[0];
  assert.ok(owner, "the first test pairs the owner");
  const stolen = await owner.page.evaluate(() => ({
    token: localStorage.getItem("doorbell.token"),
    phoneId: localStorage.getItem("doorbell.phone_id"),
    pins: localStorage.getItem("doorbell.pins"),
  }));
  assert.ok(stolen.token, "the owner has a token");
  // Another browser with the owner's token (its own, fresh IndexedDB certificate): what a
  // copied token or a phone admitted by a compromised hub looks like to the door.
  const copy = await launchPhone({
    name: "copy",
    initArg: stolen,
    initScript: (s) => {
      if (!localStorage.getItem("doorbell.token")) {
        localStorage.setItem("doorbell.token", s.token);
        localStorage.setItem("doorbell.phone_id", s.phoneId);
        if (s.pins) localStorage.setItem("doorbell.pins", s.pins);
      }
    },
  });
  phones.push(copy);
  await copy.page.goto(system.baseUrl + "/");
  await waitForState(copy.page, "idle");
  const ownFp = await owner.page.evaluate(async () => {
    const { phoneCertificate } = await import("/phone-cert.js");
    return (await phoneCertificate()).getFingerprints()[0].value.toUpperCase();
  });
  const copyFp = await copy.page.evaluate(async () => {
    const { phoneCertificate } = await import("/phone-cert.js");
    return (await phoneCertificate()).getFingerprints()[0].value.toUpperCase();
  });
  assert.notEqual(copyFp, ownFp, "the copy has a certificate of its own");

  const before = await system.status();
  assert.equal(await system.press(), "ok");
  await waitForState(copy.page, "ringing", 20_000);
  await copy.page.getByRole("button", { name: "Answer", exact: true }).click();
  const ended = await system.waitForStatus(
    (s) => s.state === "idle" && s.calls_ended > before.calls_ended,
    "the refused call ended",
    40_000,
  );
  assert.equal(ended.last_call.outcome, "failed");
  assert.equal(ended.unlocks, before.unlocks);
  assert.equal(ended.relay_pulses, before.relay_pulses);
  assert.match(system.doorLog(), /refusing the call: this phone's certificate is not the one the door pinned/);
  assert.notEqual(await copy.page.evaluate(() => document.body.dataset.state), "in-call");

  // The pinned certificate still gets its call.
  await waitForState(owner.page, "idle", 30_000);
  assert.equal(await system.press(), "ok");
  await waitForState(owner.page, "ringing", 20_000);
  await owner.page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(owner.page, "in-call", 40_000);
  await owner.page.getByRole("button", { name: "Hang up", exact: true }).click();
  await system.waitForStatus((s) => s.state === "idle", "idle after the pinned call");
});

test("an answer that names the pinned certificate but is made with another is refused by the DTLS handshake", async () => {
  const owner = phones[0];
  const ownFp = await owner.page.evaluate(async () => {
    const { phoneCertificate } = await import("/phone-cert.js");
    return (await phoneCertificate()).getFingerprints()[0].value.toUpperCase();
  });
  const stolen = await owner.page.evaluate(() => ({
    token: localStorage.getItem("doorbell.token"),
    phoneId: localStorage.getItem("doorbell.phone_id"),
  }));
  // A compromised hub relaying its own peer's answer with the pinned fingerprint written in:
  // played by a browser that rewrites its outgoing answers.
  const forger = await launchPhone({
    name: "forger",
    initArg: { ...stolen, fp: ownFp },
    initScript: (s) => {
      if (!localStorage.getItem("doorbell.token")) {
        localStorage.setItem("doorbell.token", s.token);
        localStorage.setItem("doorbell.phone_id", s.phoneId);
      }
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (data) {
        if (typeof data === "string" && data.includes('"sdp_answer"')) {
          const msg = JSON.parse(data);
          msg.sdp = msg.sdp.replace(/a=fingerprint:sha-256 \S+/gi, `a=fingerprint:sha-256 ${s.fp}`);
          data = JSON.stringify(msg);
        }
        return send.call(this, data);
      };
    },
  });
  phones.push(forger);
  await forger.page.goto(system.baseUrl + "/");
  await waitForState(forger.page, "idle");
  await waitForState(owner.page, "idle", 30_000);
  const before = await system.status();
  assert.equal(await system.press(), "ok");
  await waitForState(forger.page, "ringing", 20_000);
  await forger.page.getByRole("button", { name: "Answer", exact: true }).click();
  const ended = await system.waitForStatus(
    (s) => s.state === "idle" && s.calls_ended > before.calls_ended,
    "the forged call ended",
    40_000,
  );
  assert.equal(ended.last_call.outcome, "failed", system.doorLog().slice(-3000));
  assert.equal(ended.unlocks, before.unlocks);
  assert.match(system.doorLog(), /DTLS certificate \S+ is not the one its answer names/);
});

test("an owner's invite is authorised by the door: the hub cannot mint one, the invited phone gets calls", async () => {
  const owner = phones[0];
  const token = await owner.page.evaluate(() => localStorage.getItem("doorbell.token"));
  const doorId = (await owner.page.evaluate(() => window.doorbell.doors[0].door_id));
  const invites = (body) =>
    fetch(`${system.baseUrl}/api/doors/${doorId}/invites`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
  // What a hub (or anyone with the owner's token but not its key) can send: refused.
  const forged = await invites({ role: "member", code_id: "0123456789abcdef", auth: "00".repeat(32) });
  assert.equal(forged.status, 403, JSON.stringify(forged.body));
  assert.match(forged.body.error, /^bad_proof/);

  // The owner invites in the app; a new phone opens the link and pairs.
  await waitForState(owner.page, "idle", 30_000);
  await owner.page.locator("button[data-household]").click();
  await waitForState(owner.page, "household");
  await owner.page.locator("#invite-form button[type=submit]").click();
  await owner.page.locator("#invite-result").waitFor();
  const link = await owner.page.locator("#invite-link").inputValue();
  assert.match(link, /#pair=d-[0-9a-f]+\.[0-9a-f]{16}\.[0-9a-f]{32}&door=/);
  await owner.page.getByRole("button", { name: "Back" }).click();
  const invited = await launchPhone({ name: "invited" });
  phones.push(invited);
  await openPairingLink(invited.page, link);
  await waitForState(invited.page, "idle");
  await invited.page.getByText("Front door").first().waitFor();
  assert.match(system.doorLog(), /an owner made an invite/);

  // The door pinned it: its call connects.
  assert.equal(await system.press(), "ok");
  await waitForState(invited.page, "ringing", 20_000);
  await invited.page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(invited.page, "in-call", 40_000);
  await invited.page.getByRole("button", { name: "Hang up", exact: true }).click();
  await system.waitForStatus((s) => s.state === "idle", "idle after the invited phone's call");
});

test("unlock an owner turns on is granted at the door only with the owner's authorisation", async () => {
  const owner = phones[0];
  // An invite without unlock: the door pins the new phone with no unlock.
  await waitForState(owner.page, "idle", 30_000);
  await owner.page.locator("button[data-household]").click();
  await waitForState(owner.page, "household");
  await owner.page.locator("#invite-unlock").uncheck();
  await owner.page.locator("#invite-form button[type=submit]").click();
  await owner.page.locator("#invite-result").waitFor();
  const link = await owner.page.locator("#invite-link").inputValue();
  const guest = await launchPhone({ name: "no-unlock" });
  phones.push(guest);
  await openPairingLink(guest.page, link);
  await waitForState(guest.page, "idle");
  const guestId = await guest.page.evaluate(() => localStorage.getItem("doorbell.phone_id"));

  // The owner turns unlock on: the hub applies it and relays the owner's grant to the door.
  const row = owner.page.locator(`#household-list li[data-phone-id="${guestId}"]`);
  await row.getByLabel("May unlock").check();
  await guest.page.waitForFunction(() => window.doorbell.doors[0]?.access?.may_unlock === true, null, { timeout: 5_000 });
  await system.waitForStatus(() => /an owner raised a phone's permissions/.test(system.doorLog()), "the door applied the grant", 10_000);
  await owner.page.getByRole("button", { name: "Back" }).click();

  const before = await system.status();
  assert.equal(await system.press(), "ok");
  await waitForState(guest.page, "ringing", 20_000);
  await guest.page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(guest.page, "in-call", 40_000);
  await guest.page.locator("#btn-unlock").click();
  await system.waitForStatus((s) => s.unlocks === before.unlocks + 1, "the granted unlock");
  await guest.page.getByRole("button", { name: "Hang up", exact: true }).click();
  await system.waitForStatus((s) => s.state === "idle", "idle after the granted call");
});
