// The whole Web Push chain (issue 9) through the real hub: the app's own "Enable notifications"
// fetches the hub's VAPID key and registers a subscription with the real hub; a press at the
// real door makes the hub send an encrypted, VAPID-signed push to a mock push service
// (lib/push_service.mjs), which checks the headers and the signature and decrypts the body per
// RFC 8291 with the subscription's private key; the decrypted bytes then go to the app's
// service worker (CDP `ServiceWorker.deliverPushMessage`, as a browser's push service would),
// which shows the notification. Only PushManager.subscribe/getSubscription are stubbed
// (headless Chromium has no push service offline), with keys the test holds.
// Needs `cargo build --workspace --bins`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { PushSubscriptionKeys, startPushService, verifyVapid } from "./lib/push_service.mjs";
import { startSystem } from "./lib/system.mjs";
import { appWorker, deliverPush, shownNotifications, until } from "./lib/worker.mjs";

const HUB_CONFIG = '[push]\nvapid_subject = "mailto:test@doorbell.invalid"\nallow_insecure_endpoints = ["127.0.0.1"]\n';

let pushService;
let system;
let phone;
let hubKey;
const keys = new PushSubscriptionKeys();
let endpoint;
let token;

before(async () => {
  pushService = await startPushService();
  endpoint = pushService.url("/push/phone-1");
  system = await startSystem({ hubConfig: HUB_CONFIG });
  const keyRes = await fetch(`${system.baseUrl}/api/push/key`);
  assert.equal(keyRes.status, 200);
  hubKey = (await keyRes.json()).vapid_public_key;
  phone = await launchPhone({ name: "push-chain", initScript: stubSubscription, initArg: { endpoint, keys: keys.json() } });
  await phone.browserContext.grantPermissions(["notifications"], { origin: system.baseUrl });
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
  await phone.page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15_000 });
  token = await phone.page.evaluate(() => localStorage.getItem("doorbell.token"));
});

after(async () => {
  await phone?.close();
  await pushService?.close();
  const exit = await system?.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, system?.logs());
});

// Runs in the page before the app: the browser's push service is the only thing replaced.
// The subscription's keys are real (the test holds the private half); everything else, the
// hub's key and the hub's endpoints included, is the app's own code against the real hub.
// A browser keeps its subscription across page loads: so does the stub (in localStorage).
function stubSubscription({ endpoint, keys }) {
  const FLAG = "test.subscribed";
  const subscription = {
    endpoint,
    expirationTime: null,
    toJSON: () => ({ endpoint, expirationTime: null, keys }),
    unsubscribe: async () => (localStorage.removeItem(FLAG), true),
  };
  PushManager.prototype.subscribe = async function (options) {
    window.__subscribeKey = Array.from(new Uint8Array(options.applicationServerKey));
    localStorage.setItem(FLAG, "1");
    return subscription;
  };
  PushManager.prototype.getSubscription = async () => (localStorage.getItem(FLAG) ? subscription : null);
}

/** Checks a push request as a push service and its receiving browser would; returns the payload. */
function openPush(req, subscriptionKeys = keys) {
  assert.equal(req.method, "POST");
  verifyVapid(req.headers.authorization, hubKey, pushService.origin);
  assert.equal(req.headers["content-encoding"], "aes128gcm");
  assert.equal(req.headers.urgency, "high");
  assert.match(req.headers.topic ?? "", /^[A-Za-z0-9_-]{32}$/, "Topic: 32 base64url characters");
  assert.match(req.headers.ttl ?? "", /^\d+$/, "a TTL header");
  const text = subscriptionKeys.decrypt(req.body).toString("utf8");
  return { payload: JSON.parse(text), text, ttl: Number(req.headers.ttl), topic: req.headers.topic };
}

