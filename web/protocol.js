// Doorbell signaling protocol, version 1: the JavaScript mirror of protocol/src/lib.rs.
//
// docs/PROTOCOL.md is the human reference; the golden fixtures in tests/fixtures/protocol/
// pin the exact bytes, and web/protocol.test.mjs checks this file against every one of them.
//
// Encoders return the JSON text to put in one WebSocket text frame. Field order follows the
// Rust types (serde writes "type" first, then the fields in declaration order), so the output
// is byte-for-byte what the Rust side would produce. Decoders parse and validate a frame and
// return a plain object holding only the fields this version knows (unknown fields are
// ignored, as the protocol requires); anything else throws ProtocolError.
//
// No dependencies: this file runs in the browser (served by the hub) and in node (tests).
// @ts-check

/**
 * A decoded message: "type" and the fields its schema knows (see SCHEMAS).
 * @typedef {{type: string, [field: string]: any}} Message
 * A field kind: validates the value at `path` and returns the value to keep.
 * @typedef {(value: any, path: string) => any} KindFn
 * @typedef {[string, string | KindFn, ({optional?: boolean, default?: any})?]} Field
 */

/** Version of this protocol, sent in every `hello`. */
export const PROTOCOL_VERSION = 1;

/** Largest message any side accepts (bytes of UTF-8). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** Why ringing stopped before anyone answered. */
export const RING_END_REASONS = Object.freeze(["timeout", "declined", "cancelled", "door_offline", "quiet"]);

/** A phone's role in a door's household. */
export const ROLES = Object.freeze(["owner", "member", "guest"]);
/** Why a door refused a pairing (`pair_refused`, docs/PROTOCOL.md "Pairing"). */
export const PAIR_REFUSALS = Object.freeze(["unknown_code", "used", "expired", "bad_proof", "bad_fingerprint", "full", "not_owner", "unknown_phone", "not_pinned"]);

/** Why an answered call ended. */
export const HANG_UP_REASONS = Object.freeze(["normal", "failed", "timeout", "peer_gone"]);

/** Why a preview session ended (`close_session`, `session_closed`). */
export const SESSION_END_REASONS = Object.freeze(["answered_elsewhere", "call_ended", "closed", "limit", "failed", "peer_gone", "time_limit"]);

/** Machine-readable error codes carried by `error` messages. */
export const ERROR_CODES = Object.freeze([
  "bad_message",
  "unsupported_version",
  "unauthorized",
  "hello_required",
  "already_authenticated",
  "unknown_call",
  "already_answered",
  "invalid_state",
  "busy",
  "rate_limited",
  "internal",
  "invalid_timestamp",
  "forbidden",
  "invalid_id",
  "invalid_text",
]);

/** Version of the data-channel messages (`control` channel, phone <-> door). */
export const CONTROL_VERSION = 1;

/** Label of the data channel the door creates for unlock requests. */
export const CONTROL_LABEL = "control";

/** Error codes the door sends on the data channel. */
export const CONTROL_ERROR_CODES = Object.freeze(["bad_message", "unsupported_version", "not_in_call", "not_allowed"]);

/** A message that is not valid for this protocol version, or a value that cannot be encoded. */
export class ProtocolError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "ProtocolError";
  }
}

// ---------------------------------------------------------------------------------------------
// Field kinds. Each kind validates a value at `path` and returns the value to keep.

const U32_MAX = 0xffff_ffff;

