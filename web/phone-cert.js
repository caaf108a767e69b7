// @ts-check
// This phone's own DTLS certificate: made once, kept in IndexedDB, and given to every call's
// RTCPeerConnection, so the door sees the same fingerprint call after call. It is the phone's
// identity that the door pins at pairing (pairing-proof.js, docs/SECURITY-MODEL.md).

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

/** @type {Promise<RTCCertificate | null> | null} one load per page: pairing and calls share it */
let loading = null;

/**
 * This phone's certificate, made on first use (ECDSA P-256, as browsers make by default).
 * Null where the browser cannot make one: calls then use a fresh certificate each, as before.
 * Where it cannot be stored (no IndexedDB, private mode) it lasts for this page only.
 * One promise per page, so two callers never make two certificates (the door pins the one
 * proven at pairing).
 * @returns {Promise<RTCCertificate | null>}
 */
export function phoneCertificate() {
  loading ??= loadOrMake();
  return loading;
}

/** @returns {Promise<RTCCertificate | null>} */
async function loadOrMake() {
  if (typeof RTCPeerConnection === "undefined" || !RTCPeerConnection.generateCertificate) return null;
  /** @type {IDBDatabase | null} */
  let db = null;
  try {
    db = await openDb();
    const kept = await request(db, "readonly", (s) => s.get(KEY));
    if (kept instanceof RTCCertificate && !needsRenewal(kept.expires, Date.now())) {
      db.close();
      return kept;
    }
  } catch (e) {
    console.warn("doorbell: no stored certificate:", /** @type {any} */ (e)?.message || e);
  }
  /** @type {any} EcKeyGenParams plus the certificate's life, as RTCPeerConnection takes it */
  const params = { name: "ECDSA", namedCurve: "P-256", expires: CERT_LIFETIME_MS };
  const cert = await RTCPeerConnection.generateCertificate(params).catch(() => null);
  if (cert && db) {
    await request(db, "readwrite", (s) => s.put(cert, KEY)).catch((e) =>
      console.warn("doorbell: cannot keep the certificate:", e?.message || e),
    );
  }
  db?.close();
  return cert;
}
