// @ts-check
// This phone's own DTLS certificate: made once, kept in IndexedDB, and given to every call's
// RTCPeerConnection, so the door sees the same fingerprint call after call. It is the phone's
// identity that the door pins at pairing (pairing-proof.js, docs/SECURITY-MODEL.md).
// A month before it ends it is renewed: each door is asked to re-pin the new one with a proof
// under the key it shares with this phone (renewCertificate), and the new one replaces the old
// once every door did.

import { certFingerprint } from "./pairing-proof.js";

/** Its own database: push.js and sw.js share "doorbell" (version 1, without this store). */
const DB_NAME = "doorbell-keys";
const DB_VERSION = 1;
const STORE = "keys";
const KEY = "dtls";
/** Browsers cap a generated certificate's life (Chromium at a year); ask for that. */
export const CERT_LIFETIME_MS = 365 * 24 * 3600 * 1000;
/** Renew this long before the end, so no call ever starts with an expired certificate. */
export const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/** Whether a certificate ending at `expires` (ms) must be replaced at `now`. @param {number} expires @param {number} now */
export const needsRenewal = (expires, now) => !(expires - now > RENEW_BEFORE_MS);

/** @returns {Promise<IDBDatabase>} */
function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * One request on the key store. @param {IDBDatabase} db @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest} op @returns {Promise<any>}
 */
function request(db, mode, op) {
  return new Promise((resolve, reject) => {
    /** @type {IDBTransaction} */
    let tx;
    try {
      tx = db.transaction(STORE, mode);
    } catch (e) {
      reject(e);
      return;
    }
    const req = op(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = tx.onabort = () => reject(tx.error ?? req.error);
  });
}

/** The renewed certificate while doors are still asked to pin it, and the doors that did. */
const NEXT = "dtls-next";
const MOVED = "dtls-moved";

/**
 * @typedef {{current: RTCCertificate | null, next: RTCCertificate | null, moved: string[]}} CertState
 * `current`: the certificate the doors pinned; `next`: its renewal, once made; `moved`: the
 * doors that re-pinned to `next` (they refuse `current` from then on).
 */

/**
 * The certificate a call with `doorId` shows: during a renewal, the new one only to doors that
 * pinned it already, the old one to the others. @param {CertState} state @param {string} doorId
 */
export const certificateChoice = (state, doorId) =>
  state.next && state.moved.includes(doorId) ? state.next : state.current;

/**
 * A renewal's next step: which doors to ask to re-pin, and whether the new certificate may
 * replace the old one, which is only once every door has pinned it.
 * @param {string[]} doors every door this phone is paired with @param {string[]} moved
 */
export function renewalStep(doors, moved) {
  const ask = doors.filter((d) => !moved.includes(d));
  return { ask, switchNow: ask.length === 0 };
}

/** @type {Promise<CertState> | null} one load per page: pairing, calls and renewal share it */
let loading = null;

/** @returns {Promise<CertState>} */
function certState() {
  loading ??= loadOrMake();
  return loading;
}

/**
 * This phone's certificate, made on first use (ECDSA P-256, as browsers make by default).
 * Null where the browser cannot make one: calls then use a fresh certificate each, as before.
 * Where it cannot be stored (no IndexedDB, private mode) it lasts for this page only.
 * One load per page, so two callers never make two certificates (the door pins the one
 * proven at pairing).
 * @returns {Promise<RTCCertificate | null>}
 */
export async function phoneCertificate() {
  return (await certState()).current;
}

/** The certificate to show `doorId` (see certificateChoice). @param {string} doorId */
export async function certificateFor(doorId) {
  return certificateChoice(await certState(), doorId);
}

/** @param {IDBDatabase | null} db @param {string} key @param {any} value */
async function keep(db, key, value) {
  if (!db) return;
  await request(db, "readwrite", (s) => (value == null ? s.delete(key) : s.put(value, key))).catch((e) =>
    console.warn("doorbell: cannot keep the certificate:", e?.message || e),
  );
}

/** @returns {Promise<RTCCertificate | null>} */
function make() {
  /** @type {any} EcKeyGenParams plus the certificate's life, as RTCPeerConnection takes it */
  const params = { name: "ECDSA", namedCurve: "P-256", expires: CERT_LIFETIME_MS };
  return RTCPeerConnection.generateCertificate(params).catch(() => null);
}

/** @returns {Promise<IDBDatabase | null>} */
const openOrNull = () =>
  openDb().catch((e) => {
    console.warn("doorbell: no stored certificate:", e?.message || e);
    return null;
  });

/** @returns {Promise<CertState>} */
async function loadOrMake() {
  if (typeof RTCPeerConnection === "undefined" || !RTCPeerConnection.generateCertificate) {
    return { current: null, next: null, moved: [] };
  }
  const db = await openOrNull();
  const get = (/** @type {string} */ key) => (db ? request(db, "readonly", (s) => s.get(key)).catch(() => null) : null);
  const [kept, next, moved] = [await get(KEY), await get(NEXT), await get(MOVED)];
  const now = Date.now();
  const usable = (/** @type {any} */ c) => c instanceof RTCCertificate && c.expires > now;
  /** @type {CertState} */
  const state = { current: kept, next: usable(next) ? next : null, moved: Array.isArray(moved) ? moved : [] };
  if (!usable(kept)) {
    // The old one ended (or there is none): its renewal if made, else a fresh one. Doors that
    // did not re-pin in the month of margin refuse it; the phone pairs with them again.
    state.current = state.next ?? (await make());
    Object.assign(state, { next: null, moved: [] });
    await keep(db, KEY, state.current);
    await keep(db, NEXT, null);
    await keep(db, MOVED, null);
  }
  db?.close();
  return state;
}

/**
 * Renews the kept certificate when it is due (a month before its end): makes the new one but
 * keeps showing the old one, asks each door in `doors` to re-pin (`ask` resolves true once the
 * door pinned the new fingerprint), and replaces the old one only once every door did. A door
 * that is offline is asked again on a later call (each welcome, so each page load); the old
 * one stays until then, or until it ends (loadOrMake). Resolves "kept" (not due),
 * "pending" (some door still to ask) or "renewed".
 * @param {string[]} doors every door this phone is paired with
 * @param {(doorId: string, oldFp: string, newFp: string) => Promise<boolean>} ask
 * @returns {Promise<"kept" | "pending" | "renewed">}
 */
export async function renewCertificate(doors, ask) {
  const state = await certState();
  const old = state.current;
  if (!old || !needsRenewal(old.expires, Date.now())) return "kept";
  const db = await openOrNull();
  try {
    if (!state.next) {
      state.next = await make();
      state.moved = [];
      await keep(db, NEXT, state.next);
      await keep(db, MOVED, null);
    }
    const next = state.next;
    const [oldFp, newFp] = [certFingerprint(old), next && certFingerprint(next)];
    if (!oldFp || !newFp) return "kept";
    for (const door of renewalStep(doors, state.moved).ask) {
      if (await ask(door, oldFp, newFp).catch(() => false)) {
        state.moved = [...state.moved, door];
        await keep(db, MOVED, state.moved);
      }
    }
    if (!renewalStep(doors, state.moved).switchNow) return "pending";
    Object.assign(state, { current: next, next: null, moved: [] });
    await keep(db, KEY, next);
    await keep(db, NEXT, null);
    await keep(db, MOVED, null);
    return "renewed";
  } finally {
    db?.close();
  }
}
