// @ts-check
// The phone app's state: one immutable model and a pure reducer, `reduce(model, action)`,
// that returns the next model plus the effects the shell (app.js) must carry out. No DOM, no
// timers, no sockets: tested in node (state.test.mjs). The screen shown is `model.screen`
// (rendered into document.body.dataset.state, where CSS picks the screen).

import * as proto from "./protocol.js";
import { ViewAction, isViewAction, onViewAction, onViewHubMessage, ringDuringView } from "./view-state.js";

/** The screens, as rendered into `data-state` (the end-to-end tests read these strings). */
export const Screen = Object.freeze({
  NotPaired: "not-paired",
  ConfirmPair: "confirm-pair",
  ConnectingHub: "connecting-hub",
  HubUnreachable: "hub-unreachable",
  Idle: "idle",
  Ringing: "ringing",
  Connecting: "connecting",
  InCall: "in-call",
  AnsweredElsewhere: "answered-elsewhere",
  Missed: "missed",
  Declined: "declined",
  Ended: "ended",
  DoorOffline: "door-offline",
  History: "history",
  Household: "household",
  Viewing: "viewing", // a live view of a door (view-state.js)
});
/** @typedef {typeof Screen[keyof typeof Screen]} ScreenName */

/** Screens of a call in progress: hub reconnects and welcomes do not take them over. */
/** @type {Set<ScreenName>} */
const CALL_SCREENS = new Set([Screen.Ringing, Screen.Connecting, Screen.InCall]);
/** Terminal screens: shown for a while (or until tapped), then back home. */
/** @type {Set<ScreenName>} */
const NOTICE_SCREENS = new Set([
  Screen.AnsweredElsewhere,
  Screen.Missed,
  Screen.Declined,
  Screen.Ended,
  Screen.DoorOffline,
]);

/** Whether this phone rings with the app closed (Web Push), as the idle screen says it. */
export const PushState = Object.freeze({
  Unknown: "unknown", // not checked yet
  Unavailable: "unavailable", // impossible here (plain http, iOS outside the Home Screen, …)
  Off: "off",
  Busy: "busy", // subscribing or unsubscribing
  On: "on",
  Denied: "denied", // the user blocked notifications for the site
});

/** Missed rings listed on the idle screen (newest first). */
export const MISSED_SHOWN = 10;
/** Older missed rings are history, not news. */
export const MISSED_SHOWN_FOR_MS = 7 * 24 * 3600 * 1000;

/** What the reducer is told. */
export const Action = Object.freeze({
  HubConnecting: "hub-connecting", // {firstAttempt}
  HubOpen: "hub-open",
  HubLost: "hub-lost", // {delayMs}
  HubMessage: "hub-message", // {msg, at}: a decoded hub -> phone message
  HistoryLoaded: "history-loaded", // {events, now}
  NotPaired: "not-paired", // {error?}: no token, or the hub forgot this phone
  PairStarted: "pair-started",
  PairFailed: "pair-failed", // {error, paired}
  PairDone: "pair-done",
  PairLinkInvalid: "pair-link-invalid",
  PairOffered: "pair-offered", // {code, pin, doorName}: a pairing link was opened
  PairCancelled: "pair-cancelled", // "Not now" on the question
  AnswerSent: "answer-sent", // {inSession}: `answer_in_session` was sent (else `answer`)
  DeclineClicked: "decline-clicked",
  HangUpClicked: "hang-up-clicked",
  MuteToggled: "mute-toggled",
  Home: "home", // the notice timed out or was tapped
  // From the Call (media):
  MicReady: "mic-ready",
  MicFailed: "mic-failed",
  PeerState: "peer-state", // {state}: RTCPeerConnection.connectionState
  FirstFrame: "first-frame", // {at}
  VideoGraceElapsed: "video-grace-elapsed", // {at}
  ConnectTimeout: "connect-timeout",
  SetupFailed: "setup-failed", // {text}
  ControlOpen: "control-open",
  // From the Preview (the door's video while ringing):
  PreviewFrame: "preview-frame", // the first preview frame was decoded
  PreviewFailed: "preview-failed", // the preview cannot show the door (no offer, no frames, ICE failed)
  ControlClosed: "control-closed",
  UnlockStatus: "unlock-status", // {status: {kind, text} | null, pending}
  Push: "push", // {push: PushView}
  ShowHistory: "show-history", // the History button on the idle screen
  ShowHousehold: "show-household", // {doorId}: the Household button of a door this phone owns
  ...ViewAction, // the live view's (view-state.js)
});

