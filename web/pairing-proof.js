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

/** @param {string} hex @returns {Uint8Array} */
function bytesOf(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {ArrayBuffer} buf */
const hexOf = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * The proof for `fingerprint` (uppercase, colon-separated), hex.
 * @param {string} secretHex @param {string} doorId @param {string} codeId @param {string} fingerprint
 */
export async function pairingProof(secretHex, doorId, codeId, fingerprint) {
  const key = await crypto.subtle.importKey("raw", bytesOf(secretHex), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const message = new TextEncoder().encode(`${PROOF_LABEL}\n${doorId}\n${codeId}\n${fingerprint}`);
  return hexOf(await crypto.subtle.sign("HMAC", key, message));
}

/** The SHA-256 fingerprint of `cert`, uppercase; null if the browser gives none. @param {RTCCertificate} cert */
export function certFingerprint(cert) {
  const fp = cert.getFingerprints().find((f) => f.algorithm === "sha-256");
  return fp ? fp.value.toUpperCase() : null;
}
