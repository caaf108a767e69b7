// @ts-check
/// <reference lib="webworker" />
// The phone app's service worker, at the root scope (/sw.js). A classic script on purpose:
// module service workers are not yet everywhere the app must install.
//
// - Keeps the app shell in a cache, so the app opens without the hub (and then says "Hub
//   unreachable, reconnecting") instead of the browser's error page. The network comes first,
//   so a new hub version reaches phones at once; the cache answers when the hub does not.
// - Shows a call-like notification for each `ring` push (docs/PROTOCOL.md "Web Push"), turns it
//   into "Missed call from …" or closes it on `ring_ended`, and opens the app into answering
//   the call (tap, Answer) or declines it without opening the app (Decline).

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

/** Cache of the app shell; a new name drops the old entries at activation. */
const SHELL_CACHE = "doorbell-shell-v1";
/** Everything the app needs to start (web/ minus sw.js and the tests). */
const SHELL = [
  "/",
  "/style.css",
  "/app.js",
  "/state.js",
  "/view-state.js",
  "/render.js",
  "/call.js",
  "/preview.js",
  "/hub-link.js",
  "/ringer.js",
  "/pairing.js",
  "/push.js",
  "/protocol.js",
  "/history.js",
  "/household.js",
  "/pin.js",
  "/phone-cert.js",
  "/pairing-proof.js",
  "/qr.js",
  "/qrcode-generator.mjs",
  "/quiet.js",
  "/replies.js",
  "/manifest.webmanifest",
  "/icon-192.png",
  "/icon-512.png",
  "/icon-maskable-512.png",
  "/apple-touch-icon.png",
];
/** A hub that has not answered within this long is treated as unreachable. */
const NETWORK_TIMEOUT_MS = 4000;
/** Declining without the app: the whole WebSocket exchange must end within this long. */
const DECLINE_TIMEOUT_MS = 10000;
/** The hub sends a ringing call right after `welcome`; none by then means the ring is over. */
const LATE_RING_MS = 1500;
/** IndexedDB where the page keeps the phone token for this worker (push.js). */
const DB_NAME = "doorbell";
const DB_STORE = "kv";
const PROTOCOL_VERSION = 1; // protocol.js PROTOCOL_VERSION (a classic worker cannot import it)

sw.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== SHELL_CACHE) await caches.delete(name);
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== sw.location.origin) return;
  // The app's page (at any fragment) and its files; APIs, snapshots and anything else the
  // hub serves go to the network untouched, and never into the cache.
  const page = url.pathname === "/" || url.pathname === "/index.html";
  if (!page && !SHELL.includes(url.pathname)) return;
  event.respondWith(networkFirst(req, page ? "/" : url.pathname));
});

/**
 * The hub's answer (kept in the cache), or the cached copy when the hub fails or is slow.
 * @param {Request} req @param {string} key the cache entry ("/" for the page, however addressed)
 */
async function networkFirst(req, key) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const res = await withTimeout(fetch(req), NETWORK_TIMEOUT_MS);
    if (res.ok) await cache.put(key, res.clone());
    return res;
  } catch (e) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw e;
  }
}

/** @template T @param {Promise<T>} promise @param {number} ms @returns {Promise<T>} */
function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Push

/** One notification per door: a new ring of the same door replaces it. @param {string} doorId */
const tagFor = (doorId) => `ring:${doorId}`;

