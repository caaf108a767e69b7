// The reducer's side of the live preview while ringing (docs/PROTOCOL.md "Preview while
// ringing"): a ring asks for the door's video, Answer picks up in the session only while its
// video shows, and every failure of the preview leaves the plain answer path.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { Action, Effect, Screen, answerSession, initialModel, reduce } from "./state.js";

const WELCOME = {
  type: "welcome",
  protocol_version: 1,
  phone_id: "p-1",
  doors: [{ door_id: "d-front", name: "Front door", online: true }],
  ice_servers: [],
};

function run(model, ...actions) {
  const effects = [];
  for (const a of actions) {
    const step = reduce(model, a);
    model = step.model;
    effects.push(...step.effects);
  }
  return { model, effects };
}

const hub = (msg) => ({ type: Action.HubMessage, msg, at: 0 });
const ring = (id = "c-1") => hub({ type: "ring", call_id: id, door_id: "d-front", door_name: "Front door", ice_servers: [] });
const offer = (session = "s-1", call = "c-1") => hub({ type: "session_offer", call_id: call, session_id: session, sdp: "v=0" });
const closed = (reason, session = "s-1") => hub({ type: "session_closed", session_id: session, reason });
const frame = { type: Action.PreviewFrame };

function idle() {
  return run(initialModel(true), { type: Action.HubConnecting, firstAttempt: true }, { type: Action.HubOpen }, hub(WELCOME)).model;
}

/** Ringing with the door's video showing in session s-1. */
const live = () => run(idle(), ring(), offer(), frame).model;

test("a ring asks for the door's video; the session and its first frame make it live", () => {
  const r = run(idle(), ring());
  assert.deepEqual(r.effects, [{ type: Effect.Send, text: '{"type":"preview","call_id":"c-1"}' }]);
  assert.equal(r.model.call.preview, "starting");
  assert.equal(answerSession(r.model), null, "no video yet: a plain answer");

  // A frame before the session's offer, or another call's offer, changes nothing.
  let m = run(r.model, frame, offer("s-x", "c-other")).model;
  assert.deepEqual([m.call.preview, m.call.sessionId], ["starting", null]);
  m = run(m, offer(), frame).model;
  assert.deepEqual([m.screen, m.call.preview, m.call.sessionId], [Screen.Ringing, "live", "s-1"]);
  assert.equal(answerSession(m), "s-1");
  // A second offer for the call does not replace the session.
  assert.equal(run(m, offer("s-2")).model.call.sessionId, "s-1");
});

test("answer in the session: the Call takes the preview's connection", () => {
  const { model, effects } = run(live(), { type: Action.AnswerSent, inSession: true });
  assert.equal(model.screen, Screen.Connecting);
  assert.deepEqual([model.call.answered, model.call.inSession], [true, true]);
  assert.deepEqual(effects[0], { type: Effect.StartCall, inSession: true });
  assert.equal(answerSession(model), null, "answered: no second answer");

  // The door closing the answered session is its hang-up.
  const ended = run(model, closed("closed"));
  assert.equal(ended.model.screen, Screen.Ended);
  assert.deepEqual(ended.effects, [{ type: Effect.EndCall, notify: false, reason: "normal" }]);
});

test("another phone answers: answered elsewhere, from the session or the call", () => {
  for (const msg of [closed("answered_elsewhere"), hub({ type: "answered_elsewhere", call_id: "c-1" })]) {
    const { model, effects } = run(live(), msg);
    assert.equal(model.screen, Screen.AnsweredElsewhere);
    assert.equal(model.notice.title, "Answered on another phone");
    assert.deepEqual(effects, [{ type: Effect.EndCall, notify: false, reason: "normal" }]);
  }
  // Another session's close is not ours.
  assert.equal(run(live(), closed("answered_elsewhere", "s-other")).model.screen, Screen.Ringing);
});

test("a failed preview never blocks answering: the plain answer path", () => {
  // No frames in time, or ICE failed: this phone closes the session.
  let r = run(live(), { type: Action.PreviewFailed });
  assert.deepEqual(r.effects, [{ type: Effect.Send, text: '{"type":"close_session","session_id":"s-1"}' }]);
  assert.deepEqual([r.model.screen, r.model.call.preview, answerSession(r.model)], [Screen.Ringing, "failed", null]);
  r = run(r.model, { type: Action.AnswerSent, inSession: true });
  assert.deepEqual(r.effects[0], { type: Effect.StartCall, inSession: false }, "the shell's stale wish is not trusted");
  assert.equal(r.model.call.inSession, false);

  // The door refuses (limit) or fails: nothing to close, still ringing, plain answer.
  for (const reason of ["limit", "failed", "peer_gone"]) {
    const m = run(idle(), ring(), offer(), closed(reason)).model;
    assert.deepEqual([m.screen, m.call.preview, answerSession(m)], [Screen.Ringing, "failed", null]);
    assert.deepEqual(run(m, { type: Action.PreviewFailed }).effects, [], "failed once");
  }
  // The hub refuses the preview (this phone no longer rings for the call).
  const refused = run(idle(), ring(), hub({ type: "error", code: "invalid_state", message: "x", call_id: "c-1" })).model;
  assert.equal(refused.call.preview, "failed");
  // Without an offer there is no session to close.
  assert.deepEqual(run(run(idle(), ring()).model, { type: Action.PreviewFailed }).effects, []);
});

test("a plain answer: the door closing the preview does not end the call", () => {
  const m = run(idle(), ring(), offer(), { type: Action.AnswerSent }).model;
  assert.deepEqual([m.call.inSession, m.call.preview], [false, "off"]);
  const after = run(m, closed("closed"));
  assert.equal(after.model.screen, Screen.Connecting);
  assert.deepEqual(after.effects, []);
  assert.equal(run(m, frame).model.call.preview, "off", "a late preview frame is ignored");
});

test("decline ends the preview with the ring (the hub closes the session)", () => {
  const { model, effects } = run(live(), { type: Action.DeclineClicked });
  assert.equal(model.call, null);
  assert.deepEqual(effects.map((e) => e.type), [Effect.Send, Effect.EndCall]);
  assert.equal(effects[0].text, '{"type":"decline","call_id":"c-1"}');
});