/** What the shell must do after a transition. */
export const Effect = Object.freeze({
  EndCall: "end-call", // {notify, reason}: release the Call; hang_up if notify and answered
  StartCall: "start-call", // {inSession}: create the Call (a new peer connection, or the preview's), microphone, connect timer
  StartClock: "start-clock", // the call became visible: tick its timer every second
  Send: "send", // {text}
  LoadHistory: "load-history",
  ApplyMute: "apply-mute", // {muted}
});

/**
 * @typedef {{role: "owner" | "member" | "guest", may_unlock: boolean, may_view: boolean, until_ms?: number}} Access
 * @typedef {{door_id: string, name: string, online: boolean, access?: Access}} Door
 * @typedef {{door_id: string, door_name: string, at_ms: number}} MissedRing
 * @typedef {{kind: ScreenName, title: string, detail: string}} Notice
 * @typedef {{code: string, pin: string | null, doorName: string | null}} PairOffer
 * @typedef {{kind: "pending" | "ok" | "error", text: string}} UnlockNote
 * @typedef {{state: typeof PushState[keyof typeof PushState], text: string}} PushView
 * @typedef {{
 *   id: string, doorId: string, doorName: string, iceServers: any[],
 *   answered: boolean, statusText: string, peerState: string, gotFrame: boolean,
 *   startedAt: number | null, doorSignalingLost: boolean, micReady: boolean, micFailed: boolean,
 *   controlOpen: boolean, unlockPending: boolean, unlock: UnlockNote | null,
 *   snapshot: string | null, preview: PreviewState, sessionId: string | null, inSession: boolean,
 * }} CallView
 * @typedef {"off" | "starting" | "live" | "failed"} PreviewState the door's video while ringing
 * @typedef {{
 *   screen: ScreenName, paired: boolean, hubReady: boolean, hubFirstAttempt: boolean,
 *   hubTitle: string, hubDetail: string, hubError: string, pairError: string, idleError: string,
 *   welcome: any, doors: Door[], missed: MissedRing[], call: CallView | null,
 *   notice: Notice | null, muted: boolean, push: PushView,
 *   householdNote: string, householdDoor: string | null, pairOffer: PairOffer | null,
 *   view: import("./view-state.js").ViewModel | null,
 * }} Model
 * @typedef {{type: string, [key: string]: any}} Act
 * @typedef {{type: string, [key: string]: any}} Eff
 * @typedef {{model: Model, effects: Eff[]}} Step
 */

/** @param {boolean} paired @returns {Model} */
export function initialModel(paired) {
  return {
    screen: Screen.ConnectingHub,
    paired,
    hubReady: false,
    hubFirstAttempt: false,
    hubTitle: "Connecting to the hub…",
    hubDetail: "",
    hubError: "",
    pairError: "",
    idleError: "",
    welcome: null,
    doors: [],
    missed: [],
    call: null,
    notice: null,
    muted: false,
    push: { state: PushState.Unknown, text: "" },
    householdNote: "",
    householdDoor: null,
    pairOffer: null,
    view: null,
  };
}

/** @param {ScreenName} s */
export const isCallScreen = (s) => CALL_SCREENS.has(s);
/** @param {ScreenName} s */
export const isNoticeScreen = (s) => NOTICE_SCREENS.has(s);

/** "Pair this phone with Front door?" @param {PairOffer} offer */
export const pairQuestion = (offer) => `Pair this phone with ${offer.doorName || "this doorbell"}?`;

