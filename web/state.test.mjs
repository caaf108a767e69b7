// The phone app's reducer (state.js), driven without a browser: each test feeds actions and
// checks the screen, what is shown and the effects asked of the shell.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { Action, Effect, MISSED_SHOWN, PushState, Screen, canAnswer, canUnlock, initialModel, reduce } from "./state.js";

const NOW = Date.UTC(2026, 11, 4, 14, 2);
const WELCOME = {
  type: "welcome",
  protocol_version: 1,
  phone_id: "p-1",
  doors: [
    { door_id: "d-front", name: "Front door", online: true },
    { door_id: "d-garden", name: "Garden gate", online: false },
  ],
  ice_servers: [{ urls: ["stun:hub.example:3478"] }],
};

/** Runs actions from `model`; returns the last model and every effect, in order. */
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
const ring = (id = "c-1", door = "d-front", name = "Front door") =>
  hub({ type: "ring", call_id: id, door_id: door, door_name: name, ice_servers: [] });

/** A phone ringing for call `id` (asking for the door's preview is the ring's own effect). */
const ringing = (id = "c-1") => run(idle(), ring(id)).model;

/** A paired phone on the idle screen. */
function idle() {
  return run(initialModel(true), { type: Action.HubConnecting, firstAttempt: true }, { type: Action.HubOpen }, hub(WELCOME)).model;
}

/** A phone in a connected call with video. */
function inCall() {
  return run(
    idle(),
    ring(),
    { type: Action.AnswerSent },
    { type: Action.PeerState, state: "connected" },
    { type: Action.FirstFrame, at: 100 },
  ).model;
}

const types = (effects) => effects.map((e) => e.type);

test("screens are the data-state strings the page and the end-to-end tests use", () => {
  assert.deepEqual(Object.values(Screen).sort(), [
    "answered-elsewhere", "confirm-pair", "connecting", "connecting-hub", "declined", "door-offline", "ended",
    "history", "household", "hub-unreachable", "idle", "in-call", "missed", "not-paired", "ringing", "viewing",
  ]);
  assert.ok(Object.isFrozen(Screen) && Object.isFrozen(Action) && Object.isFrozen(Effect));
});

test("start: connecting, then idle with the doors at welcome, and the history is loaded", () => {
  let { model, effects } = run(initialModel(true), { type: Action.HubConnecting, firstAttempt: true });
  assert.equal(model.screen, Screen.ConnectingHub);
  assert.equal(model.hubTitle, "Connecting to the hub…");
  ({ model, effects } = run(model, hub(WELCOME)));
  assert.equal(model.screen, Screen.Idle);
  assert.equal(model.hubReady, true);
  assert.deepEqual(model.doors.map((d) => d.name), ["Front door", "Garden gate"]);
  assert.deepEqual(types(effects), [Effect.LoadHistory]);
});

test("a phone without a token shows not-paired", () => {
  const { model } = run(initialModel(false), { type: Action.NotPaired });
  assert.equal(model.screen, Screen.NotPaired);
  assert.equal(model.pairError, "");
});

test("ring -> ringing, with the door's name, per-call or welcome ICE servers", () => {
  const { model } = run(idle(), ring());
  assert.equal(model.screen, Screen.Ringing);
  assert.equal(model.call.doorName, "Front door");
  assert.deepEqual(model.call.iceServers, WELCOME.ice_servers, "no per-call servers: welcome's");
  assert.ok(canAnswer(model));
  const perCall = [{ urls: ["turn:hub.example:3478"], username: "u", credential: "c" }];
  const r = run(idle(), hub({ type: "ring", call_id: "c-2", door_id: "d-x", door_name: "", ice_servers: perCall }));
  assert.deepEqual(r.model.call.iceServers, perCall);
  assert.equal(r.model.call.doorName, "Door", "no name known: a generic one");
});

test("ring marks a door online; a duplicate ring changes nothing", () => {
  const m = run(idle(), ring("c-1", "d-garden", "Garden gate")).model;
  assert.equal(m.doors.find((d) => d.door_id === "d-garden").online, true);
  const again = reduce(m, ring("c-1", "d-garden", "Garden gate"));
  assert.equal(again.model, m);
  assert.deepEqual(again.effects, []);
});

test("a second door ringing replaces an unanswered ring, never an answered call", () => {
  let r = run(ringing("c-1"), ring("c-2", "d-garden", "Garden gate"));
  assert.equal(r.model.call.id, "c-2");
  assert.deepEqual(r.effects, [
    { type: Effect.EndCall, notify: false, reason: "normal" },
    { type: Effect.Send, text: '{"type":"preview","call_id":"c-2"}' },
  ]);
  r = run(inCall(), ring("c-9", "d-garden", "Garden gate"));
  assert.equal(r.model.call.id, "c-1");
  assert.equal(r.model.screen, Screen.InCall);
});

