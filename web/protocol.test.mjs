// Tests web/protocol.js against the golden fixtures shared with the Rust crate.
// Run: node --test web/
//
// Every file in tests/fixtures/protocol/ is checked; a fixture whose direction or type this
// module cannot encode/decode fails the test (the list is read from the directory, so a new
// message type added on the Rust side shows up here as a failure until protocol.js learns it).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

import {
  PROTOCOL_VERSION,
  ProtocolError,
  SCHEMAS,
  hello,
  answer,
  decline,
  quickReply,
  sdpAnswer,
  ice,
  hangUp,
  decodeHubToPhone,
  decodePhoneToHub,
  decodeMessage,
  encodeMessage,
  toIceCandidateInit,
  toRtcIceServers,
  callIceServers,
  decodeHubToDoor,
  unlock,
  decodeDoorToPhone,
  CONTROL_VERSION,
  preview,
  sessionAnswer,
  sessionIce,
  closeSession,
  answerInSession,
  view,
} from "./protocol.js";

const FIXTURES = fileURLToPath(new URL("../tests/fixtures/protocol/", import.meta.url));
const DIRECTIONS = ["door_to_hub", "hub_to_door", "phone_to_hub", "hub_to_phone", "phone_to_door", "door_to_phone"];

const fixtures = readdirSync(FIXTURES)
  .filter((name) => name.endsWith(".json"))
  .sort()
  .map((name) => {
    const m = /^([a-z_]+)\.([a-z_]+)\.json$/.exec(name);
    const text = readFileSync(join(FIXTURES, name), "utf8");
    return { name, direction: m?.[1], type: m?.[2], text, json: JSON.parse(text) };
  });

// The Rust side pins pretty JSON with a 2-space indent and a final newline.
const pretty = (encoded) => JSON.stringify(JSON.parse(encoded), null, 2) + "\n";

// How the app builds each phone -> hub message from its fields. A phone_to_hub fixture whose
// type is missing here fails.
const PHONE_ENCODERS = {
  hello: (f) => hello(f.token),
  answer: (f) => answer(f.call_id),
  decline: (f) => decline(f.call_id),
  quick_reply: (f) => quickReply(f.call_id, f.reply_id),
  sdp_answer: (f) => sdpAnswer(f.call_id, f.sdp),
  ice: (f) => ice(f.call_id, toIceCandidateInit(f.candidate)),
  hang_up: (f) => hangUp(f.call_id, f.reason),
  preview: (f) => preview(f.call_id),
  session_answer: (f) => sessionAnswer(f.session_id, f.sdp),
  session_ice: (f) => sessionIce(f.session_id, toIceCandidateInit(f.candidate)),
  close_session: (f) => closeSession(f.session_id),
  answer_in_session: (f) => answerInSession(f.call_id, f.session_id),
  view: (f) => view(f.door_id),
};

test("fixture directory is not empty and every file is named <direction>.<type>.json", () => {
  assert.ok(fixtures.length > 0, `no fixtures in ${FIXTURES}`);
  for (const f of fixtures) {
    assert.ok(DIRECTIONS.includes(f.direction), `${f.name}: unknown direction ${f.direction}`);
    assert.equal(f.json.type, f.type, `${f.name}: "type" field does not match the file name`);
  }
});

test("every message type in protocol.js has a golden fixture", () => {
  for (const direction of DIRECTIONS) {
    for (const type of Object.keys(SCHEMAS[direction])) {
      assert.ok(
        fixtures.some((f) => f.direction === direction && f.type === type),
        `no fixture ${direction}.${type}.json`,
      );
    }
  }
});

for (const f of fixtures) {
  test(`fixture ${f.name}`, () => {
    assert.ok(DIRECTIONS.includes(f.direction), `unknown direction in ${f.name}`);

    // Every direction: decode gives back exactly the fixture, and re-encoding is byte-equal.
    const decoded = decodeMessage(f.direction, f.text);
    assert.deepEqual(decoded, f.json);
    assert.equal(pretty(encodeMessage(f.direction, decoded)), f.text);

    if (f.direction === "phone_to_hub") {
      const encoder = PHONE_ENCODERS[f.type];
      assert.ok(encoder, `no phone_to_hub encoder for "${f.type}"`);
      const encoded = encoder(f.json);
      assert.equal(typeof encoded, "string");
      assert.deepEqual(JSON.parse(encoded), f.json);
      assert.equal(pretty(encoded), f.text, "encoder output is not byte-equal to the fixture");
      assert.deepEqual(decodePhoneToHub(encoded), f.json);
    }

    if (f.direction === "phone_to_door") {
      assert.equal(f.type, "unlock", `no phone_to_door encoder for "${f.type}"`);
      assert.equal(pretty(unlock(f.json.request_id)), f.text, "unlock() is not byte-equal to the fixture");
    }

    if (f.direction === "door_to_phone") {
      assert.deepEqual(decodeDoorToPhone(JSON.stringify(f.json)), f.json);
    }

    if (f.direction === "hub_to_phone") {
      const msg = decodeHubToPhone(f.text);
      assert.equal(msg.type, f.type);
      for (const [k, v] of Object.entries(f.json)) assert.deepEqual(msg[k], v, `field ${k}`);
      // Compact form (what the hub really sends) decodes the same.
      assert.deepEqual(decodeHubToPhone(JSON.stringify(f.json)), f.json);
    }
  });
}