/** Whether Answer may be pressed now. @param {Model} m */
export const canAnswer = (m) => !!m.call && !m.call.answered && m.screen === Screen.Ringing;
/**
 * The preview session Answer picks up in (`answer_in_session`), or null for a plain `answer`:
 * only a preview that shows the door's video; anything else must not delay the call.
 * @param {Model} m
 */
export const answerSession = (m) => (canAnswer(m) && m.call?.preview === "live" ? m.call.sessionId : null);
/**
 * Whether this phone may unlock the door of the current call: an owner can turn it off per
 * phone (the door refuses it anyway); a hub without roles sends no access, meaning yes.
 * @param {Model} m
 */
export const mayUnlock = (m) =>
  m.doors.find((d) => d.door_id === m.call?.doorId)?.access?.may_unlock !== false;
/** Whether Unlock may be pressed now. @param {Model} m */
export const canUnlock = (m) =>
  !!m.call && m.screen === Screen.InCall && m.call.controlOpen && !m.call.unlockPending && mayUnlock(m);
/** Doors this phone owns (it may manage their household). @param {Model} m */
export const ownedDoors = (m) => m.doors.filter((d) => d.access?.role === "owner");

/** "14:02" in the phone's locale, 24-hour. @param {number} atMs */
export function clockTime(atMs) {
  return new Date(atMs).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * @param {Model} model
 * @param {Act} action
 * @returns {Step}
 */
export function reduce(model, action) {
  /** @type {Eff[]} */
  const effects = [];
  let next = step(model, action, effects);
  // Nothing is redeemed before the user says yes: the question stays up through hub
  // reconnects and welcomes; only a ring takes over (and the question is back after it).
  if (next.pairOffer && !isCallScreen(next.screen) && !isNoticeScreen(next.screen)) {
    next = { ...next, screen: Screen.ConfirmPair };
  }
  return { model: next, effects };
}

/** @param {Model} m @param {Act} a @param {Eff[]} fx @returns {Model} */
function step(m, a, fx) {
  switch (a.type) {
    case Action.HubConnecting:
      m = { ...m, hubReady: false, hubFirstAttempt: a.firstAttempt };
      if (a.firstAttempt && !isCallScreen(m.screen)) {
        m = { ...m, screen: Screen.ConnectingHub, hubTitle: "Connecting to the hub…", hubDetail: "" };
      }
      return m;
    case Action.HubOpen:
      return { ...m, hubFirstAttempt: false };
    case Action.HubLost: {
      m = {
        ...m,
        hubReady: false,
        hubFirstAttempt: false,
        view: null, // a view needs the hub's signaling to go on or end
        hubTitle: "Hub unreachable, reconnecting",
        hubDetail: `Trying again in ${Math.max(1, Math.round(a.delayMs / 1000))} s…`,
      };
      // Media is peer to peer: a connected call goes on while the hub restarts or the network
      // to it heals. Ringing or connecting calls need the hub's signaling, so those end.
      if (m.call && m.screen === Screen.InCall) return m;
      if (m.call) m = endCall(m, fx, false);
      return { ...m, notice: null, screen: Screen.HubUnreachable };
    }
    case Action.HubMessage:
      return onHubMessage(m, a.msg, a.at, fx);
    case Action.HistoryLoaded: {
      const found = (a.events ?? [])
        .filter((/** @type {any} */ e) => e.kind === "missed_ring" && Number.isSafeInteger(e.at))
        .map((/** @type {any} */ e) => ({
          door_id: e.door_id,
          door_name: m.doors.find((d) => d.door_id === e.door_id)?.name ?? e.door_id,
          at_ms: e.at,
        }));
      return addMissed(m, found, a.now);
    }
    case Action.NotPaired:
      if (m.call) m = endCall(m, fx, false);
      m = { ...m, paired: false, hubReady: false, notice: null, screen: Screen.NotPaired };
      if (a.forget) m = { ...m, welcome: null, doors: [] };
      if (a.error) m = { ...m, pairError: a.error };
      return m;
    case Action.PairOffered:
      return { ...m, pairOffer: { code: a.code, pin: a.pin ?? null, doorName: a.doorName || null }, pairError: "" };
    case Action.PairCancelled:
      return home({ ...m, pairOffer: null });
    case Action.PairStarted:
      return { ...m, pairOffer: null, screen: Screen.ConnectingHub, hubTitle: "Pairing…", hubDetail: "", hubError: "" };
    case Action.PairDone:
      return { ...m, paired: true, pairError: "", idleError: "" };
    case Action.PairFailed:
      // Already paired with some door: keep working, but say what went wrong.
      if (a.paired) return { ...m, idleError: a.error };
      return { ...m, pairError: a.error, screen: Screen.NotPaired };
    case Action.PairLinkInvalid:
      return { ...m, pairError: "That doesn't look like a pairing link. It contains “#pair=”." };
    case Action.AnswerSent: {
      if (!canAnswer(m) || !m.call) return m;
      const inSession = !!a.inSession && answerSession(m) !== null;
      const call = {
        ...m.call,
        inSession,
        preview: inSession ? m.call.preview : /** @type {PreviewState} */ ("off"),
        answered: true,
        statusText: "Connecting…",
        micReady: false,
        micFailed: false,
      };
      fx.push({ type: Effect.StartCall, inSession }, { type: Effect.ApplyMute, muted: false });
      const view = inSession && m.view?.sessionId === call.sessionId ? null : m.view; // the view is the call now
      return { ...m, call, view, muted: false, screen: Screen.Connecting };
    }
    case Action.DeclineClicked:
      if (!m.call || m.call.answered) return m;
      fx.push({ type: Effect.Send, text: proto.decline(m.call.id) });
      return home(endCall(m, fx, false));
    case Action.HangUpClicked:
      if (!m.call) return m;
      return home(endCall(m, fx, true, "normal"));
    case Action.MuteToggled: {
      const muted = !(m.call ? m.muted : false);
      fx.push({ type: Effect.ApplyMute, muted });
      return { ...m, muted };
    }
    case Action.Home:
      return home(m);
    case Action.Push:
      return { ...m, push: a.push };
    case Action.ShowHistory:
      return m.screen === Screen.Idle ? { ...m, screen: Screen.History } : m;
    case Action.ShowHousehold:
      if (m.screen !== Screen.Idle || !ownedDoors(m).some((d) => d.door_id === a.doorId)) return m;
      return { ...m, screen: Screen.Household, householdDoor: a.doorId };
    default:
      if (isViewAction(a.type)) return onViewAction(m, a, fx);
      return m.call ? onCallEvent(m, m.call, a, fx) : m;
  }
}

/** @param {Model} m @param {any} msg @param {number} at @param {Eff[]} fx @returns {Model} */
function onHubMessage(m, msg, at, fx) {
  const viewed = onViewHubMessage(m, msg, fx); // `view_offer`, the view's session and errors
  if (viewed) return viewed;
  const call = m.call;
  const ours = !!call && call.id === msg.call_id;
  switch (msg.type) {
    case "welcome":
      m = {
        ...m,
        welcome: msg,
        hubReady: true,
        doors: msg.doors.map((/** @type {Door} */ d) => ({ ...d })),
      };
      if (!isCallScreen(m.screen) && !isNoticeScreen(m.screen)) m = { ...m, screen: Screen.Idle };
      fx.push({ type: Effect.LoadHistory });
      return m;
    case "ring":
      return onRing(m, msg, fx);
    case "ringing_cancelled": {
      if (!call || !ours || call.answered) return m;
      m = endCall(m, fx, false);
      const name = call.doorName;
      if (msg.reason === "declined") {
        return notice(m, Screen.Declined, "Declined", `The call from ${name} was declined.`);
      }
      if (msg.reason === "door_offline") {
        m = setDoorOnline(m, call.doorId, false);
        return notice(m, Screen.DoorOffline, `${name} is offline`, "The door lost its connection while ringing.");
      }
      return notice(m, Screen.Missed, `Missed call from ${name}`, clockTime(at)); // timeout, cancelled
    }
    case "answered_elsewhere":
      if (!call || !ours) return m;
      return answeredElsewhere(endCall(m, fx, false), call.doorName);
    case "hang_up": {
      if (!call || !ours) return m;
      if (msg.reason === "peer_gone" && canKeepWithoutDoorSignaling(call)) return keepCall(m);
      m = endCall(m, fx, false);
      const name = call.doorName;
      if (msg.reason === "peer_gone") {
        m = setDoorOnline(m, call.doorId, false);
        return notice(m, Screen.DoorOffline, `${name} is offline`, "The door lost its connection. The call ended.");
      }
      /** @type {Record<string, string>} */
      const detail = {
        normal: `${name} hung up.`,
        timeout: "The call reached its time limit.",
        failed: "The connection to the door failed.",
      };
      return notice(m, Screen.Ended, "Call ended", detail[msg.reason] ?? "");
    }
    case "door_status": {
      const known = m.doors.some((d) => d.door_id === msg.door_id);
      m = known
        ? setDoorOnline(m, msg.door_id, msg.online)
        : { ...m, doors: [...m.doors, { door_id: msg.door_id, name: msg.door_id, online: msg.online }] };
      if (msg.online || !call || call.doorId !== msg.door_id) return m;
      if (canKeepWithoutDoorSignaling(call)) return keepCall(m);
      return notice(endCall(m, fx, false), Screen.DoorOffline, `${call.doorName} is offline`, "The door lost its connection.");
    }
    case "session_offer":
      // Ours while the preview waits for it; the shell hands the SDP to the Preview.
      if (!call || !ours || call.answered || call.preview !== "starting" || call.sessionId) return m;
      return withCall(m, { sessionId: msg.session_id });
    case "session_closed":
      if (!call || call.sessionId !== msg.session_id) return m;
      if (msg.reason === "answered_elsewhere" && !call.answered) {
        return answeredElsewhere(endCall(m, fx, false), call.doorName);
      }
      // The answered session is the call: the door closing it is its hang-up.
      if (call.inSession) return notice(endCall(m, fx, false), Screen.Ended, "Call ended", `${call.doorName} hung up.`);
      return call.answered ? m : withCall(m, { preview: "failed" });
    case "snapshot":
      // The visitor's picture, for the ringing screen (the URL needs no header).
      return ours ? withCall(m, { snapshot: msg.url }) : m;
    case "missed_ring":
      return addMissed(m, [{ door_id: msg.door_id, door_name: msg.door_name, at_ms: msg.at_ms }], at);
    case "access_changed":
      return {
        ...m,
        doors: m.doors.map((d) => (d.door_id === msg.door_id ? { ...d, access: msg.access } : d)),
      };
    case "phone_joined":
    case "phone_removed": {
      const door = m.doors.find((d) => d.door_id === msg.door_id)?.name ?? msg.door_id;
      const what = msg.type === "phone_joined" ? "joined" : "left";
      return { ...m, householdNote: `${msg.name} ${what} ${door} (${clockTime(at)}).` };
    }
    case "error":
      switch (msg.code) {
        case "unsupported_version":
          return { ...m, hubError: "This page is out of date for the hub. Reload the page." };
        case "already_answered":
          if (!call || (msg.call_id && !ours)) return m;
          return answeredElsewhere(endCall(m, fx, false), call.doorName);
        case "invalid_state": // `preview` refused (this phone no longer rings for the call)
          return ours && call?.preview === "starting" ? withCall(m, { preview: "failed" }) : m;
        case "unknown_call":
          if (!call || !ours) return m;
          return notice(endCall(m, fx, false), Screen.Ended, "Call ended", "This call is already over.");
        default: // unauthorized: the hub closes the socket next and the link reports it
          return m;
      }
    default: // sdp_offer, ice: media signaling, routed to the Call by the shell
      return m;
  }
}

/** @param {Model} m @param {any} msg @param {Eff[]} fx @returns {Model} */
function onRing(m, msg, fx) {
  // A ring always takes over the screen, except from a call in progress (do not drop a
  // visitor we are talking to because another door rings).
  if (m.call && (m.call.answered || m.call.id === msg.call_id)) return m;
  if (m.call) m = endCall(m, fx, false);
  const known = m.doors.find((d) => d.door_id === msg.door_id);
  /** @type {CallView} */
  const call = {
    id: msg.call_id,
    doorId: msg.door_id,
    doorName: msg.door_name || known?.name || "Door",
    // STUN/TURN for this call; TURN credentials in `ring` are minted for this phone and call.
    iceServers: proto.callIceServers(msg, m.welcome),
    answered: false,
    statusText: "Connecting…",
    peerState: "new",
    gotFrame: false,
    startedAt: null,
    doorSignalingLost: false,
    micReady: false,
    micFailed: false,
    controlOpen: false,
    unlockPending: false,
    unlock: null,
    snapshot: null,
    preview: "starting",
    sessionId: null,
    inSession: false,
  };
  m = ringDuringView(m, call, fx); // asks for the door's live video (`preview`) unless a view shows it
  if (known) m = setDoorOnline(m, msg.door_id, true);
  return { ...m, call, notice: null, screen: Screen.Ringing };
}

/** Events from the current Call's media. @param {Model} m @param {CallView} c @param {Act} a @param {Eff[]} fx @returns {Model} */
function onCallEvent(m, c, a, fx) {
  switch (a.type) {
    case Action.MicReady:
      return withCall(m, { micReady: true });
    case Action.MicFailed:
      return withCall(m, { micFailed: true });
    case Action.PeerState:
      m = withCall(m, { peerState: a.state });
      if (a.state === "failed") return failCall(m, fx, "The connection to the door was lost.");
      // No signaling to say why: a door that hung up (its pipeline is gone, so it answers no
      // more ICE checks) looks like this within seconds, not at the ~30 s "failed".
      if (a.state === "disconnected") return doorLeft(m, fx, "hung up or went away");
      return m;
    case Action.FirstFrame:
      if (c.gotFrame) return m;
      return enterInCall(withCall(m, { gotFrame: true }), a.at, fx);
    case Action.VideoGraceElapsed:
      if (m.screen !== Screen.Connecting) return m;
      return enterInCall(withCall(m, { statusText: "Waiting for video…" }), a.at, fx);
    case Action.ConnectTimeout:
      if (m.screen !== Screen.Connecting) return m;
      return failCall(m, fx, `Couldn't connect to ${c.doorName}.`);
    case Action.SetupFailed:
      return failCall(m, fx, a.text);
    case Action.ControlOpen:
      return withCall(m, { controlOpen: true });
    case Action.ControlClosed:
      // The door closing its side of the call is its hang-up when no `hang_up` can reach us.
      return doorLeft(withCall(m, { controlOpen: false }), fx, "hung up");
    case Action.UnlockStatus:
      return withCall(m, { unlock: a.status, unlockPending: a.pending });
    case Action.PreviewFrame:
      return !c.answered && c.preview === "starting" && c.sessionId ? withCall(m, { preview: "live" }) : m;
    case Action.PreviewFailed:
      if (c.answered || (c.preview !== "starting" && c.preview !== "live")) return m;
      if (c.sessionId) fx.push({ type: Effect.Send, text: proto.closeSession(c.sessionId) });
      return withCall(m, { preview: "failed" });
    default:
      return m;
  }
}

/** @param {Model} m @param {Partial<CallView>} patch @returns {Model} */
function withCall(m, patch) {
  return m.call ? { ...m, call: { ...m.call, ...patch } } : m;
}

/** @param {Model} m @param {number} at @param {Eff[]} fx @returns {Model} */
function enterInCall(m, at, fx) {
  if (!m.call) return m;
  if (m.call.gotFrame) m = withCall(m, { statusText: "" });
  if (m.screen === Screen.InCall) return m;
  fx.push({ type: Effect.StartClock });
  return { ...withCall(m, { startedAt: at }), screen: Screen.InCall };
}

/** @param {Model} m @param {Eff[]} fx @param {string} text @returns {Model} */
function failCall(m, fx, text) {
  if (!m.call) return m;
  const name = m.call.doorName;
  m = endCall(m, fx, m.call.answered, "failed");
  return notice(m, Screen.Ended, "Call failed", text || `The connection to ${name} failed.`);
}

/**
 * The door's link to the hub dropped (or was replaced by its reconnect) during our call. The
 * media is peer to peer: while our connection to the door is up the call goes on, and it ends
 * the usual ways (Hang up, the door closing its side, or the connection failing).
 * @param {CallView} c
 */
function canKeepWithoutDoorSignaling(c) {
  return c.answered && c.peerState === "connected";
}

/** @param {Model} m @returns {Model} */
function keepCall(m) {
  return withCall(m, {
    doorSignalingLost: true,
    statusText: "The door's link to the hub dropped; the call goes on.",
  });
}

/**
 * Without signaling (our hub link or the door's is gone) a hang-up at the door cannot reach us
 * as `hang_up`; the door leaving the media session is then the end of the call.
 * @param {Model} m @param {Eff[]} fx @param {string} how @returns {Model}
 */
function doorLeft(m, fx, how) {
  const c = m.call;
  if (!c || m.screen !== Screen.InCall || !(c.doorSignalingLost || !m.hubReady)) return m;
  return notice(endCall(m, fx, false), Screen.Ended, "Call ended", `${c.doorName} ${how}.`);
}

/** @param {Model} m @param {string} name @returns {Model} */
function answeredElsewhere(m, name) {
  return notice(m, Screen.AnsweredElsewhere, "Answered on another phone", `${name} was answered on another phone.`);
}

/** Releases the call. notify: hang_up to the hub (if answered). @param {Model} m @param {Eff[]} fx @param {boolean} notify @param {string} [reason] @returns {Model} */
function endCall(m, fx, notify, reason = "normal") {
  if (!m.call) return m;
  fx.push({ type: Effect.EndCall, notify: notify && m.call.answered, reason });
  return { ...m, call: null };
}

/** @param {Model} m @param {ScreenName} kind @param {string} title @param {string} detail @returns {Model} */
function notice(m, kind, title, detail) {
  return { ...m, notice: { kind, title, detail: detail || "" }, screen: kind };
}

/** Back to the resting screen that matches the connection. @param {Model} m @returns {Model} */
function home(m) {
  m = { ...m, notice: null };
  if (!m.paired) return { ...m, screen: Screen.NotPaired };
  if (m.hubReady && m.view) return { ...m, screen: Screen.Viewing }; // a view outlives a ring another phone took
  if (m.hubReady) return { ...m, screen: Screen.Idle };
  if (m.hubFirstAttempt) return { ...m, screen: Screen.ConnectingHub };
  return { ...m, screen: Screen.HubUnreachable };
}

/** @param {Model} m @param {string} doorId @param {boolean} online @returns {Model} */
function setDoorOnline(m, doorId, online) {
  return { ...m, doors: m.doors.map((d) => (d.door_id === doorId ? { ...d, online } : d)) };
}

/** @param {Model} m @param {MissedRing[]} list @param {number} now @returns {Model} */
function addMissed(m, list, now) {
  const key = (/** @type {MissedRing} */ r) => `${r.door_id}/${r.at_ms}`;
  const known = new Set(m.missed.map(key));
  const since = now - MISSED_SHOWN_FOR_MS;
  const missed = [...m.missed];
  for (const r of list) {
    if (!known.has(key(r)) && r.at_ms >= since) {
      known.add(key(r));
      missed.push(r);
    }
  }
  missed.sort((a, b) => b.at_ms - a.at_ms);
  return { ...m, missed: missed.slice(0, MISSED_SHOWN) };
}