/** @param {unknown} value */
function describe(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** @type {Record<string, KindFn>} */
const kinds = {
  /** @type {KindFn} */
  string(value, path) {
    if (typeof value !== "string") throw new ProtocolError(`${path} must be a string, got ${describe(value)}`);
    return value;
  },
  /** @type {KindFn} */
  u32(value, path) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > U32_MAX) {
      throw new ProtocolError(`${path} must be an integer from 0 to ${U32_MAX}, got ${JSON.stringify(value) ?? describe(value)}`);
    }
    return value;
  },
  // An id the hub numbers (a quick reply's): a u64 on the wire, a safe integer in practice.
  /** @type {KindFn} */
  u64(value, path) {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      throw new ProtocolError(`${path} must be a non-negative integer, got ${JSON.stringify(value) ?? describe(value)}`);
    }
    return value;
  },
  // Unix milliseconds: a u64 on the wire; any real date fits a JS safe integer exactly.
  /** @type {KindFn} */
  unixMs(value, path) {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      throw new ProtocolError(`${path} must be Unix milliseconds (a non-negative integer), got ${JSON.stringify(value) ?? describe(value)}`);
    }
    return value;
  },
  /** @type {KindFn} */
  bool(value, path) {
    if (typeof value !== "boolean") throw new ProtocolError(`${path} must be true or false, got ${describe(value)}`);
    return value;
  },
  ringEndReason: enumKind(RING_END_REASONS, "reason"),
  hangUpReason: enumKind(HANG_UP_REASONS, "reason"),
  sessionEndReason: enumKind(SESSION_END_REASONS, "reason"),
  errorCode: enumKind(ERROR_CODES, "error code"),
  controlErrorCode: enumKind(CONTROL_ERROR_CODES, "error code"),
  candidate: objectKind([
    ["candidate", "string"],
    ["sdp_m_line_index", "u32"],
  ]),
  iceServers: arrayKind(
    objectKind([
      ["urls", arrayKind("string")],
      ["username", "string", { optional: true }],
      ["credential", "string", { optional: true }],
    ]),
  ),
  role: enumKind(ROLES, "role"),
  pairRefusal: enumKind(PAIR_REFUSALS, "reason"),
  // A phone's role and permissions at one door (absent from older hubs: a member who may do all).
  access: objectKind([
    ["role", "role"],
    ["may_unlock", "bool"],
    ["may_view", "bool"],
    ["until_ms", "unixMs", { optional: true }],
  ]),
  doors: arrayKind(
    objectKind([
      ["door_id", "string"],
      ["name", "string"],
      ["online", "bool"],
      ["access", "access", { optional: true }],
    ]),
  ),
};

/** @param {string | KindFn} kind @returns {KindFn} */
function kindFn(kind) {
  return typeof kind === "function" ? kind : kinds[kind];
}

/** @param {readonly string[]} values @param {string} what @returns {KindFn} */
function enumKind(values, what) {
  return (value, path) => {
    if (typeof value !== "string") throw new ProtocolError(`${path} must be a string, got ${describe(value)}`);
    if (!values.includes(value)) {
      throw new ProtocolError(`${path}: unknown ${what} ${JSON.stringify(value)} (expected one of ${values.join(", ")})`);
    }
    return value;
  };
}

/** @param {string | KindFn} item @returns {KindFn} */
function arrayKind(item) {
  return (value, path) => {
    if (!Array.isArray(value)) throw new ProtocolError(`${path} must be an array, got ${describe(value)}`);
    return value.map((/** @type {unknown} */ v, /** @type {number} */ i) => kindFn(item)(v, `${path}[${i}]`));
  };
}

// fields: [[name, kind, {optional, default}]]. Keeps only known fields, in declaration order;
// optional fields that are absent (or null, as serde's Option accepts) are left out; fields
// with a `default` (serde's `#[serde(default)]`) take a fresh copy of it when absent.
/** @param {Field[]} fields @returns {KindFn} */
function objectKind(fields) {
  return (value, path) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new ProtocolError(`${path} must be an object, got ${describe(value)}`);
    }
    /** @type {Record<string, any>} */
    const out = {};
    for (const [name, kind, opts] of fields) {
      const v = value[name];
      if (v === undefined && opts && "default" in opts) {
        out[name] = structuredClone(opts.default);
        continue;
      }
      if (v === undefined || (v === null && opts?.optional)) {
        if (opts?.optional) continue;
        throw new ProtocolError(`${path} is missing the field "${name}"`);
      }
      out[name] = kindFn(kind)(v, `${path}.${name}`);
    }
    return out;
  };
}