test("hello carries PROTOCOL_VERSION 1", () => {
  assert.equal(PROTOCOL_VERSION, 1);
  assert.equal(JSON.parse(hello("t")).protocol_version, 1);
});

test("unknown extra fields are ignored, top level and nested", () => {
  const msg = decodeHubToPhone(
    JSON.stringify({
      type: "welcome",
      protocol_version: 1,
      phone_id: "p",
      doors: [{ door_id: "d", name: "Front door", online: true, battery: 80 }],
      ice_servers: [{ urls: ["stun:x"], extra: 1 }],
      later_field: { nested: true },
    }),
  );
  assert.deepEqual(msg, {
    type: "welcome",
    protocol_version: 1,
    phone_id: "p",
    doors: [{ door_id: "d", name: "Front door", online: true }],
    ice_servers: [{ urls: ["stun:x"] }],
  });
});

test("error with and without call_id", () => {
  assert.deepEqual(decodeHubToPhone('{"type":"error","code":"already_answered","message":"m","call_id":"c"}'), {
    type: "error",
    code: "already_answered",
    message: "m",
    call_id: "c",
  });
  assert.equal("call_id" in decodeHubToPhone('{"type":"error","code":"busy","message":"m"}'), false);
});

const INVALID = {
  "not JSON": "{nope",
  "empty frame": "",
  "JSON but not an object": "[1,2]",
  "JSON null": "null",
  "a string": '"ring"',
  "missing type": '{"call_id":"c"}',
  "type not a string": '{"type":3}',
  "unknown type": '{"type":"teleport","call_id":"c"}',
  "phone->hub type sent to phone": '{"type":"answer","call_id":"c"}',
  "missing call_id": '{"type":"ring","door_id":"d","door_name":"Front door"}',
  "null call_id": '{"type":"answered_elsewhere","call_id":null}',
  "call_id is a number": '{"type":"answered_elsewhere","call_id":7}',
  "online is a string": '{"type":"door_status","door_id":"d","online":"false"}',
  "missed_ring at_ms a string": '{"type":"missed_ring","door_id":"d","door_name":"x","at_ms":"1767225600123"}',
  "missed_ring at_ms negative": '{"type":"missed_ring","door_id":"d","door_name":"x","at_ms":-1}',
  "missed_ring at_ms fractional": '{"type":"missed_ring","door_id":"d","door_name":"x","at_ms":1.5}',
  "missed_ring without at_ms": '{"type":"missed_ring","door_id":"d","door_name":"x"}',
  "unknown ring end reason": '{"type":"ringing_cancelled","call_id":"c","reason":"bored"}',
  "unknown hang up reason": '{"type":"hang_up","call_id":"c","reason":"bored"}',
  "unknown error code": '{"type":"error","code":"oops","message":"m"}',
  "error without message": '{"type":"error","code":"busy"}',
  "candidate missing sdp_m_line_index": '{"type":"ice","call_id":"c","candidate":{"candidate":"candidate:1"}}',
  "negative sdp_m_line_index": '{"type":"ice","call_id":"c","candidate":{"candidate":"candidate:1","sdp_m_line_index":-1}}',
  "fractional sdp_m_line_index": '{"type":"ice","call_id":"c","candidate":{"candidate":"candidate:1","sdp_m_line_index":0.5}}',
  "candidate is a string": '{"type":"ice","call_id":"c","candidate":"candidate:1"}',
  "doors not an array": '{"type":"welcome","protocol_version":1,"phone_id":"p","doors":{},"ice_servers":[]}',
  "urls not an array": '{"type":"welcome","protocol_version":1,"phone_id":"p","doors":[],"ice_servers":[{"urls":"stun:x"}]}',
  "protocol_version a string": '{"type":"welcome","protocol_version":"1","phone_id":"p","doors":[],"ice_servers":[]}',
};

