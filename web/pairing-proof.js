// @ts-check
// Pairing that the hub cannot subvert, the phone's side. A link made by the door
// (`doorbelld pair`) carries `#pair=<door_id>.<code_id>.<secret>`: the secret stays on the phone
// (a URL's fragment is never sent to the server). The phone proves its persistent DTLS
// certificate (phone-cert.js) to the door with
//   HMAC-SHA256(secret, "doorbell-pair-v1\n" + door_id + "\n" + code_id + "\n" + FINGERPRINT)
// which the hub relays but cannot make, and the door pins that certificate
// (docs/PROTOCOL.md "Pairing", docs/SECURITY-MODEL.md).

const PROOF_LABEL = "doorbell-pair-v1";

/**
 * A door-made code (`d-1a2b.c0ffee….00ff…`): its parts, or null for a hub-made code (hex only).
 * @param {string} code
 * @returns {{doorId: string, codeId: string, secretHex: string} | null}
 */
export function doorCodeFrom(code) {
  const parts = String(code || "").split(".");
  if (parts.length < 3) return null;
  const secretHex = parts.pop() ?? "";
  const codeId = parts.pop() ?? "";
  const doorId = parts.join(".");
  if (!/^[0-9a-f]{32}$/.test(secretHex) || !/^[0-9a-f]{16}$/.test(codeId) || !doorId) return null;
  return { doorId, codeId, secretHex };
}

/** @param {string} hex @returns {Uint8Array<ArrayBuffer>} */
function bytesOf(hex) {
  const out = new Uint8Array(new ArrayBuffer(hex.length / 2));
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {ArrayBuffer} buf */
const hexOf = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * The proof for `fingerprint` (uppercase, colon-separated), hex.
 * @param {string} secretHex @param {string} doorId @param {string} codeId @param {string} fingerprint
 */
export function pairingProof(secretHex, doorId, codeId, fingerprint) {
  return mac(secretHex, `${PROOF_LABEL}\n${doorId}\n${codeId}\n${fingerprint}`);
}

/** The SHA-256 fingerprint of `cert`, uppercase; null if the browser gives none. @param {RTCCertificate} cert */
export function certFingerprint(cert) {
  const fp = cert.getFingerprints().find((f) => f.algorithm === "sha-256");
  return fp?.value ? fp.value.toUpperCase() : null;
}

/** HMAC-SHA256 of `text` under the key `keyHex`. @param {string} keyHex @param {string} text */
async function mac(keyHex, text) {
  const key = await crypto.subtle.importKey("raw", bytesOf(keyHex), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hexOf(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text)));
}

/**
 * The key this phone and the door share from pairing on (the door derives the same): an
 * owner authorises invites with it. @param {string} secretHex the pairing code's secret
 */
export const phoneKey = (secretHex) => mac(secretHex, "doorbell-phone-key-v1");

/** An invite code's secret (hex, 128 bits), derived from the owner's key. @param {string} keyHex @param {string} codeId */
export const inviteSecret = async (keyHex, codeId) => (await mac(keyHex, `doorbell-invite-key-v1\n${codeId}`)).slice(0, 32);

/**
 * The owner's authorisation of an invite: covers the door, the code and every permission.
 * @param {string} keyHex @param {string} doorId @param {string} codeId
 * @param {{role: string, may_unlock: boolean, may_view: boolean, until_ms?: number}} access
 */
export const inviteAuth = (keyHex, doorId, codeId, access) => ownerMac("doorbell-invite-v1", keyHex, doorId, codeId, access);

/**
 * The owner's authorisation of `access` for phone `phoneId` (a raised permission).
 * @param {string} keyHex @param {string} doorId @param {string} phoneId
 * @param {{role: string, may_unlock: boolean, may_view: boolean, until_ms?: number | null}} access
 */
export const grantAuth = (keyHex, doorId, phoneId, access) => ownerMac("doorbell-grant-v1", keyHex, doorId, phoneId, access);

/**
 * @param {string} label @param {string} keyHex @param {string} doorId @param {string} about
 * @param {{role: string, may_unlock: boolean, may_view: boolean, until_ms?: number | null}} access
 */
function ownerMac(label, keyHex, doorId, about, access) {
  const flag = (/** @type {boolean} */ b) => (b ? "1" : "0");
  const until = access.until_ms == null ? "" : String(access.until_ms);
  return mac(keyHex, `${label}\n${doorId}\n${about}\n${access.role}\n${flag(access.may_unlock)}\n${flag(access.may_view)}\n${until}`);
}

/**
 * This phone's proof that it renewed its certificate from `oldFp` to `newFp` (both uppercase,
 * colon-separated), under the key it shares with the door since pairing: the door re-pins
 * only with it (src/pairing/codes.rs `repin_proof_hex`).
 * @param {string} keyHex @param {string} doorId @param {string} phoneId @param {string} oldFp @param {string} newFp
 */
export const repinProof = (keyHex, doorId, phoneId, oldFp, newFp) =>
  mac(keyHex, `doorbell-repin-v1\n${doorId}\n${phoneId}\n${oldFp}\n${newFp}`);

/** A random invite code id: 64 bits, hex. */
export function newCodeId() {
  return hexOf(crypto.getRandomValues(new Uint8Array(8)).buffer);
}

const KEYS_KEY = "doorbell.door-keys";

/** The key shared with `doorId`, or null (paired before owners had one). @param {string} doorId */
export function readDoorKey(doorId) {
  try {
    const keys = JSON.parse(localStorage.getItem(KEYS_KEY) ?? "{}");
    return typeof keys?.[doorId] === "string" ? keys[doorId] : null;
  } catch {
    return null;
  }
}

/** @param {string} doorId @param {string} keyHex */
export function saveDoorKey(doorId, keyHex) {
  try {
    const keys = JSON.parse(localStorage.getItem(KEYS_KEY) ?? "{}");
    localStorage.setItem(KEYS_KEY, JSON.stringify({ ...(keys && typeof keys === "object" ? keys : {}), [doorId]: keyHex }));
  } catch {
    // No storage: this phone cannot make invites the door accepts.
  }
}