/** The next push of `type` for `callId` to `path`, opened. */
async function nextPush(path, type, callId, subscriptionKeys = keys) {
  const req = await pushService.next(
    (r) => {
      const p = r.path === path && openPushSafe(r, subscriptionKeys)?.payload;
      return p && p.type === type && p.call_id === callId;
    },
    `${type} push for ${callId} to ${path}`,
  ).catch((e) => {
    // Say why the requests that did arrive were not it (a decryption or signature failure).
    const why = pushService.received.filter((r) => r.path === path).map((r) => {
      try {
        return JSON.stringify(openPush(r, subscriptionKeys).payload);
      } catch (err) {
        return `unreadable: ${err.message}`;
      }
    });
    throw new Error(`${e.message}\nrequests to ${path}: ${why.join("; ") || "none"}\n${system.logs()}`);
  });
  return openPush(req, subscriptionKeys);
}

function openPushSafe(r, subscriptionKeys) {
  try {
    return openPush(r, subscriptionKeys);
  } catch {
    return null;
  }
}

const worker = () => appWorker(phone);
const notifications = () => shownNotifications(phone);
/** Delivers `data` (the decrypted push text) to the app's worker. */
const deliver = (data) => deliverPush(phone, system.baseUrl, data);

/** Per delivery: how long a shown notification may take to be listed. */
const SHOW_WAIT_MS = 3_000;
/** Deliveries of one push before giving up (see deliverUntil). */
const DELIVERIES = 4;

/**
 * Delivers `data` to the worker until `found(notifications)` holds; returns its value.
 * Headless Chromium (Debian 156) now and then lists no notification after the worker's
 * showNotification() resolved (seen in about 1 run of 4, with the push event received and
 * nothing closing it), so a push whose notification is not listed is delivered again, as a
 * push service redelivers: the worker's handling is idempotent (one tag per door).
 */
async function deliverUntil(data, found, what) {
  for (let attempt = 1; ; attempt++) {
    await deliver(data);
    try {
      return await until(async () => found(await notifications()), what, SHOW_WAIT_MS);
    } catch (e) {
      if (attempt === DELIVERIES) throw new Error(`${e.message} (${DELIVERIES} deliveries of ${data})`);
      process.stderr.write(`# ${what} not listed after delivery ${attempt}: delivering again\n`);
    }
  }
}

test("Enable notifications registers a subscription with the real hub, bound to its key", async () => {
  const page = phone.page;
  const posted = page.waitForResponse((r) => r.url().endsWith("/api/push/subscription") && r.request().method() === "POST", {
    timeout: 15_000,
  });
  await page.getByRole("button", { name: "Enable notifications", exact: true }).click();
  const res = await posted;
  assert.equal(res.status(), 201, "the hub accepted the subscription");
  assert.deepEqual(JSON.parse(res.request().postData()), { endpoint, expirationTime: null, keys: keys.json() });
  await page.getByText("Notifications are on: this phone rings even when the app is closed.").waitFor();
  assert.deepEqual(await page.evaluate(() => window.__subscribeKey), Array.from(Buffer.from(hubKey, "base64url")));
});

