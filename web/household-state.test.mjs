// The household in the reducer (state.js): roles and permissions from the hub, what they
// allow on screen, and the news of phones joining and leaving.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { Action, Screen, canUnlock, initialModel, mayUnlock, ownedDoors, reduce } from "./state.js";

const NOW = Date.UTC(2026, 11, 4, 14, 2);
const OWNER = { role: "owner", may_unlock: true, may_view: true };
const NO_UNLOCK = { role: "member", may_unlock: false, may_view: true };

/** @param {any} model @param {...any} actions */
function run(model, ...actions) {
  for (const a of actions) model = reduce(model, a).model;
  return model;
}

const hub = (msg) => ({ type: Action.HubMessage, msg, at: NOW });

/** A phone idle with the front door (access as given) and a door from a hub without roles. */
function idle(access) {
  const welcome = {
    type: "welcome",
    protocol_version: 1,
    phone_id: "p-1",
    doors: [
      { door_id: "d-front", name: "Front door", online: true, access },
      { door_id: "d-old", name: "Old hub door", online: true },
    ],
    ice_servers: [],
  };
  return run(initialModel(true), { type: Action.HubConnecting, firstAttempt: true }, { type: Action.HubOpen }, hub(welcome));
}

/** In a connected call from `door`, its control channel open. */
function inCall(model, door = "d-front") {
  return run(
    model,
    hub({ type: "ring", call_id: "c-1", door_id: door, door_name: "Door", ice_servers: [] }),
    { type: Action.AnswerSent },
    { type: Action.PeerState, state: "connected" },
    { type: Action.FirstFrame, at: 100 },
    { type: Action.ControlOpen },
  );
}

test("a phone that may not unlock never can, and learns a change at once", () => {
  let m = inCall(idle(NO_UNLOCK));
  assert.equal(m.screen, Screen.InCall);
  assert.equal(mayUnlock(m), false);
  assert.equal(canUnlock(m), false);
  m = run(m, hub({ type: "access_changed", door_id: "d-front", access: { ...NO_UNLOCK, may_unlock: true } }));
  assert.equal(canUnlock(m), true);
  // A door from a hub that knows no roles: unlock as before.
  assert.equal(canUnlock(inCall(idle(NO_UNLOCK), "d-old")), true);
});

test("only owners open a door's household screen", () => {
  const member = idle(NO_UNLOCK);
  assert.deepEqual(ownedDoors(member), []);
  assert.equal(run(member, { type: Action.ShowHousehold, doorId: "d-front" }).screen, Screen.Idle);
  const owner = run(idle(OWNER), { type: Action.ShowHousehold, doorId: "d-front" });
  assert.equal(owner.screen, Screen.Household);
  assert.equal(owner.householdDoor, "d-front");
  assert.equal(run(owner, { type: Action.Home }).screen, Screen.Idle);
});

test("the idle screen says who joined and who left", () => {
  let m = run(idle(OWNER), hub({ type: "phone_joined", door_id: "d-front", phone_id: "p-2", name: "Ben's phone" }));
  assert.match(m.householdNote, /^Ben's phone joined Front door/);
  m = run(m, hub({ type: "phone_removed", door_id: "d-front", phone_id: "p-2", name: "Ben's phone" }));
  assert.match(m.householdNote, /^Ben's phone left Front door/);
});
