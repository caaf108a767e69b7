// "Pair this phone with Front door?" (issue 11, item 2): a pairing link is only redeemed after
// the user says yes, and the question survives the hub connecting meanwhile.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";

import { doorNameFrom, pairCodeFrom } from "./pairing.js";
import { Action, Screen, initialModel, pairQuestion, reduce } from "./state.js";

const WELCOME = {
  type: "welcome",
  protocol_version: 1,
  phone_id: "p-1",
  doors: [{ door_id: "d-front", name: "Front door", online: true }],
  ice_servers: [],
};

/** Runs actions from `model`; returns the last model and every effect, in order. */
const run = (model, ...actions) =>
  actions.reduce(
    (done, action) => {
      const next = reduce(done.model, action);
      return { model: next.model, effects: [...done.effects, ...next.effects] };
    },
    { model, effects: [] },
  );

const hub = (msg) => ({ type: Action.HubMessage, msg, at: 1 });
const offered = (doorName = "Front door") => ({ type: Action.PairOffered, code: "abc", pin: null, doorName });

test("links carry the door's name for the question; its absence or garbage gives null", () => {
  const link = "https://hub.example/#pair=abc&door=K%C3%BCche%20%26%20Hof&fp=AA";
  assert.equal(pairCodeFrom(link), "abc");
  assert.equal(doorNameFrom(link), "Küche & Hof");
  assert.equal(doorNameFrom("https://hub.example/#pair=abc"), null);
  assert.equal(doorNameFrom("https://hub.example/#pair=abc&door=%E0%A4%A"), null);
  assert.equal(doorNameFrom("https://hub.example/#pair=abc&door=%20"), null);
  assert.equal(doorNameFrom(`#pair=abc&door=${"x".repeat(300)}`)?.length, 64);
});

test("opening a link asks first and redeems nothing; Pair starts pairing", () => {
  const { model, effects } = run(initialModel(false), offered());
  assert.equal(model.screen, Screen.ConfirmPair);
  assert.equal(pairQuestion(model.pairOffer), "Pair this phone with Front door?");
  assert.deepEqual(effects, []);
  const started = run(model, { type: Action.PairStarted }).model;
  assert.deepEqual([started.screen, started.pairOffer], [Screen.ConnectingHub, null]);
  assert.equal(pairQuestion({ code: "c", pin: null, doorName: null }), "Pair this phone with this doorbell?");
});

test("Not now: an unpaired phone goes to not-paired, a paired one home", () => {
  assert.equal(run(initialModel(false), offered(), { type: Action.PairCancelled }).model.screen, Screen.NotPaired);
  const m = run(initialModel(true), { type: Action.HubConnecting, firstAttempt: true }, offered(), hub(WELCOME)).model;
  assert.equal(m.screen, Screen.ConfirmPair, "the hub's welcome does not take the question away");
  const home = run(m, { type: Action.PairCancelled }).model;
  assert.deepEqual([home.screen, home.pairOffer], [Screen.Idle, null]);
});

test("a ring takes over the question, which is back once the call is over", () => {
  const ring = hub({ type: "ring", call_id: "c-1", door_id: "d-front", door_name: "Front door", ice_servers: [] });
  let m = run(initialModel(true), { type: Action.HubConnecting, firstAttempt: true }, hub(WELCOME), offered(), ring).model;
  assert.equal(m.screen, Screen.Ringing);
  m = run(m, { type: Action.DeclineClicked }).model;
  assert.equal(m.screen, Screen.ConfirmPair);
});
