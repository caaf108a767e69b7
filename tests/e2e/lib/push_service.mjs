// A mock RFC 8030 push service for end-to-end tests, on http://127.0.0.1:0: it records every
// request and answers 201, as a browser vendor's push service does. The checks are the
// receiving side's, written from the RFCs with node's crypto (not through the hub's crate):
// `verifyVapid` (RFC 8292: ES256 JWT, `aud` = the service's origin, `exp` within 24 h, `sub` a
// contact) and `PushSubscriptionKeys.decrypt` (RFC 8291 on top of RFC 8188's aes128gcm). Both
// throw with a message naming what is wrong, so a hub that encrypts or signs wrongly fails.

import { createServer } from "node:http";
import crypto from "node:crypto";

/** RFC 8292 section 2: a JWT's `exp` must be no more than 24 hours ahead. */
const VAPID_MAX_LIFETIME_S = 24 * 60 * 60;
/** RFC 8188: salt 16 bytes, record size 4, key id length 1. */
const HEADER_FIXED = 16 + 4 + 1;
/** An uncompressed P-256 point: 0x04 || x || y. */
const P256_POINT = 65;
const GCM_TAG = 16;

const b64u = (buf) => Buffer.from(buf).toString("base64url");

/** RFC 5869 HKDF-SHA256 (extract with `salt`, expand with `info`) to `length` bytes. */
const hkdf = (salt, ikm, info, length) => Buffer.from(crypto.hkdfSync("sha256", ikm, salt, info, length));

/** A browser's push subscription keys, held by the test: what `PushSubscription.toJSON()` carries. */
export class PushSubscriptionKeys {
  constructor() {
    this.ecdh = crypto.createECDH("prime256v1");
    this.ecdh.generateKeys();
    this.auth = crypto.randomBytes(16);
  }

  /** `{p256dh, auth}` as base64url (65 and 16 bytes). */
  json() {
    return { p256dh: b64u(this.ecdh.getPublicKey(null, "uncompressed")), auth: b64u(this.auth) };
  }

  /**
   * Decrypts an `aes128gcm` push message body (RFC 8291 section 3.4, RFC 8188 section 2);
   * throws if any part of it is wrong.
   * @param {Buffer} body
   * @returns {Buffer} the plaintext, padding removed
   */
  decrypt(body) {
    if (body.length <= HEADER_FIXED) throw new Error(`push body of ${body.length} bytes is shorter than the aes128gcm header`);
    const salt = body.subarray(0, 16);
    const rs = body.readUInt32BE(16);
    const idlen = body[20];
    if (idlen !== P256_POINT) throw new Error(`aes128gcm keyid is ${idlen} bytes, not the sender's 65-byte P-256 key`);
    const asPublic = body.subarray(HEADER_FIXED, HEADER_FIXED + idlen);
    const record = body.subarray(HEADER_FIXED + idlen);
    // RFC 8291 section 4: a push message is one record.
    if (record.length > rs) throw new Error(`aes128gcm: ${record.length} bytes do not fit one record of rs ${rs}`);
    if (record.length <= GCM_TAG) throw new Error("aes128gcm: record shorter than its tag");
    const uaPublic = this.ecdh.getPublicKey(null, "uncompressed");
    const ecdhSecret = this.ecdh.computeSecret(asPublic);
    const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), uaPublic, asPublic]);
    const ikm = hkdf(this.auth, ecdhSecret, keyInfo, 32);
    const cek = hkdf(salt, ikm, Buffer.from("Content-Encoding: aes128gcm\0"), 16);
    const nonce = hkdf(salt, ikm, Buffer.from("Content-Encoding: nonce\0"), 12); // sequence 0
    const decipher = crypto.createDecipheriv("aes-128-gcm", cek, nonce);
    decipher.setAuthTag(record.subarray(record.length - GCM_TAG));
    let plain;
    try {
      plain = Buffer.concat([decipher.update(record.subarray(0, record.length - GCM_TAG)), decipher.final()]);
    } catch (e) {
      throw new Error(`aes128gcm: the AES-GCM tag does not verify (wrong keys or derivation): ${e.message}`);
    }
    // The last record ends with the delimiter 0x02, then optional zero padding.
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end--;
    if (end < 0 || plain[end] !== 2) throw new Error(`aes128gcm: no last-record delimiter 0x02 (found ${plain[end]})`);
    return plain.subarray(0, end);
  }
}

/**
 * Verifies `Authorization: vapid t=<jwt>, k=<key>` (RFC 8292) against the hub's published key;
 * returns the JWT's claims.
 * @param {string | undefined} header
 * @param {string} vapidPublicKey the hub's `GET /api/push/key`
 * @param {string} origin the push service's origin (the `aud` it must name)
 */
export function verifyVapid(header, vapidPublicKey, origin) {
  const m = /^vapid t=([^,\s]+),\s*k=([^,\s]+)$/.exec(header ?? "");
  if (!m) throw new Error(`Authorization is not "vapid t=<jwt>, k=<key>": ${header}`);
  const [, jwt, k] = m;
  if (k !== vapidPublicKey) throw new Error(`VAPID k=${k} is not the hub's key ${vapidPublicKey}`);
  const point = Buffer.from(k, "base64url");
  if (point.length !== P256_POINT || point[0] !== 4) throw new Error("VAPID k is not an uncompressed P-256 point");
  const key = crypto.createPublicKey({
    key: { kty: "EC", crv: "P-256", x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) },
    format: "jwk",
  });
  const parts = jwt.split(".");
  if (parts.length !== 3) throw new Error(`VAPID t is not a JWS compact serialisation: ${jwt}`);
  const [head, body, sig] = parts;
  const ok = crypto.verify("sha256", Buffer.from(`${head}.${body}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(sig, "base64url"));
  if (!ok) throw new Error("VAPID JWT signature does not verify with the hub's key");
  const header_ = JSON.parse(Buffer.from(head, "base64url").toString());
  if (header_.alg !== "ES256") throw new Error(`VAPID JWT alg is ${header_.alg}, not ES256`);
  const claims = JSON.parse(Buffer.from(body, "base64url").toString());
  if (claims.aud !== origin) throw new Error(`VAPID aud ${claims.aud} is not the push service's origin ${origin}`);
  const now = Date.now() / 1000;
  if (!(claims.exp > now && claims.exp <= now + VAPID_MAX_LIFETIME_S)) {
    throw new Error(`VAPID exp ${claims.exp} is not within 24 h from now (${Math.floor(now)})`);
  }
  if (!/^(mailto:|https:)/.test(claims.sub ?? "")) throw new Error(`VAPID sub ${claims.sub} is not mailto: or https:`);
  return claims;
}

/**
 * Starts the service. Returns { origin, url(path), received, next(predicate, what, ms), close() }.
 * `received` holds every request as { method, path, headers, body: Buffer, at }.
 */
export async function startPushService() {
  const received = [];
  const waiters = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const r = { method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks), at: Date.now() };
      received.push(r);
      for (const w of waiters) w();
      res.writeHead(201).end();
    });
  });
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    url: (path) => origin + path,
    received,
    /** The first request (from index `from` on) that `predicate` accepts; throws after `ms`. */
    next(predicate, what, ms = 15_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = received.slice(from).find(predicate);
          if (!hit) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = received.map((r) => `${r.method} ${r.path}`).join(", ") || "nothing";
          reject(new Error(`the mock push service got no ${what} within ${ms} ms (got: ${seen})`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