test("decline sends decline, ends the ring and goes home", () => {
  const { model, effects } = run(ringing(), { type: Action.DeclineClicked });
  assert.equal(model.screen, Screen.Idle);
  assert.equal(model.call, null);
  assert.deepEqual(effects, [
    { type: Effect.Send, text: '{"type":"decline","call_id":"c-1"}' },
    { type: Effect.EndCall, notify: false, reason: "normal" },
  ]);
});

test("ringing ends: declined, missed (with the time), door offline, answered elsewhere", () => {
  const cancelled = (reason) => hub({ type: "ringing_cancelled", call_id: "c-1", reason });
  let m = run(idle(), ring(), cancelled("declined")).model;
  assert.deepEqual([m.screen, m.notice.title], [Screen.Declined, "Declined"]);
  assert.equal(m.notice.detail, "The call from Front door was declined.");
  m = run(idle(), ring(), cancelled("timeout")).model;
  assert.deepEqual([m.screen, m.notice.title], [Screen.Missed, "Missed call from Front door"]);
  assert.match(m.notice.detail, /\d\d.\d\d/);
  m = run(idle(), ring(), cancelled("door_offline")).model;
  assert.equal(m.screen, Screen.DoorOffline);
  assert.equal(m.doors.find((d) => d.door_id === "d-front").online, false);
  m = run(idle(), ring(), hub({ type: "answered_elsewhere", call_id: "c-1" })).model;
  assert.deepEqual([m.screen, m.notice.title], [Screen.AnsweredElsewhere, "Answered on another phone"]);
  m = run(idle(), ring(), hub({ type: "answered_elsewhere", call_id: "c-other" })).model;
  assert.equal(m.screen, Screen.Ringing, "another call's news is ignored");
});

test("a notice returns home: idle when the hub is up, hub-unreachable when not", () => {
  let m = run(idle(), ring(), hub({ type: "ringing_cancelled", call_id: "c-1", reason: "timeout" }), { type: Action.Home }).model;
  assert.equal(m.screen, Screen.Idle);
  assert.equal(m.notice, null);
  m = run(inCall(), { type: Action.HubLost, delayMs: 2000 }, hub({ type: "hang_up", call_id: "c-1", reason: "normal" })).model;
  assert.equal(m.screen, Screen.Ended);
  assert.equal(run(m, { type: Action.Home }).model.screen, Screen.HubUnreachable);
});

test("answer: connecting, the Call starts; first frame: in call with the clock", () => {
  let { model, effects } = run(ringing(), { type: Action.AnswerSent });
  assert.equal(model.screen, Screen.Connecting);
  assert.equal(model.call.statusText, "Connecting…");
  assert.deepEqual(types(effects), [Effect.StartCall, Effect.ApplyMute]);
  assert.equal(canAnswer(model), false);
  ({ model, effects } = run(model, { type: Action.PeerState, state: "connected" }, { type: Action.FirstFrame, at: 1234 }));
  assert.equal(model.screen, Screen.InCall);
  assert.equal(model.call.startedAt, 1234);
  assert.equal(model.call.statusText, "");
  assert.deepEqual(types(effects), [Effect.StartClock]);
});

test("connected without video: after the grace the call shows, waiting for video", () => {
  const { model } = run(idle(), ring(), { type: Action.AnswerSent }, { type: Action.PeerState, state: "connected" }, { type: Action.VideoGraceElapsed, at: 5 });
  assert.equal(model.screen, Screen.InCall);
  assert.equal(model.call.statusText, "Waiting for video…");
  const later = run(model, { type: Action.FirstFrame, at: 9 });
  assert.equal(later.model.call.statusText, "");
  assert.equal(later.model.call.startedAt, 5, "the clock started at the grace");
  assert.deepEqual(later.effects, [], "no second clock");
});

test("connect timeout and failures end the call with a notice; hang_up is sent only when answered", () => {
  let r = run(idle(), ring(), { type: Action.AnswerSent }, { type: Action.ConnectTimeout });
  assert.deepEqual([r.model.screen, r.model.notice.title, r.model.notice.detail], [Screen.Ended, "Call failed", "Couldn't connect to Front door."]);
  assert.deepEqual(r.effects.at(-1), { type: Effect.EndCall, notify: true, reason: "failed" });
  r = run(inCall(), { type: Action.ConnectTimeout });
  assert.equal(r.model.screen, Screen.InCall, "a timeout after connecting is stale");
  r = run(inCall(), { type: Action.PeerState, state: "failed" });
  assert.equal(r.model.notice.detail, "The connection to the door was lost.");
  r = run(idle(), ring(), { type: Action.AnswerSent }, { type: Action.SetupFailed, text: "Couldn't set up the call with the door." });
  assert.equal(r.model.notice.detail, "Couldn't set up the call with the door.");
});