// ---------------------------------------------------------------------------------------------
// The four directions, one table each: message type -> fields (after "type"), in the order of
// the Rust enum variants' fields.

const opt = { optional: true };
// Per-call ICE servers (`ring`, `answered`): absent from older hubs, meaning "none".
const noServers = { default: [] };
const errorFields = [
  ["code", "errorCode"],
  ["message", "string"],
  ["call_id", "string", opt],
];

// Preview sessions (docs/PROTOCOL.md "Preview while ringing"): the same shapes both ways.
const sessionSdpFields = [
  ["session_id", "string"],
  ["sdp", "string"],
];
const sessionIceFields = [
  ["session_id", "string"],
  ["candidate", "candidate"],
];
const sessionEndFields = [
  ["session_id", "string"],
  ["reason", "sessionEndReason"],
];

/** Message schemas per direction. Keys match the fixture file names `<direction>.<type>.json`. */
export const SCHEMAS = Object.freeze({
  door_to_hub: {
    hello: [
      ["protocol_version", "u32"],
      ["door_id", "string"],
      ["secret", "string"],
      ["software", "string"],
    ],
    ring: [["call_id", "string"]],
    cancel_ring: [
      ["call_id", "string"],
      ["reason", "ringEndReason"],
    ],
    sdp_offer: [
      ["call_id", "string"],
      ["sdp", "string"],
    ],
    ice: [
      ["call_id", "string"],
      ["candidate", "candidate"],
    ],
    hang_up: [
      ["call_id", "string"],
      ["reason", "hangUpReason"],
    ],
    missed_ring: [["at_ms", "unixMs"]],
    unlocked: [["call_id", "string"]],
    session_offer: sessionSdpFields,
    session_ice: sessionIceFields,
    close_session: sessionEndFields,
    pair_accepted: [
      ["request_id", "u64"],
      ["access", "access"],
    ],
    pair_refused: [
      ["request_id", "u64"],
      ["reason", "pairRefusal"],
    ],
  },
  hub_to_door: {
    welcome: [
      ["protocol_version", "u32"],
      ["door_name", "string"],
      ["ice_servers", "iceServers"],
    ],
    ringing: [
      ["call_id", "string"],
      ["phones", "u32"],
      // Optional, not defaulted: absent means "wait for answered's" (serde's Option).
      ["ice_servers", "iceServers", opt],
    ],
    answered: [
      ["call_id", "string"],
      ["phone_id", "string"],
      ["ice_servers", "iceServers", noServers],
      // Absent (older hubs, or a phone that may): true.
      ["may_unlock", "bool", { optional: true }],
    ],
    ring_ended: [
      ["call_id", "string"],
      ["reason", "ringEndReason"],
    ],
    sdp_answer: [
      ["call_id", "string"],
      ["sdp", "string"],
    ],
    ice: [
      ["call_id", "string"],
      ["candidate", "candidate"],
    ],
    hang_up: [
      ["call_id", "string"],
      ["reason", "hangUpReason"],
    ],
    quick_reply: [
      ["call_id", "string"],
      ["reply_id", "u64"],
    ],
    error: errorFields,
    open_session: [
      ["call_id", "string"],
      ["session_id", "string"],
      ["phone_id", "string"],
      ["ice_servers", "iceServers"],
    ],
    session_answer: sessionSdpFields,
    session_ice: sessionIceFields,
    session_closed: sessionEndFields,
    answered_in_session: [
      ["call_id", "string"],
      ["session_id", "string"],
      ["phone_id", "string"],
    ],
    pair_request: [
      ["request_id", "u64"],
      ["code_id", "string"],
      ["phone_id", "string"],
      ["fingerprint", "string"],
      ["proof", "string"],
    ],
    invite_request: [
      ["request_id", "u64"],
      ["phone_id", "string"],
      ["code_id", "string"],
      ["access", "access"],
      ["auth", "string"],
    ],
    unpin: [["phone_id", "string"]],
    repin_request: [
      ["request_id", "u64"],
      ["phone_id", "string"],
      ["old_fingerprint", "string"],
      ["new_fingerprint", "string"],
      ["proof", "string"],
    ],
    grant_request: [
      ["request_id", "u64"],
      ["phone_id", "string"],
      ["target", "string"],
      ["access", "access"],
      ["auth", "string"],
    ],
    open_view: [
      ["session_id", "string"],
      ["phone_id", "string"],
      ["ice_servers", "iceServers"],
    ],
  },
  phone_to_hub: {
    hello: [
      ["protocol_version", "u32"],
      ["token", "string"],
    ],
    answer: [["call_id", "string"]],
    decline: [["call_id", "string"]],
    quick_reply: [
      ["call_id", "string"],
      ["reply_id", "u64"],
    ],
    sdp_answer: [
      ["call_id", "string"],
      ["sdp", "string"],
    ],
    ice: [
      ["call_id", "string"],
      ["candidate", "candidate"],
    ],
    hang_up: [
      ["call_id", "string"],
      ["reason", "hangUpReason"],
    ],
    preview: [["call_id", "string"]],
    session_answer: sessionSdpFields,
    session_ice: sessionIceFields,
    close_session: [["session_id", "string"]],
    answer_in_session: [
      ["call_id", "string"],
      ["session_id", "string"],
    ],
    view: [["door_id", "string"]],
  },
  hub_to_phone: {
    welcome: [
      ["protocol_version", "u32"],
      ["phone_id", "string"],
      ["doors", "doors"],
      ["ice_servers", "iceServers"],
    ],
    ring: [
      ["call_id", "string"],
      ["door_id", "string"],
      ["door_name", "string"],
      ["ice_servers", "iceServers", noServers],
    ],
    ringing_cancelled: [
      ["call_id", "string"],
      ["reason", "ringEndReason"],
    ],
    answered_elsewhere: [["call_id", "string"]],
    sdp_offer: [
      ["call_id", "string"],
      ["sdp", "string"],
    ],
    ice: [
      ["call_id", "string"],
      ["candidate", "candidate"],
    ],
    hang_up: [
      ["call_id", "string"],
      ["reason", "hangUpReason"],
    ],
    door_status: [
      ["door_id", "string"],
      ["online", "bool"],
    ],
    missed_ring: [
      ["door_id", "string"],
      ["door_name", "string"],
      ["at_ms", "unixMs"],
    ],
    snapshot: [
      ["call_id", "string"],
      ["url", "string"],
    ],
    phone_joined: [
      ["door_id", "string"],
      ["phone_id", "string"],
      ["name", "string"],
    ],
    phone_removed: [
      ["door_id", "string"],
      ["phone_id", "string"],
      ["name", "string"],
    ],
    access_changed: [
      ["door_id", "string"],
      ["access", "access"],
    ],
    error: errorFields,
    session_offer: [
      ["call_id", "string"],
      ["session_id", "string"],
      ["sdp", "string"],
    ],
    session_ice: sessionIceFields,
    session_closed: sessionEndFields,
    view_offer: [
      ["door_id", "string"],
      ["session_id", "string"],
      ["sdp", "string"],
      ["ice_servers", "iceServers"],
    ],
  },
  // The call's `control` data channel: never through the hub (docs/PROTOCOL.md "Data channel").
  phone_to_door: {
    unlock: [
      ["version", "u32"],
      ["request_id", "u32"],
    ],
  },
  door_to_phone: {
    unlocked: [
      ["version", "u32"],
      ["request_id", "u32"],
      ["pulse_ms", "u32"],
    ],
    error: [
      ["version", "u32"],
      ["request_id", "u32", opt],
      ["code", "controlErrorCode"],
      ["message", "string"],
    ],
  },
});

