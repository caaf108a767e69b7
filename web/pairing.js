// @ts-check
// Pairing: the phone token in localStorage, pairing codes from links, and `POST /api/pair`.

import { savePin } from "./pin.js";
import { phoneCertificate, renewCertificate } from "./phone-cert.js";
import { certFingerprint, doorCodeFrom, pairingProof, phoneKey, readDoorKey, repinProof, saveDoorKey } from "./pairing-proof.js";

const TOKEN_KEY = "doorbell.token";
const PHONE_ID_KEY = "doorbell.phone_id";
/** The hub keeps at most this many characters of a phone's name. */
const DEVICE_NAME_MAX = 64;
/** A door's name longer than the hub would keep is not a name but noise in the question. */
const DOOR_NAME_MAX = 64;

/** @returns {string | null} */
export function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** @param {string | null} value @param {string | null} [phoneId] */
export function storeToken(value, phoneId) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
    if (phoneId) localStorage.setItem(PHONE_ID_KEY, phoneId);
    else if (!value) localStorage.removeItem(PHONE_ID_KEY);
  } catch {
    // Private mode without storage: the token lives for this page only.
  }
}

/** @param {string} phoneId */
export function storePhoneId(phoneId) {
  try {
    localStorage.setItem(PHONE_ID_KEY, phoneId);
  } catch {}
}

/** "Chrome on Android": how the hub lists this phone. @param {string} ua */
export function shortDeviceName(ua) {
  const os = /Android/.test(ua)
    ? "Android"
    : /iPhone/.test(ua)
      ? "iPhone"
      : /iPad/.test(ua)
        ? "iPad"
        : /Mac OS X|Macintosh/.test(ua)
          ? "Mac"
          : /Windows/.test(ua)
            ? "Windows"
            : /CrOS/.test(ua)
              ? "ChromeOS"
              : /Linux/.test(ua)
                ? "Linux"
                : "";
  const browser = /Firefox\//.test(ua)
    ? "Firefox"
    : /Edg\//.test(ua)
      ? "Edge"
      : /SamsungBrowser\//.test(ua)
        ? "Samsung Internet"
        : /Chrom(e|ium)\//.test(ua)
          ? "Chrome"
          : /Safari\//.test(ua)
            ? "Safari"
            : "Browser";
  return (os ? `${browser} on ${os}` : browser).slice(0, DEVICE_NAME_MAX);
}

