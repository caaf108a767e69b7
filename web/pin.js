// @ts-check
// The door's identity, pinned at pairing. A link made by the door itself (`doorbelld pair`)
// carries the SHA-256 fingerprint of the door's DTLS certificate (`#pair=CODE&fp=AA:BB:…`); the
// phone keeps it per door and refuses a call whose offer names another certificate, so a hub
// cannot put itself (or anyone) between the phone and the door unnoticed. Invites made in the
// app carry none (the hub cannot vouch for the door): those doors stay unpinned. See
// docs/SECURITY-MODEL.md.

const PINS_KEY = "doorbell.pins";

/** What the phone says when the door's certificate is not the pinned one. */
export const IDENTITY_CHANGED =
  "This door's identity changed: the call did not come from the door this phone was paired with. It was refused. If the door was reset, pair again with a link from `doorbelld pair`.";

/** "AA:BB:…" (32 bytes, uppercase) or null. @param {unknown} text */
function normalize(text) {
  const s = String(text ?? "").trim().toUpperCase();
  return /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(s) ? s : null;
}

/** The fingerprint in a pairing link (`…&fp=AA:BB:…`), or null. @param {unknown} link */
export function pinFrom(link) {
  const m = /[#&?]fp=([^&\s]+)/.exec(String(link ?? ""));
  return m ? normalize(decodeURIComponent(m[1])) : null;
}

/** The SHA-256 fingerprint an SDP offer declares for its DTLS certificate, or null. @param {string} sdp */
export function offerFingerprint(sdp) {
  const m = /^a=fingerprint:sha-256 (\S+)\s*$/im.exec(sdp);
  return m ? normalize(m[1]) : null;
}

/**
 * Whether `sdp` may be answered for a door pinned to `pinned` (null: not pinned).
 * @param {string} sdp @param {string | null} pinned
 */
export function offerMatchesPin(sdp, pinned) {
  if (!pinned) return true;
  return offerFingerprint(sdp) === pinned;
}

/** @returns {Record<string, string>} door id -> fingerprint */
export function readPins() {
  try {
    const pins = JSON.parse(localStorage.getItem(PINS_KEY) ?? "{}");
    return pins && typeof pins === "object" ? pins : {};
  } catch {
    return {};
  }
}

/** @param {string} doorId @param {string} fingerprint */
export function savePin(doorId, fingerprint) {
  try {
    localStorage.setItem(PINS_KEY, JSON.stringify({ ...readPins(), [doorId]: fingerprint }));
  } catch {
    // No storage (private mode): the pin lives as long as the page.
  }
}