/** @param {string} direction @param {unknown} type @returns {Field[]} */
function schemaFor(direction, type) {
  const table = /** @type {Record<string, Record<string, Field[]>>} */ (/** @type {unknown} */ (SCHEMAS))[direction];
  if (!table) throw new ProtocolError(`unknown direction ${JSON.stringify(direction)}`);
  if (typeof type !== "string") throw new ProtocolError(`"type" must be a string, got ${describe(type)}`);
  if (!Object.hasOwn(table, type)) throw new ProtocolError(`unknown ${direction} message type ${JSON.stringify(type)}`);
  return table[type];
}

/**
 * Validates `message` (an object with `type` and the fields) as a message of `direction` and
 * returns a clean copy: "type" first, known fields in protocol order, unknown fields dropped.
 * @param {string} direction @param {any} message @returns {Message}
 */
export function validateMessage(direction, message) {
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    throw new ProtocolError(`a message must be a JSON object, got ${describe(message)}`);
  }
  const fields = schemaFor(direction, message.type);
  return { type: message.type, ...objectKind(fields)(message, message.type) };
}

/** Validates and serializes a message of `direction` to the JSON text of one frame. @param {string} direction @param {any} message @returns {string} */
export function encodeMessage(direction, message) {
  return JSON.stringify(validateMessage(direction, message));
}

