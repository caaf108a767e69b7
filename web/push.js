// @ts-check
// The installable app's page side: registers the service worker (sw.js), says whether this
// phone can ring with the app closed (and if not, why and what to do), subscribes to Web Push
// through the hub (docs/PROTOCOL.md "Web Push"), and keeps the phone token where the worker can
// read it (IndexedDB) to decline a call without opening the app.

import { PushState } from "./state.js";

const DB_NAME = "doorbell"; // sw.js reads the same database
const DB_STORE = "kv";

/** @typedef {import("./state.js").PushView} PushView */

export const PUSH_TEXT = Object.freeze({
  on: "Notifications are on: this phone rings even when the app is closed.",
  off: "While this page is open, this phone rings when a visitor rings. Turn on notifications so it rings when the app is closed too.",
  denied: "Notifications are blocked for this site. Allow them in the browser's site settings, then tap Enable notifications.",
  ipAddress:
    "This phone rings only while this page is open: notifications need the hub's name with a certificate the phone trusts, and this page is at an IP address, which such certificates do not name. Open the hub by its name, or keep the page open.",
  untrusted:
    "This phone rings only while this page is open: notifications need a certificate this phone trusts, and it does not trust the hub's. Open the hub at an address with a trusted certificate, or keep the page open.",
  insecure:
    "This phone rings only while this page is open: notifications need the hub's https address with a certificate the phone trusts, and this page came over plain http. Keep the page open, or open the hub's https address.",
  ios: "This phone rings only while this page is open. On iPhone and iPad, notifications work in the Home Screen app: tap Share, then “Add to Home Screen”, and open Doorbell from there.",
  unsupported: "This browser cannot show doorbell notifications: keep this page open to hear the doorbell.",
  noHubPush: "This hub does not send notifications: keep this page open to hear the doorbell.",
});

/** Whether this is iOS/iPadOS Safari outside the Home Screen (where it has no push). */
function iosBrowserTab() {
  const ua = navigator.userAgent || "";
  const ios = /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
  const standalone = /** @type {any} */ (navigator).standalone === true || matchMedia("(display-mode: standalone)").matches;
  return ios && !standalone;
}

/**
 * An https page at a (non-loopback) IP address: its certificate can only be the hub's own
 * self-signed one, which browsers refuse for service workers even after a click-through.
 */
function ipAddressOverHttps() {
  const host = location.hostname;
  const ip = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith("[");
  const loopback = /^127\./.test(host) || host === "[::1]";
  return location.protocol === "https:" && ip && !loopback;
}

/** @type {Promise<boolean>} whether the service worker is registered */
let worker = Promise.resolve(false);

/** Registers the service worker where there can be one. */
export function registerWorker() {
  if (!window.isSecureContext || !("serviceWorker" in navigator) || ipAddressOverHttps()) return;
  worker = navigator.serviceWorker.register("/sw.js").then(
    () => true,
    (e) => {
      console.warn("doorbell: no service worker:", e?.message || e);
      return false;
    },
  );
}

/** What the idle screen says about notifications now. @returns {Promise<PushView>} */
export async function pushStatus() {
  if (!window.isSecureContext) return { state: PushState.Unavailable, text: PUSH_TEXT.insecure };
  if (ipAddressOverHttps()) return { state: PushState.Unavailable, text: PUSH_TEXT.ipAddress };
  if (iosBrowserTab()) return { state: PushState.Unavailable, text: PUSH_TEXT.ios };
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return { state: PushState.Unavailable, text: PUSH_TEXT.unsupported };
  }
  // Registration fails when the certificate is not trusted (a click-through does not count).
  if (!(await worker)) return { state: PushState.Unavailable, text: PUSH_TEXT.untrusted };
  if (Notification.permission === "denied") return { state: PushState.Denied, text: PUSH_TEXT.denied };
  const reg = await navigator.serviceWorker.getRegistration("/");
  const sub = await reg?.pushManager.getSubscription();
  if (sub && Notification.permission === "granted") return { state: PushState.On, text: PUSH_TEXT.on };
  return { state: PushState.Off, text: PUSH_TEXT.off };
}

/** @param {string} base64url @returns {Uint8Array} */
function fromBase64Url(base64url) {
  const b64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * Asks for permission (call it straight from a tap: browsers require one), subscribes, and
 * registers the subscription with the hub. Returns what to show next.
 * @param {string} token
 * @returns {Promise<PushView>}
 */
export async function enablePush(token) {
  const permission = await Notification.requestPermission();
  if (permission === "denied") return { state: PushState.Denied, text: PUSH_TEXT.denied };
  if (permission !== "granted") return { state: PushState.Off, text: PUSH_TEXT.off };
  const keyRes = await fetch("/api/push/key", { cache: "no-store" });
  if (keyRes.status === 404) return { state: PushState.Unavailable, text: PUSH_TEXT.noHubPush };
  if (!keyRes.ok) throw new Error(`The hub couldn't start notifications (HTTP ${keyRes.status}). Try again.`);
  const { vapid_public_key: key } = await keyRes.json();
  const reg = await navigator.serviceWorker.ready;
  const sub = await reg.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: /** @type {BufferSource} */ (fromBase64Url(String(key))),
  });
  const res = await fetch("/api/push/subscription", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(sub.toJSON()),
  });
  if (!res.ok) {
    await sub.unsubscribe().catch(() => {});
    throw new Error(`The hub refused this phone's notifications (HTTP ${res.status}). Try again.`);
  }
  return { state: PushState.On, text: PUSH_TEXT.on };
}

/** Unsubscribes here and at the hub. @param {string} token @returns {Promise<PushView>} */
export async function disablePush(token) {
  const reg = await navigator.serviceWorker.getRegistration("/");
  const sub = await reg?.pushManager.getSubscription();
  if (sub) {
    await fetch("/api/push/subscription", {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ endpoint: sub.endpoint }),
    }).catch((e) => console.warn("doorbell: cannot tell the hub to stop notifications:", e?.message || e));
    await sub.unsubscribe();
  }
  return { state: PushState.Off, text: PUSH_TEXT.off };
}

/**
 * Keeps the phone token (or its absence) where the service worker reads it.
 * @param {string | null} token
 * @returns {Promise<void>}
 */
export function shareTokenWithWorker(token) {
  if (!("indexedDB" in window)) return Promise.resolve();
  return new Promise((resolve) => {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(DB_STORE);
    open.onerror = () => resolve();
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(DB_STORE, "readwrite");
      if (token) tx.objectStore(DB_STORE).put(token, "token");
      else tx.objectStore(DB_STORE).delete("token");
      tx.oncomplete = tx.onerror = () => {
        db.close();
        resolve();
      };
    };
  });
}

/**
 * This phone answered a ring: its notification (shown while the app was hidden) has nothing
 * left to offer. The same tag as sw.js gives it.
 * @param {string} doorId
 */
export async function closeRingNotification(doorId) {
  if (!("serviceWorker" in navigator)) return;
  const reg = await navigator.serviceWorker.getRegistration("/");
  for (const n of (await reg?.getNotifications({ tag: `ring:${doorId}` })) ?? []) n.close();
}

/** The call to answer, from an address the service worker opened (`/#answer=<call_id>`). */
export function answerFromAddress() {
  const m = /[#&]answer=([^&]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}
