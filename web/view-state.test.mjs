// Live view in the reducer (view-state.js through state.js): the View button, the viewer
// screen, the reasons a view ends, and a ring during a view answered in the view's session.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { Action, Effect, Screen, answerSession, initialModel, reduce } from "./state.js";
import { canView } from "./view-state.js";

const NOW = Date.UTC(2026, 11, 4, 14, 2);
const member = (may_view) => ({ role: "member", may_unlock: true, may_view });
const WELCOME = {
  type: "welcome",
  protocol_version: 1,
  phone_id: "p-1",
  doors: [
    { door_id: "d-front", name: "Front door", online: true, access: member(true) },
    { door_id: "d-back", name: "Back door", online: true, access: member(false) },
    { door_id: "d-garden", name: "Garden gate", online: false },
  ],
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

const hub = (msg) => ({ type: Action.HubMessage, msg, at: NOW });
const sent = (effects) => effects.filter((e) => e.type === Effect.Send).map((e) => JSON.parse(e.text));
const idle = () =>
  run(initialModel(true), { type: Action.HubConnecting, firstAttempt: true }, { type: Action.HubOpen }, hub(WELCOME)).model;
const OFFER = { type: "view_offer", door_id: "d-front", session_id: "v-1", sdp: "v=0", ice_servers: [{ urls: ["stun:x"] }] };

/** A phone watching the front door, first frame shown. */
const viewing = () => run(idle(), { type: Action.ViewClicked, doorId: "d-front" }, hub(OFFER), { type: Action.ViewFrame }).model;

test("the View button shows only for online doors this phone may view", () => {
  const m = idle();
  assert.equal(canView(m, "d-front"), true);
  assert.equal(canView(m, "d-back"), false, "may_view off");
  assert.equal(canView(m, "d-garden"), false, "offline");
  const { model, effects } = run(m, { type: Action.ViewClicked, doorId: "d-back" });
  assert.equal(model.screen, Screen.Idle);
  assert.deepEqual(effects, []);
});

test("View asks the hub, the offer opens the session, the first frame makes it live, Stop closes it", () => {
  let { model, effects } = run(idle(), { type: Action.ViewClicked, doorId: "d-front" });
  assert.equal(model.screen, Screen.Viewing);
  assert.deepEqual(sent(effects), [{ type: "view", door_id: "d-front" }]);
  assert.deepEqual(model.view, { doorId: "d-front", doorName: "Front door", sessionId: null, iceServers: [], live: false });
  ({ model } = run(model, hub(OFFER)));
  assert.equal(model.view.sessionId, "v-1");
  assert.deepEqual(model.view.iceServers, OFFER.ice_servers);
  ({ model } = run(model, { type: Action.ViewFrame }));
  assert.equal(model.view.live, true);
  ({ model, effects } = run(model, { type: Action.ViewStopped }));
  assert.equal(model.screen, Screen.Idle);
  assert.equal(model.view, null);
  assert.deepEqual(sent(effects), [{ type: "close_session", session_id: "v-1" }]);
});

test("the door's reasons end the view with a message; an unwanted offer is closed", () => {
  for (const [reason, text] of [
    ["time_limit", /time limit/],
    ["limit", /Too many phones/],
    ["peer_gone", /offline/],
  ]) {
    const { model } = run(viewing(), hub({ type: "session_closed", session_id: "v-1", reason }));
    assert.equal(model.screen, Screen.Ended);
    assert.equal(model.view, null);
    assert.match(model.notice.detail, text);
    assert.equal(model.notice.title, "View ended");
  }
  const refused = run(idle(), { type: Action.ViewClicked, doorId: "d-front" }, hub({ type: "session_closed", session_id: "v-9", reason: "limit" }));
  assert.equal(refused.model.screen, Screen.Ended, "refused before any offer");
  assert.match(refused.model.notice.detail, /Too many phones/);
  const { effects } = run(idle(), hub(OFFER));
  assert.deepEqual(sent(effects), [{ type: "close_session", session_id: "v-1" }], "not asked for");
});

test("a phone without may_view is told so on the idle screen (typed error forbidden)", () => {
  const m = run(idle(), { type: Action.ViewClicked, doorId: "d-front" }).model;
  const { model } = run(m, hub({ type: "error", code: "forbidden", message: "no" }));
  assert.equal(model.screen, Screen.Idle);
  assert.equal(model.view, null);
  assert.match(model.idleError, /may not view Front door/);
});

test("a ring of the viewed door uses the view's session: no preview request, Answer picks up in it", () => {
  let { model, effects } = run(viewing(), hub({ type: "ring", call_id: "c-1", door_id: "d-front", door_name: "Front door", ice_servers: [] }));
  assert.equal(model.screen, Screen.Ringing);
  assert.deepEqual(sent(effects), [], "no `preview`: the view shows the door already");
  assert.equal(model.call.sessionId, "v-1");
  assert.equal(model.call.preview, "live");
  assert.equal(answerSession(model), "v-1");
  ({ model, effects } = run(model, { type: Action.AnswerSent, inSession: true }));
  assert.equal(model.screen, Screen.Connecting);
  assert.equal(model.call.inSession, true);
  assert.equal(model.view, null, "the view is the call now");
  assert.deepEqual(
    effects.filter((e) => e.type === Effect.StartCall),
    [{ type: Effect.StartCall, inSession: true }],
  );
});

test("another phone answers: this phone shows it, then goes back to its view (video only)", () => {
  let { model } = run(viewing(), hub({ type: "ring", call_id: "c-1", door_id: "d-front", door_name: "Front door", ice_servers: [] }));
  ({ model } = run(model, hub({ type: "answered_elsewhere", call_id: "c-1" })));
  assert.equal(model.screen, Screen.AnsweredElsewhere);
  assert.equal(model.view?.sessionId, "v-1", "the view stays open");
  ({ model } = run(model, { type: Action.Home }));
  assert.equal(model.screen, Screen.Viewing);
});

test("a ring of another door ends the view and previews as usual", () => {
  const { model, effects } = run(viewing(), hub({ type: "ring", call_id: "c-2", door_id: "d-back", door_name: "Back door", ice_servers: [] }));
  assert.equal(model.view, null);
  assert.deepEqual(sent(effects), [
    { type: "close_session", session_id: "v-1" },
    { type: "preview", call_id: "c-2" },
  ]);
});

test("losing the hub ends the view", () => {
  const { model } = run(viewing(), { type: Action.HubLost, delayMs: 1000 });
  assert.equal(model.view, null);
  assert.equal(model.screen, Screen.HubUnreachable);
});