/** The pairing code in a link (`…#pair=CODE`) or a bare code; null if neither. @param {unknown} text */
export function pairCodeFrom(text) {
  const s = String(text || "").trim();
  const m = /[#&?]pair=([^&\s]+)/.exec(s);
  if (m) return decodeURIComponent(m[1]);
  if (/^[A-Za-z0-9_.~-]+$/.test(s)) return s; // a bare code
  return null;
}

/**
 * The door's name in a pairing link (`…&door=Front%20door`), for the question asked before
 * pairing; null if the link has none or it is garbled.
 * @param {unknown} text
 */
export function doorNameFrom(text) {
  const m = /[#&?]door=([^&\s]+)/.exec(String(text || ""));
  if (!m) return null;
  try {
    const name = decodeURIComponent(m[1]).trim();
    return name ? name.slice(0, DOOR_NAME_MAX) : null;
  } catch {
    return null;
  }
}

/**
 * Redeems a pairing code; stores and returns the token. Throws an Error whose message is for
 * the user.
 * @param {string} code
 * @param {string | null} token this phone's token if it has one (pairs one more door)
 * @param {string | null} [pin] the door's DTLS fingerprint from a link the door made: kept
 *   for the door the hub says the code was for, and checked on every call (pin.js)
 * @returns {Promise<string>}
 */
export async function pair(code, token, pin = null) {
  const name = shortDeviceName(navigator.userAgent || "");
  const doorMade = doorCodeFrom(code);
  /** @type {Record<string, string>} */
  const body = doorMade ? await doorMadeBody(doorMade, name) : { code, name };
  if (token) body.token = token;
  let res;
  try {
    res = await fetch("/api/pair", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new Error("Couldn't reach the hub to pair. Check the connection and open the link again.");
  }
  if (!res.ok) {
    if (doorMade && res.status === 503) {
      throw new Error("The door is offline, and only the door can pair a phone. Try again once it is back online.");
    }
    if (doorMade && res.status === 403) {
      throw new Error(
        "The door refused this pairing link: it was used already, it expired, or the door restarted since it was made. Make a new one with `doorbelld pair` on the door.",
      );
    }
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      throw new Error("This pairing link was already used or expired. Ask for a new one.");
    }
    throw new Error(`The hub couldn't pair this phone (HTTP ${res.status}). Try again in a moment.`);
  }
  let data;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!data || typeof data.token !== "string" || !data.token) {
    throw new Error("The hub sent an unexpected pairing reply. Ask for a new link.");
  }
  storeToken(data.token, typeof data.phone_id === "string" ? data.phone_id : null);
  if (pin && typeof data.door_id === "string") savePin(data.door_id, pin);
  // The key this phone now shares with the door: an owner authorises invites with it.
  if (doorMade && data.door_id === doorMade.doorId) saveDoorKey(doorMade.doorId, await phoneKey(doorMade.secretHex));
  return data.token;
}

/**
 * The body that redeems a door-made code: this phone's certificate fingerprint and the proof,
 * made with the code's secret, which never leaves the phone.
 * @param {{doorId: string, codeId: string, secretHex: string}} code @param {string} name
 */
async function doorMadeBody(code, name) {
  const cert = await phoneCertificate().catch(() => null);
  const fingerprint = cert ? certFingerprint(cert) : null;
  if (!fingerprint) {
    throw new Error("This browser cannot keep a certificate for calls, so the door cannot pin this phone. Use a current browser (not a private window).");
  }
  const proof = await pairingProof(code.secretHex, code.doorId, code.codeId, fingerprint);
  return { door_id: code.doorId, code_id: code.codeId, fingerprint, proof, name };
}

/** @type {Promise<unknown> | null} the renewal under way, so two welcomes do not race */
let renewing = null;
/** @type {{welcome: any, token: string} | null} a welcome that came while one ran: run again after */
let renewAgain = null;

/**
 * On each `welcome`: renew this phone's certificate if it is due (phone-cert.js), asking each
 * of its doors to re-pin the new one (`POST /api/doors/{door}/phones/me/repin`) with a proof
 * under the key it shares with that door. A door offline, refusing, or whose key this phone
 * lacks (paired before phones had one, or a pairing still saving it) is asked again on a later
 * welcome, and the old certificate stays until every door moved or it ends (then a door
 * without a key needs pairing again). Resolves what renewCertificate says.
 * @param {{phone_id: string, doors?: {door_id: string}[]}} welcome @param {string} token
 * @returns {Promise<unknown>}
 */
export function renewOnWelcome(welcome, token) {
  if (renewing) {
    renewAgain = { welcome, token };
    return renewing;
  }
  const doors = (welcome.doors ?? []).map((d) => d.door_id);
  /** @param {string} doorId @param {string} oldFp @param {string} newFp */
  const ask = async (doorId, oldFp, newFp) => {
    const key = readDoorKey(doorId);
    if (!key) return false;
    const proof = await repinProof(key, doorId, welcome.phone_id, oldFp, newFp);
    const res = await fetch(`/api/doors/${encodeURIComponent(doorId)}/phones/me/repin`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ old_fingerprint: oldFp, new_fingerprint: newFp, proof }),
    }).catch(() => null);
    if (res?.status !== 204) console.warn("doorbell: re-pin at", doorId, "not done:", res?.status, await res?.text().catch(() => ""));
    return res?.status === 204;
  };
  renewing = renewCertificate(doors, ask)
    .catch((e) => console.warn("doorbell: certificate renewal failed:", e?.message || e))
    .finally(() => {
      renewing = null;
      const again = renewAgain;
      renewAgain = null;
      if (again) renewOnWelcome(again.welcome, again.token);
    });
  return renewing;
}