/** "14:02" in the phone's locale, 24-hour. @param {number} atMs */
function clockTime(atMs) {
  return new Date(atMs).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

sw.addEventListener("push", (event) => {
  let msg;
  try {
    msg = event.data?.json();
  } catch {
    msg = null;
  }
  if (!msg || typeof msg.type !== "string") return;
  if (msg.type === "ring") event.waitUntil(onRing(msg));
  else if (msg.type === "ring_ended") event.waitUntil(onRingEnded(msg));
  else if (msg.type === "voice_message") event.waitUntil(onVoiceMessage(msg));
});

/**
 * A visitor left a voice message: a quiet notification (nobody needs to run to the door);
 * tapping it opens the app, whose history plays it.
 * @param {any} msg
 */
async function onVoiceMessage(msg) {
  if (typeof msg.door_id !== "string") return;
  const doorName = typeof msg.door_name === "string" && msg.door_name ? msg.door_name : "Door";
  const at = Number.isSafeInteger(msg.at_ms) ? msg.at_ms : Date.now();
  await sw.registration.showNotification(`Voice message from ${doorName}`, {
    body: `left at ${clockTime(at)}`,
    tag: `voice:${msg.door_id}:${at}`,
    silent: true,
    icon: "/icon-192.png",
    data: { kind: "voice", door_id: msg.door_id, at_ms: at },
  });
}

/** @param {any} msg */
async function onRing(msg) {
  if (typeof msg.call_id !== "string" || typeof msg.door_id !== "string") return;
  // The open, visible app rings by itself (it got the same ring over its WebSocket): once.
  const visible = await appVisible();
  noteRing(msg.call_id, visible ? "app visible" : "shown");
  if (visible) return;
  const doorName = typeof msg.door_name === "string" && msg.door_name ? msg.door_name : "Door";
  /** @type {NotificationOptions & {image?: string, renotify?: boolean, actions?: {action: string, title: string}[]}} */
  const options = {
    body: "is ringing",
    tag: tagFor(msg.door_id),
    renotify: true,
    requireInteraction: true,
    icon: "/icon-192.png",
    data: {
      kind: "ring",
      call_id: msg.call_id,
      door_id: msg.door_id,
      door_name: doorName,
      at_ms: Number.isSafeInteger(msg.at_ms) ? msg.at_ms : Date.now(),
    },
    actions: [
      { action: "answer", title: "Answer" },
      { action: "decline", title: "Decline" },
    ],
  };
  if (typeof msg.snapshot === "string" && msg.snapshot) options.image = msg.snapshot;
  await sw.registration.showNotification(doorName, options);
}

/** How many ring decisions the worker keeps. */
const RING_NOTES = 8;
/**
 * The worker's last ring decisions, newest last: whether each ring push was shown or left to
 * the visible app. Kept for inspecting the worker (DevTools, chrome://serviceworker-internals)
 * and for the e2e tests, which otherwise cannot tell "not shown" from "not handled yet".
 * @type {{call_id: string, decision: string}[]}
 */
const ringNotes = [];
/** @param {string} callId @param {string} decision */
function noteRing(callId, decision) {
  ringNotes.push({ call_id: callId, decision });
  if (ringNotes.length > RING_NOTES) ringNotes.shift();
  /** @type {any} */ (sw).ringNotes = ringNotes;
}

/**
 * The ring is over: answered or declined (nothing left to do) closes the notification; any
 * other end (timed out, cancelled, the door went offline) leaves a missed call in its place.
 * @param {any} msg
 */
async function onRingEnded(msg) {
  const shown = await sw.registration.getNotifications();
  for (const n of shown) {
    const data = n.data || {};
    if (data.kind !== "ring" || data.call_id !== msg.call_id) continue;
    n.close();
    if (msg.reason === "answered" || msg.reason === "declined") continue;
    await sw.registration.showNotification(`Missed call from ${data.door_name}, ${clockTime(data.at_ms)}`, {
      tag: n.tag,
      icon: "/icon-192.png",
      data: { kind: "missed", door_id: data.door_id, at_ms: data.at_ms },
    });
  }
}

/** Whether a window of the app is open and visible. */
async function appVisible() {
  const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
  return windows.some((w) => w.visibilityState === "visible");
}

sw.addEventListener("notificationclick", (event) => {
  event.waitUntil(onNotificationClick(event.notification, event.action));
});

/**
 * Tap or Answer: open (or focus) the app straight into answering the call. Decline: decline it
 * without opening the app. A missed call: open the app.
 * Exposed on `self` so tests can run it (a notification cannot be clicked through CDP).
 * @param {Notification} notification @param {string} action
 */
async function onNotificationClick(notification, action) {
  const data = notification.data || {};
  notification.close();
  if (data.kind === "ring" && action === "decline") return declineCall(data.call_id);
  return openApp(data.kind === "ring" ? data.call_id : null);
}
/** @type {any} */ (sw).onNotificationClick = onNotificationClick;

/** The app's address that answers `callId` as soon as its ring arrives. @param {string | null} callId */
function appUrl(callId) {
  return callId ? `/#answer=${encodeURIComponent(callId)}` : "/";
}

/** @param {string | null} callId */
async function openApp(callId) {
  const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
  const win = windows[0];
  if (!win) return sw.clients.openWindow(appUrl(callId));
  // An open app answers on this message; focus() may be refused without a user gesture.
  if (callId) win.postMessage({ type: "answer", call_id: callId });
  return win.focus().catch(() => win);
}

/** @returns {Promise<string | null>} the phone token the page stored for this worker */
function readToken() {
  return new Promise((resolve) => {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(DB_STORE);
    open.onerror = () => resolve(null);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(DB_STORE, "readonly");
      const get = tx.objectStore(DB_STORE).get("token");
      get.onsuccess = () => resolve(typeof get.result === "string" ? get.result : null);
      get.onerror = () => resolve(null);
      tx.oncomplete = tx.onerror = () => db.close();
    };
  });
}

/**
 * Declines `callId` the way the app does: over the hub's WebSocket (hello, welcome, decline).
 * The hub rings every phone connection that joins during a ring, so this one is rung and then
 * declines; the door stops ringing when every phone rung (open page or push) has declined.
 * @param {string} callId
 */
async function declineCall(callId) {
  const token = await readToken();
  if (!token) return;
  const url = sw.location.origin.replace(/^http/, "ws") + "/ws";
  await new Promise((resolve) => {
    const ws = new WebSocket(url);
    const done = () => {
      clearTimeout(timer);
      try {
        ws.close(1000);
      } catch {}
      resolve(undefined);
    };
    let timer = setTimeout(done, DECLINE_TIMEOUT_MS);
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", protocol_version: PROTOCOL_VERSION, token }));
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === "welcome") {
        clearTimeout(timer);
        timer = setTimeout(done, LATE_RING_MS);
      } else if (msg.type === "ring" && msg.call_id === callId) {
        // close() sends the decline first: frames leave in order.
        ws.send(JSON.stringify({ type: "decline", call_id: callId }));
        done();
      } else if (msg.type === "error") {
        done();
      }
    };
    ws.onerror = ws.onclose = done;
  });
}