for (const [what, text] of Object.entries(INVALID)) {
  test(`decodeHubToPhone rejects ${what}`, () => {
    assert.throws(() => decodeHubToPhone(text), (e) => {
      assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${e}`);
      assert.ok(e.message.length > 0);
      return true;
    });
  });
}

test("decodeHubToPhone rejects a non-string frame (binary)", () => {
  assert.throws(() => decodeHubToPhone(new ArrayBuffer(4)), ProtocolError);
});

test("error messages name the problem", () => {
  assert.throws(() => decodeHubToPhone('{"type":"ring","door_id":"d","door_name":"x"}'), /call_id/);
  assert.throws(() => decodeHubToPhone('{"type":"teleport"}'), /teleport/);
  assert.throws(() => decodeHubToPhone('{"type":"hang_up","call_id":"c","reason":"bored"}'), /bored/);
});

test("encoders refuse values the hub would reject", () => {
  assert.throws(() => hangUp("c", "bored"), ProtocolError);
  assert.throws(() => answer(undefined), ProtocolError);
  assert.throws(() => answer(42), ProtocolError);
  assert.throws(() => hello(null), ProtocolError);
  assert.throws(() => sdpAnswer("c", undefined), ProtocolError);
  assert.throws(() => ice("c", { candidate: "candidate:1", sdpMLineIndex: null }), ProtocolError);
  assert.throws(() => encodeMessage("phone_to_hub", { type: "ring", call_id: "c" }), ProtocolError);
});

test("ice maps RTCIceCandidate.sdpMLineIndex to sdp_m_line_index", () => {
  const rtcCandidate = { candidate: "candidate:2 1 udp 1 127.0.0.1 9 typ host", sdpMid: "0", sdpMLineIndex: 1, usernameFragment: "u" };
  assert.deepEqual(JSON.parse(ice("c", rtcCandidate)), {
    type: "ice",
    call_id: "c",
    candidate: { candidate: "candidate:2 1 udp 1 127.0.0.1 9 typ host", sdp_m_line_index: 1 },
  });
});

test("toRtcIceServers keeps urls, username, credential", () => {
  const welcome = JSON.parse(readFileSync(join(FIXTURES, "hub_to_phone.welcome.json"), "utf8"));
  assert.deepEqual(toRtcIceServers(decodeHubToPhone(JSON.stringify(welcome)).ice_servers), welcome.ice_servers);
});

test("data-channel messages carry CONTROL_VERSION and bad ones are refused", () => {
  assert.equal(CONTROL_VERSION, 1);
  assert.equal(JSON.parse(unlock(3)).version, 1);
  assert.throws(() => unlock(-1), ProtocolError);
  assert.throws(() => decodeDoorToPhone('{"type":"unlocked","version":1}'), /request_id/);
  assert.throws(() => decodeDoorToPhone('{"type":"error","version":1,"code":"nope","message":"m"}'), /nope/);
  assert.throws(() => decodeDoorToPhone('{"type":"unlock","version":1,"request_id":1}'), ProtocolError);
});

test("ring and answered without ice_servers (older hub) decode with an empty list", () => {
  const ring = decodeHubToPhone('{"type":"ring","call_id":"c","door_id":"d","door_name":"Front door"}');
  assert.deepEqual(ring.ice_servers, []);
  const answered = decodeHubToDoor('{"type":"answered","call_id":"c","phone_id":"p"}');
  assert.deepEqual(answered.ice_servers, []);
});

test("a call uses ring's per-call servers, else welcome's", () => {
  const welcome = { ice_servers: [{ urls: ["stun:w"] }] };
  const turn = { urls: ["turn:t:3478?transport=udp"], username: "1767225600:p-7c1b", credential: "x" };
  assert.deepEqual(callIceServers({ ice_servers: [turn] }, welcome), [turn]);
  assert.deepEqual(callIceServers({ ice_servers: [] }, welcome), welcome.ice_servers);
  assert.deepEqual(callIceServers({ ice_servers: [] }, null), []);
});

test("the ring fixture's TURN credential is base64(HMAC-SHA1(secret, username))", async () => {
  const { createHmac } = await import("node:crypto");
  const ring = JSON.parse(readFileSync(`${FIXTURES}hub_to_phone.ring.json`, "utf8"));
  const turn = ring.ice_servers.find((s) => s.username);
  const expected = createHmac("sha1", "doorbell-example-secret").update(turn.username).digest("base64");
  assert.equal(turn.credential, expected);
  assert.match(turn.username, /^\d+:p-/);
});
