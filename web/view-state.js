// @ts-check
// Live view in the reducer (state.js routes to these; pure like it, tested in
// view-state.test.mjs): the View button's request, the viewer screen's model, the hub's
// answers (`view_offer`, the session closing with a reason, `forbidden`), and a ring during a
// view, whose Answer picks up in the view's own session (docs/PROTOCOL.md "Live view").

import * as proto from "./protocol.js";
import { Effect, Screen } from "./state.js";

/** The viewer's actions (part of state.js's `Action`). */
export const ViewAction = Object.freeze({
  ViewClicked: "view-clicked", // {doorId}: the View button of a door
  ViewStopped: "view-stopped", // Stop on the viewer screen
  ViewFrame: "view-frame", // the view's first frame was decoded
  ViewFailed: "view-failed", // the view cannot show the door (no frames, ICE failed)
});

/**
 * @typedef {import("./state.js").Model} Model
 * @typedef {import("./state.js").Act} Act
 * @typedef {import("./state.js").Eff} Eff
 * @typedef {{
 *   doorId: string, doorName: string, sessionId: string | null, iceServers: any[], live: boolean,
 * }} ViewModel what the viewer screen shows (sessionId: from the door's `view_offer`)
 */

/** @param {string} type */
export const isViewAction = (type) => /** @type {string[]} */ (Object.values(ViewAction)).includes(type);

/** Why the door or hub ended a view, as the viewer reads it. @type {Record<string, string>} */
const ENDED = {
  time_limit: "The view reached its time limit.",
  limit: "Too many phones are watching this door right now.",
  call_ended: "The call ended.",
  peer_gone: "The door went offline.",
  failed: "The connection to the door failed.",
  closed: "The view was closed.",
};

/** Whether the View button shows for this door: online, and `may_view` (absent: yes). @param {Model} m @param {string} doorId */
export function canView(m, doorId) {
  const door = m.doors.find((d) => d.door_id === doorId);
  return !!door && door.online && door.access?.may_view !== false;
}

/** @param {Model} m @param {string} title @param {string} detail @returns {Model} */
function ended(m, title, detail) {
  return { ...m, view: null, notice: { kind: Screen.Ended, title, detail }, screen: Screen.Ended };
}

/** Close the view's session at the hub, if it has one. @param {Model} m @param {Eff[]} fx @returns {Model} */
export function stopView(m, fx) {
  if (m.view?.sessionId) fx.push({ type: Effect.Send, text: proto.closeSession(m.view.sessionId) });
  return { ...m, view: null };
}

/** The viewer's own actions. @param {Model} m @param {Act} a @param {Eff[]} fx @returns {Model} */
export function onViewAction(m, a, fx) {
  const v = m.view;
  switch (a.type) {
    case ViewAction.ViewStopped:
      return m.screen === Screen.Viewing ? { ...stopView(m, fx), notice: null, screen: Screen.Idle } : m;
    case ViewAction.ViewClicked: {
      if (m.screen !== Screen.Idle || v || m.call || !canView(m, a.doorId)) return m;
      const door = m.doors.find((d) => d.door_id === a.doorId);
      fx.push({ type: Effect.Send, text: proto.view(a.doorId) });
      /** @type {ViewModel} */
      const view = { doorId: a.doorId, doorName: door?.name ?? a.doorId, sessionId: null, iceServers: [], live: false };
      return { ...m, idleError: "", view, screen: Screen.Viewing };
    }
    case ViewAction.ViewFrame: {
      if (!v || v.live) return m;
      m = { ...m, view: { ...v, live: true } };
      // A ring that came in before the first frame shows it now (Answer picks up in it).
      const c = m.call;
      if (c && !c.answered && c.sessionId === v.sessionId && c.preview === "starting") {
        m = { ...m, call: { ...c, preview: "live" } };
      }
      return m;
    }
    case ViewAction.ViewFailed: {
      if (!v) return m;
      const c = m.call;
      m = stopView(m, fx);
      if (c && c.sessionId === v.sessionId && !c.answered) {
        return { ...m, call: { ...c, sessionId: null, preview: "failed" } };
      }
      return m.screen === Screen.Viewing ? ended(m, "View ended", ENDED.failed) : m;
    }
    default:
      return m;
  }
}

/**
 * A hub message about the view, or null when it is not one (state.js handles it then).
 * @param {Model} m @param {any} msg @param {Eff[]} fx @returns {Model | null}
 */
export function onViewHubMessage(m, msg, fx) {
  const v = m.view;
  switch (msg.type) {
    case "view_offer":
      // A view this phone stopped meanwhile (or never asked for): close it.
      if (!v || v.doorId !== msg.door_id || v.sessionId) {
        fx.push({ type: Effect.Send, text: proto.closeSession(msg.session_id) });
        return m;
      }
      return { ...m, view: { ...v, sessionId: msg.session_id, iceServers: msg.ice_servers ?? [] } };
    case "session_closed": {
      // Before its offer the phone does not know its view's id: a refusal (`limit`) names a
      // session that is not the ringing call's.
      if (!v || (v.sessionId ? v.sessionId !== msg.session_id : msg.session_id === m.call?.sessionId)) return null;
      const c = m.call;
      m = { ...m, view: null };
      // The view was showing a ring: the ring goes on without video (Answer takes the plain path).
      if (c && !c.answered && c.sessionId === msg.session_id) {
        return { ...m, call: { ...c, sessionId: null, preview: "failed" } };
      }
      return m.screen === Screen.Viewing ? ended(m, "View ended", ENDED[msg.reason] ?? "") : m;
    }
    case "error":
      // An answer to `view` (no call): refused before the door was asked.
      if (!v || v.sessionId || msg.call_id || m.screen !== Screen.Viewing) return null;
      if (msg.code === "forbidden") {
        return { ...m, view: null, screen: Screen.Idle, idleError: `This phone may not view ${v.doorName}. An owner can allow it.` };
      }
      if (msg.code === "invalid_state" || msg.code === "unknown_call") {
        return ended(m, "Can't view the door", msg.message || "");
      }
      return null;
    default:
      return null;
  }
}

/**
 * A ring: ask for the door's live video at once (`preview`: video only, behind Answer/Decline).
 * A phone viewing the ringing door has it already: the ring uses the view's session (Answer
 * upgrades it). A ring of another door ends the view. Sets the call's session and preview.
 * @param {Model} m @param {import("./state.js").CallView} call @param {Eff[]} fx @returns {Model}
 */
export function ringDuringView(m, call, fx) {
  const v = m.view;
  if (v && v.doorId === call.doorId && v.sessionId) {
    call.sessionId = v.sessionId;
    call.preview = v.live ? "live" : "starting";
    return m;
  }
  if (v) m = stopView(m, fx);
  fx.push({ type: Effect.Send, text: proto.preview(call.id) });
  return m;
}