test("hang up: hang_up with reason normal, then home", () => {
  const { model, effects } = run(inCall(), { type: Action.HangUpClicked });
  assert.equal(model.screen, Screen.Idle);
  assert.deepEqual(effects, [{ type: Effect.EndCall, notify: true, reason: "normal" }]);
});

test("the door hangs up: the notice names the reason", () => {
  const hangUp = (reason) => hub({ type: "hang_up", call_id: "c-1", reason });
  assert.equal(run(inCall(), hangUp("normal")).model.notice.detail, "Front door hung up.");
  assert.equal(run(inCall(), hangUp("timeout")).model.notice.detail, "The call reached its time limit.");
  const m = run(idle(), ring(), { type: Action.AnswerSent }, hangUp("peer_gone")).model;
  assert.deepEqual([m.screen, m.notice.detail], [Screen.DoorOffline, "The door lost its connection. The call ended."]);
});

test("the door's signaling drops mid-call: a connected call goes on, then ends when the door leaves", () => {
  let m = run(inCall(), hub({ type: "hang_up", call_id: "c-1", reason: "peer_gone" })).model;
  assert.equal(m.screen, Screen.InCall);
  assert.equal(m.call.statusText, "The door's link to the hub dropped; the call goes on.");
  m = run(inCall(), hub({ type: "door_status", door_id: "d-front", online: false })).model;
  assert.equal(m.screen, Screen.InCall);
  assert.equal(m.doors.find((d) => d.door_id === "d-front").online, false);
  const { model, effects } = run(m, { type: Action.ControlClosed });
  assert.deepEqual([model.screen, model.notice.detail], [Screen.Ended, "Front door hung up."]);
  assert.deepEqual(effects, [{ type: Effect.EndCall, notify: false, reason: "normal" }]);
});

test("with signaling up, the control channel closing does not end the call", () => {
  const m = run(inCall(), { type: Action.ControlOpen }, { type: Action.ControlClosed }).model;
  assert.equal(m.screen, Screen.InCall);
  assert.equal(m.call.controlOpen, false);
});

test("hub lost: a connected call goes on; a ringing one ends; reconnecting shows the delay", () => {
  let m = run(inCall(), { type: Action.HubLost, delayMs: 2400 }).model;
  assert.equal(m.screen, Screen.InCall);
  assert.equal(m.hubDetail, "Trying again in 2 s…");
  const pcGone = run(m, { type: Action.PeerState, state: "disconnected" }).model;
  assert.deepEqual([pcGone.screen, pcGone.notice.detail], [Screen.Ended, "Front door hung up or went away."]);
  const r = run(ringing(), { type: Action.HubLost, delayMs: 100 });
  assert.equal(r.model.screen, Screen.HubUnreachable);
  assert.equal(r.model.hubTitle, "Hub unreachable, reconnecting");
  assert.equal(r.model.hubDetail, "Trying again in 1 s…");
  assert.deepEqual(types(r.effects), [Effect.EndCall]);
  assert.equal(run(r.model, hub(WELCOME)).model.screen, Screen.Idle);
});

test("unlock works only in a call on an open channel with no request in flight", () => {
  let m = inCall();
  assert.equal(canUnlock(m), false, "channel not open yet");
  m = run(m, { type: Action.ControlOpen }).model;
  assert.equal(canUnlock(m), true);
  m = run(m, { type: Action.UnlockStatus, status: { kind: "pending", text: "Unlocking…" }, pending: true }).model;
  assert.equal(canUnlock(m), false);
  m = run(m, { type: Action.UnlockStatus, status: { kind: "ok", text: "Door unlocked" }, pending: false }).model;
  assert.equal(canUnlock(m), true);
  assert.deepEqual(m.call.unlock, { kind: "ok", text: "Door unlocked" });
});

test("mute toggles and is applied to the call; answering unmutes", () => {
  let r = run(inCall(), { type: Action.MuteToggled });
  assert.equal(r.model.muted, true);
  assert.deepEqual(r.effects, [{ type: Effect.ApplyMute, muted: true }]);
  r = run(r.model, { type: Action.HangUpClicked }, ring("c-2"), { type: Action.AnswerSent });
  assert.equal(r.model.muted, false);
});