/** Parses and validates the text of one frame as a message of `direction`. @param {string} direction @param {unknown} text @returns {Message} */
export function decodeMessage(direction, text) {
  if (typeof text !== "string") throw new ProtocolError(`a message must be a text frame, got ${describe(text)}`);
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(`not JSON: ${/** @type {Error} */ (e).message}`);
  }
  return validateMessage(direction, value);
}

// ---------------------------------------------------------------------------------------------
// Phone -> hub encoders (what the phone app sends).

/** `unlock` on the data channel: ask the door to pulse its strike. @param {number} requestId */
export function unlock(requestId) {
  return encodeMessage("phone_to_door", { type: "unlock", version: CONTROL_VERSION, request_id: requestId });
}

/** Parses a data-channel message from the door (`unlocked` or `error`). @param {unknown} text */
export function decodeDoorToPhone(text) {
  return decodeMessage("door_to_phone", text);
}

/** `hello`: the first message, authenticating with the token received at pairing. @param {string} token */
export function hello(token) {
  return encodeMessage("phone_to_hub", { type: "hello", protocol_version: PROTOCOL_VERSION, token });
}

/** `answer`: pick up. @param {string} callId */
export function answer(callId) {
  return encodeMessage("phone_to_hub", { type: "answer", call_id: callId });
}

/** `decline`: stop ringing on this phone. @param {string} callId */
export function decline(callId) {
  return encodeMessage("phone_to_hub", { type: "decline", call_id: callId });
}

/** `quick_reply`: have the door play clip `replyId` to the visitor. @param {string} callId @param {number} replyId */
export function quickReply(callId, replyId) {
  return encodeMessage("phone_to_hub", { type: "quick_reply", call_id: callId, reply_id: replyId });
}

/** `sdp_answer`: the answer to the door's offer. @param {string} callId @param {string} sdp */
export function sdpAnswer(callId, sdp) {
  return encodeMessage("phone_to_hub", { type: "sdp_answer", call_id: callId, sdp });
}

/**
 * `ice`: one trickled candidate. Takes an RTCIceCandidate or RTCIceCandidateInit
 * (`{candidate, sdpMLineIndex}`); `sdpMLineIndex` becomes `sdp_m_line_index`.
 * @param {string} callId @param {{candidate: string, sdpMLineIndex?: number | null}} candidate
 */
export function ice(callId, { candidate, sdpMLineIndex }) {
  return encodeMessage("phone_to_hub", {
    type: "ice",
    call_id: callId,
    candidate: { candidate, sdp_m_line_index: sdpMLineIndex },
  });
}