test("a press pushes an encrypted ring that the worker shows; its end turns it into a missed call", async () => {
  await phone.page.goto("about:blank");
  // The worker shows nothing while a window of the app is visible (it rings by itself): wait
  // until the worker no longer sees the closed one.
  await until(
    async () =>
      (await worker()).evaluate(async () =>
        (await self.clients.matchAll({ type: "window", includeUncontrolled: true })).every((c) => c.visibilityState !== "visible"),
      ),
    "the worker to see no visible app window",
  );
  const path = new URL(endpoint).pathname;
  assert.equal(await system.press(), "ok");
  const { call_id: callId } = await system.waitForStatus((s) => s.state === "ringing" && s.call_id, "ringing with a call id");

  const ring = await nextPush(path, "ring", callId);
  assert.ok(ring.ttl > 0 && ring.ttl <= 60, `a ring's TTL is at most 60 (got ${ring.ttl})`);
  assert.equal(ring.payload.door_id, system.door.door_id);
  assert.equal(ring.payload.door_name, "Front door");
  assert.ok(Number.isSafeInteger(ring.payload.at_ms) && Math.abs(ring.payload.at_ms - Date.now()) < 60_000, "at_ms is now");
  assert.ok("snapshot" in ring.payload, "a snapshot field");
  assert.ok(ring.text.length < 4096, "well under 4 KiB");

  const shown = await deliverUntil(ring.text, (list) => list.find((n) => n.data?.call_id === callId), "the ring notification");
  assert.equal(shown.title, "Front door");
  assert.equal(shown.body, "is ringing");
  assert.deepEqual(shown.actions, [
    { action: "answer", title: "Answer" },
    { action: "decline", title: "Decline" },
  ]);
  // The notification's image is the snapshot's capability URL, fetched as a notification
  // fetches it: no header, no token. It serves the JPEG the door grabbed at the press.
  assert.equal(shown.image, ring.payload.snapshot, "the notification shows the ring's snapshot");
  assert.match(shown.image, /^https?:\/\//, "an absolute URL");
  const picture = await fetch(shown.image);
  assert.equal(picture.status, 200, `the snapshot URL serves (${picture.status})`);
  assert.equal(picture.headers.get("content-type"), "image/jpeg");
  const jpeg = Buffer.from(await picture.arrayBuffer());
  assert.ok(jpeg.length > 1000 && jpeg[0] === 0xff && jpeg[1] === 0xd8, "a JPEG (SOI marker) of the test pattern");

  // The door gives up (`doorbelld hangup` while ringing): `cancelled`, a missed call.
  assert.equal(await system.hangup(), "ok");
  const ended = await nextPush(path, "ring_ended", callId);
  assert.equal(ended.payload.reason, "cancelled");
  assert.equal(ended.payload.door_name, "Front door");
  assert.equal(ended.ttl, 3600, "a ring_ended's TTL (docs/PROTOCOL.md): an offline phone still learns it missed a call");
  assert.equal(ended.topic, ring.topic, "the same Topic replaces an undelivered ring");
  const missed = await deliverUntil(ended.text, (list) => list.find((n) => n.data?.kind === "missed"), "the missed call");
  assert.match(missed.title, /^Missed call from Front door, \d\d:\d\d$/);
  assert.equal((await notifications()).length, 1, "replaced, not stacked");
  await system.waitForStatus((s) => s.state === "idle", "the door idle after the hang-up");
});

test("Turn off notifications removes the subscription at the hub: the next ring pushes nothing there", async () => {
  const page = phone.page;
  await page.goto(system.baseUrl + "/");
  await waitForState(page, "idle");
  const deleted = page.waitForResponse((r) => r.url().endsWith("/api/push/subscription") && r.request().method() === "DELETE", {
    timeout: 15_000,
  });
  await page.getByRole("button", { name: "Turn off notifications", exact: true }).click();
  assert.equal((await deleted).status(), 204);
  await page.getByRole("button", { name: "Enable notifications", exact: true }).waitFor();

  // A second subscription of the same phone stays: its pushes say when the hub has sent
  // this ring's (and its end's) pushes, so the check below waits on an event, not a clock.
  const sentinelKeys = new PushSubscriptionKeys();
  const sentinel = pushService.url("/push/sentinel");
  const res = await fetch(`${system.baseUrl}/api/push/subscription`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ endpoint: sentinel, expirationTime: null, keys: sentinelKeys.json() }),
  });
  assert.equal(res.status, 201);

  const from = pushService.received.length;
  assert.equal(await system.press(), "ok");
  await waitForState(page, "ringing");
  const { call_id: callId } = await system.waitForStatus((s) => s.state === "ringing" && s.call_id, "ringing with a call id");
  await nextPush("/push/sentinel", "ring", callId, sentinelKeys);
  assert.equal(await system.hangup(), "ok");
  await nextPush("/push/sentinel", "ring_ended", callId, sentinelKeys);
  await waitForState(page, "idle");

  const path = new URL(endpoint).pathname;
  const after = pushService.received.slice(from).filter((r) => r.path === path);
  assert.deepEqual(after.map((r) => `${r.method} ${r.path}`), [], "nothing pushed to the removed subscription");
  assert.deepEqual(phone.consoleErrors, []);
});