test("hub errors: already answered, unknown call, out of date", () => {
  let m = run(idle(), ring(), hub({ type: "error", code: "already_answered", message: "x" })).model;
  assert.equal(m.screen, Screen.AnsweredElsewhere);
  m = run(idle(), ring(), hub({ type: "error", code: "unknown_call", message: "x", call_id: "c-1" })).model;
  assert.deepEqual([m.screen, m.notice.detail], [Screen.Ended, "This call is already over."]);
  m = run(idle(), hub({ type: "error", code: "unsupported_version", message: "x" })).model;
  assert.equal(m.hubError, "This page is out of date for the hub. Reload the page.");
});

test("missed rings: live and from the history, deduplicated, newest first, a week at most", () => {
  let m = run(idle(), hub({ type: "missed_ring", door_id: "d-front", door_name: "Front door", at_ms: NOW - 60_000 })).model;
  m = run(m, {
    type: Action.HistoryLoaded,
    now: NOW,
    events: [
      { kind: "missed_ring", door_id: "d-front", at: NOW - 60_000 }, // the same ring
      { kind: "missed_ring", door_id: "d-garden", at: NOW - 1000 },
      { kind: "missed_ring", door_id: "d-garden", at: NOW - 8 * 24 * 3600 * 1000 }, // too old
      { kind: "call", door_id: "d-front", at: NOW - 5 },
    ],
  }).model;
  assert.deepEqual(m.missed, [
    { door_id: "d-garden", door_name: "Garden gate", at_ms: NOW - 1000 },
    { door_id: "d-front", door_name: "Front door", at_ms: NOW - 60_000 },
  ]);
  const many = Array.from({ length: 15 }, (_, i) => ({ kind: "missed_ring", door_id: "d-front", at: NOW - i }));
  assert.equal(run(m, { type: Action.HistoryLoaded, now: NOW, events: many }).model.missed.length, MISSED_SHOWN);
});

test("pairing: failure without a token shows the error; with one, the idle screen says it", () => {
  let m = run(initialModel(false), { type: Action.PairStarted }).model;
  assert.deepEqual([m.screen, m.hubTitle], [Screen.ConnectingHub, "Pairing…"]);
  m = run(m, { type: Action.PairFailed, error: "expired", paired: false }).model;
  assert.deepEqual([m.screen, m.pairError], [Screen.NotPaired, "expired"]);
  m = run(idle(), { type: Action.PairStarted }, { type: Action.PairFailed, error: "expired", paired: true }).model;
  assert.equal(m.idleError, "expired");
  m = run(m, { type: Action.PairDone }).model;
  assert.deepEqual([m.idleError, m.pairError, m.paired], ["", "", true]);
});

test("the hub forgets the phone: the call ends, doors are cleared, not-paired says why", () => {
  const { model, effects } = run(ringing(), { type: Action.NotPaired, forget: true, error: "forgotten" });
  assert.deepEqual([model.screen, model.pairError, model.doors.length, model.paired], [Screen.NotPaired, "forgotten", 0, false]);
  assert.deepEqual(types(effects), [Effect.EndCall]);
});

test("the notification panel shows what push.js found, busy while it works", () => {
  assert.equal(initialModel(true).push.state, PushState.Unknown);
  const m = run(idle(), { type: Action.Push, push: { state: PushState.On, text: "on" } }).model;
  assert.deepEqual(m.push, { state: PushState.On, text: "on" });
  assert.equal(m.screen, Screen.Idle);
});

test("the visitor's snapshot reaches the ringing call it belongs to, no other", () => {
  let { model } = run(idle(), ring("c-1"));
  assert.equal(model.call.snapshot, null);
  ({ model } = run(model, hub({ type: "snapshot", call_id: "c-other", url: "/x" })));
  assert.equal(model.call.snapshot, null);
  ({ model } = run(model, hub({ type: "snapshot", call_id: "c-1", url: "/api/snapshots/cap/t" })));
  assert.equal(model.call.snapshot, "/api/snapshots/cap/t");
  assert.equal(model.screen, Screen.Ringing);
});

test("history opens from idle, goes home, and a ring takes over from it", () => {
  let { model } = run(idle(), { type: Action.ShowHistory });
  assert.equal(model.screen, Screen.History);
  assert.equal(run(model, { type: Action.Home }).model.screen, Screen.Idle);
  ({ model } = run(model, ring("c-2")));
  assert.equal(model.screen, Screen.Ringing);
  assert.equal(run(model, { type: Action.ShowHistory }).model.screen, Screen.Ringing, "not during a ring");
});