/** `hang_up`: end the answered call; `reason` is one of HANG_UP_REASONS. @param {string} callId */
export function hangUp(callId, reason = "normal") {
  return encodeMessage("phone_to_hub", { type: "hang_up", call_id: callId, reason });
}

/** `preview`: while ringing, ask for the door's live video (a preview session). @param {string} callId */
export function preview(callId) {
  return encodeMessage("phone_to_hub", { type: "preview", call_id: callId });
}

/** `session_answer`: the answer to a preview session's offer. @param {string} sessionId @param {string} sdp */
export function sessionAnswer(sessionId, sdp) {
  return encodeMessage("phone_to_hub", { type: "session_answer", session_id: sessionId, sdp });
}

/** `session_ice`: one trickled candidate of a preview session (as `ice`). @param {string} sessionId @param {{candidate: string, sdpMLineIndex?: number | null}} candidate */
export function sessionIce(sessionId, { candidate, sdpMLineIndex }) {
  return encodeMessage("phone_to_hub", {
    type: "session_ice",
    session_id: sessionId,
    candidate: { candidate, sdp_m_line_index: sdpMLineIndex },
  });
}

/** `close_session`: stop this phone's preview session. @param {string} sessionId */
export function closeSession(sessionId) {
  return encodeMessage("phone_to_hub", { type: "close_session", session_id: sessionId });
}

/** `view`: watch this door without a ring (live view; needs `may_view`). @param {string} doorId */
export function view(doorId) {
  return encodeMessage("phone_to_hub", { type: "view", door_id: doorId });
}

/** `answer_in_session`: pick up in the preview session already showing the door. @param {string} callId @param {string} sessionId */
export function answerInSession(callId, sessionId) {
  return encodeMessage("phone_to_hub", { type: "answer_in_session", call_id: callId, session_id: sessionId });
}

// ---------------------------------------------------------------------------------------------
// Decoders.

/** Parses and validates one hub -> phone frame. Throws ProtocolError. @param {unknown} text */
export function decodeHubToPhone(text) {
  return decodeMessage("hub_to_phone", text);
}

/** Parses and validates one phone -> hub frame (for hubs and tests written in JS). @param {unknown} text */
export function decodePhoneToHub(text) {
  return decodeMessage("phone_to_hub", text);
}

/** Parses and validates one door -> hub frame. @param {unknown} text */
export function decodeDoorToHub(text) {
  return decodeMessage("door_to_hub", text);
}

/** Parses and validates one hub -> door frame (for a door written in JS, e.g. a test double). @param {unknown} text */
export function decodeHubToDoor(text) {
  return decodeMessage("hub_to_door", text);
}

/** The wire `candidate` object as an RTCIceCandidateInit for `addIceCandidate`. @param {{candidate: string, sdp_m_line_index: number}} candidate */
export function toIceCandidateInit(candidate) {
  return { candidate: candidate.candidate, sdpMLineIndex: candidate.sdp_m_line_index };
}

/**
 * The servers for one call: `ring`'s per-call list (TURN credentials minted for this phone and
 * this call) when the hub sent one, else `welcome`'s.
 * @param {any} ring @param {any} welcome @returns {any[]}
 */
export function callIceServers(ring, welcome) {
  const perCall = ring?.ice_servers ?? [];
  return perCall.length > 0 ? perCall : (welcome?.ice_servers ?? []);
}

/**
 * Wire `ice_servers` as RTCIceServer objects for `new RTCPeerConnection({iceServers})`.
 * @param {{urls: string[], username?: string, credential?: string}[]} iceServers
 * @returns {RTCIceServer[]}
 */
export function toRtcIceServers(iceServers) {
  return iceServers.map((s) => {
    /** @type {RTCIceServer} */
    const out = { urls: s.urls };
    if (s.username !== undefined) out.username = s.username;
    if (s.credential !== undefined) out.credential = s.credential;
    return out;
  });
}
