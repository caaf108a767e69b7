// @ts-check
// Doorbell phone app. Served by the hub; talks to it over WebSocket /ws (docs/PROTOCOL.md),
// and to the door over WebRTC once a call is answered. See docs/ARCHITECTURE.md "The phone app".
//
// This module is the shell: it owns the one model (state.js), feeds it actions from the hub
// link, the page and the current Call, draws each new model (render.js) and carries out the
// effects the reducer asks for. The visible screen is document.body.dataset.state (CSS picks
// it), one of the `Screen` values.
// window.doorbell exposes the state, the current RTCPeerConnection and timing metrics
// (read-only) for tests and debugging.

import {
  Action,
  Effect,
  PushState,
  Screen,
  answerSession,
  canAnswer,
  canUnlock,
  initialModel,
  isNoticeScreen,
  reduce,
} from "./state.js";
import { Call } from "./call.js";
import { Preview } from "./preview.js";
import { HubLink } from "./hub-link.js";
import { doorNameFrom, pair, pairCodeFrom, readToken, renewOnWelcome, storePhoneId, storeToken } from "./pairing.js";
import { certificateFor, phoneCertificate } from "./phone-cert.js";
import { pinFrom, readPins } from "./pin.js";
import { $, render, renderTimer } from "./render.js";
import { Ringer } from "./ringer.js";
import {
  replyFromAddress,
  closeRingNotification,
  disablePush,
  enablePush,
  pushStatus,
  registerWorker,
  shareTokenWithWorker,
} from "./push.js";
import * as proto from "./protocol.js";
import { HistoryView } from "./history.js";
import { QuietPanel } from "./quiet.js";
import { QuickReplies } from "./replies.js";
import { HouseholdView } from "./household.js";

/** Terminal screens return to idle after this long. */
const NOTICE_MS = 4000;
/** A call opened from a notification is answered (or declined) when its ring arrives within this long. */
const REPLY_PENDING_MS = 60000;

/** @typedef {import("./state.js").Model} Model */
/** @typedef {import("./call.js").Metrics} Metrics */

let token = readToken();
/** @type {Model} */
let model = initialModel(!!token);
/** @type {Call | null} the media of model.call, once answered */
let call = null;
/**
 * This phone's kept DTLS certificate (phone-cert.js), loaded at start, milliseconds before any
 * ring can be answered; a call answered before it is ready uses a fresh one, as browsers do.
 * @type {RTCCertificate | null}
 */
let certificate = null;
phoneCertificate()
  .then((c) => (certificate = c))
  .catch((e) => console.warn("doorbell: no phone certificate:", e?.message || e));
/** @type {Preview | null} the door's video while model.call rings (until Answer takes it over) */
let preview = null;
/** @type {Metrics} */
let metrics = {};
/** @type {ReturnType<typeof setTimeout> | undefined} */
let noticeTimer;
/** @type {{callId: string, reply: "answer" | "decline", until: number} | null} reply to this call when it rings (notification tap, ntfy link) */
let replyPending = null;
const ringer = new Ringer();
const quietPanel = new QuietPanel(() => token);
/** @type {QuickReplies | null} made at init, once `link` exists */
let quickReplies = null;
/** @type {HistoryView | null} the history screen's list, while it shows */
let historyView = null;
/** @type {HouseholdView | null} the household screen, while it shows */
let householdView = null;

const link = new HubLink({
  token: () => token,
  onConnecting: (firstAttempt) => dispatch({ type: Action.HubConnecting, firstAttempt }),
  onOpen: () => {
    dispatch({ type: Action.HubOpen });
    quietPanel.load();
  },
  onMessage: onHubMessage,
  onLost: (delayMs) => {
    if (call && model.screen === Screen.InCall) {
      console.info("doorbell: hub connection lost during a call; the call continues, reconnecting");
    }
    dispatch({ type: Action.HubLost, delayMs });
  },
  onUnauthorized: () => {
    token = null;
    storeToken(null);
    shareTokenWithWorker(null);
    dispatch({
      type: Action.NotPaired,
      forget: true,
      error: "The hub no longer knows this phone. Pair it again with a new link.",
    });
  },
  onNoToken: () => dispatch({ type: Action.NotPaired }),
});

window.doorbell = Object.freeze({
  get state() {
    return model.screen;
  },
  get pc() {
    return call?.pc ?? null;
  },
  /** The ringing call's preview connection (null without one). */
  get previewPc() {
    return preview?.pc ?? null;
  },
  /** The live view (view-state.js `ViewModel`), or null. */
  get view() {
    return model.view;
  },
  get previewState() {
    return model.call?.preview ?? null;
  },
  get metrics() {
    return metrics;
  },
  get callId() {
    return model.call?.id ?? null;
  },
  get hubConnected() {
    return link.ready;
  },
  get doors() {
    return model.doors.map((d) => ({ ...d }));
  },
  get missedRings() {
    return model.missed.map((r) => ({ ...r }));
  },
});

/** @param {{type: string, [key: string]: any}} action */
function dispatch(action) {
  const prev = model;
  const { model: next, effects } = reduce(prev, action);
  model = next;
  if (next.call && next.call.id !== prev.call?.id) onNewRing(next.call);
  for (const fx of effects) runEffect(fx);
  // The ringer rings exactly while the ringing screen shows a call.
  const ringing = next.screen === Screen.Ringing ? (next.call?.id ?? null) : null;
  const wasRinging = prev.screen === Screen.Ringing ? (prev.call?.id ?? null) : null;
  if (ringing !== wasRinging) {
    ringer.stop();
    if (ringing) ringer.start();
  }
  // A notice returns home after a while; any other change of notice cancels that.
  if (next.notice !== prev.notice) {
    clearTimeout(noticeTimer);
    noticeTimer = undefined;
    if (next.notice && isNoticeScreen(next.screen)) {
      noticeTimer = setTimeout(() => dispatch({ type: Action.Home }), NOTICE_MS);
    }
  }
  syncPreview(next);
  render(next, prev, performance.now());
  syncHistoryView(next);
  syncQuickReplies(next);
  syncHouseholdView(next);
  if (replyPending && next.call?.id === replyPending.callId && canAnswer(next)) {
    const { reply, until } = replyPending;
    replyPending = null;
    if (until >= Date.now()) replyNow(reply);
  }
}

/**
 * Sends `answer_in_session` when the door's video shows (the call is that connection), else
 * `answer` (a new negotiation, as before previews), and starts the call.
 */
function answer() {
  if (!canAnswer(model) || !model.call) return;
  metrics.answerClickAt = performance.now();
  const doorId = model.call.doorId;
  const session = answerSession(model);
  const text = session ? proto.answerInSession(model.call.id, session) : proto.answer(model.call.id);
  if (!link.send(text)) return;
  dispatch({ type: Action.AnswerSent, inSession: !!session });
  closeRingNotification(doorId).catch(() => {});
}

/** @param {"answer" | "decline"} reply */
function replyNow(reply) {
  if (reply === "answer") answer();
  else dispatch({ type: Action.DeclineClicked });
}

/**
 * A notification tap, Answer, or an ntfy link asked to answer or decline this call (now, or
 * once its ring arrives: a page opened from a notification connects after the ring started).
 * @param {string} callId
 * @param {"answer" | "decline"} [reply]
 */
function replyWhenRinging(callId, reply = "answer") {
  replyPending = { callId, reply, until: Date.now() + REPLY_PENDING_MS };
  if (model.call?.id === callId && canAnswer(model)) {
    replyPending = null;
    replyNow(reply);
  }
}

async function refreshPush() {
  try {
    dispatch({ type: Action.Push, push: await pushStatus() });
  } catch (e) {
    console.warn("doorbell: cannot read the notification state:", /** @type {any} */ (e)?.message || e);
  }
}

/** @param {typeof enablePush} change */
async function changePush(change) {
  if (!token) return;
  const pending = change(token); // first: the permission prompt needs the tap's activation
  dispatch({ type: Action.Push, push: { state: PushState.Busy, text: model.push.text } });
  try {
    dispatch({ type: Action.Push, push: await pending });
  } catch (e) {
    dispatch({ type: Action.Push, push: { state: PushState.Off, text: /** @type {Error} */ (e).message } });
  }
}

/** @param {import("./state.js").CallView} c */
function onNewRing(c) {
  metrics = {
    callId: c.id,
    doorId: c.doorId,
    ringAt: performance.now(),
    ringAtEpochMs: Date.now(),
    answerClickAt: null,
    offerAt: null,
    answerSentAt: null,
    connectedAt: null,
    firstFrameAt: null,
  };
}

/** @param {{type: string, [key: string]: any}} fx */
function runEffect(fx) {
  switch (fx.type) {
    case Effect.EndCall:
      call?.dispose({ notify: fx.notify, reason: fx.reason });
      call = null;
      return;
    case Effect.StartCall: {
      const c = /** @type {import("./state.js").CallView} */ (model.call);
      const handover = fx.inSession ? (preview?.handOver() ?? null) : null;
      preview = null;
      call = new Call({
        id: c.id,
        doorName: c.doorName,
        iceServers: c.iceServers,
        muted: model.muted,
        pinned: readPins()[c.doorId] ?? null,
        // The one this door pinned (the new one once it re-pinned a renewal); still loading
        // right after start (a call answered from a notification): wait for it.
        certificate: certificateFor(c.doorId).catch(() => certificate),
        send: (text) => link.send(text),
        dispatch,
        onTick: () => renderTimer(model.call?.startedAt ?? null, performance.now()),
        video: /** @type {HTMLVideoElement} */ ($("remote-video")),
        audio: /** @type {HTMLAudioElement} */ ($("remote-audio")),
        metrics,
      });
      if (handover) call.adopt(handover);
      else call.start();
      return;
    }
    case Effect.StartClock:
      call?.startClock();
      return;
    case Effect.Send:
      link.send(fx.text);
      return;
    case Effect.ApplyMute:
      call?.setMuted(fx.muted);
      return;
    case Effect.LoadHistory:
      loadHistory();
      return;
  }
}

/** @param {any} msg */
function onHubMessage(msg) {
  if (msg.type === "welcome") {
    storePhoneId(msg.phone_id);
    if (token) renewOnWelcome(msg, token);
  }
  if ((msg.type === "phone_joined" || msg.type === "phone_removed") && householdView) householdView.refresh();
  if (msg.type === "session_ice") {
    if (call && call.sessionId === msg.session_id) call.signal(msg);
    else if (preview && preview.sessionId === msg.session_id) preview.signal(msg);
    return;
  }
  if (msg.type === "view_offer") {
    dispatch({ type: Action.HubMessage, msg, at: Date.now() }); // records the session, makes its Preview
    if (preview && preview.callId === viewKey(msg.session_id)) {
      preview.signal({ type: "session_offer", session_id: msg.session_id, sdp: msg.sdp });
    }
    return;
  }
  if (msg.type === "session_offer") {
    dispatch({ type: Action.HubMessage, msg, at: Date.now() }); // records the session id
    if (preview && preview.callId === msg.call_id && model.call?.sessionId === msg.session_id) preview.signal(msg);
    return;
  }
  if (msg.type === "sdp_offer" || msg.type === "ice") {
    if (!call || !model.call || model.call.id !== msg.call_id || call.id !== msg.call_id) {
      console.warn(`doorbell: ${msg.type} for a call that is not ours; ignored`);
      return;
    }
    call.signal(msg);
    return;
  }
  if (msg.type === "error" && !["unauthorized", "unsupported_version", "already_answered", "unknown_call"].includes(msg.code)) {
    console.warn(`doorbell: hub error ${msg.code}: ${msg.message}`);
  }
  if (msg.type === "ring" && model.call?.answered) {
    console.info("doorbell: ignoring ring from", msg.door_name, "during a call");
  }
  dispatch({ type: Action.HubMessage, msg, at: Date.now() });
}

/** A live view's Preview is keyed by its session. @param {string} sessionId */
const viewKey = (sessionId) => `view:${sessionId}`;
/** A view's Preview reports as the view's (view-state.js). @param {{type: string, [key: string]: any}} a */
const viewDispatch = (a) =>
  dispatch(a.type === Action.PreviewFrame ? { type: Action.ViewFrame } : a.type === Action.PreviewFailed ? { type: Action.ViewFailed } : a);

/**
 * The preview exists exactly while the ringing screen wants the door's video, or while a live
 * view is open (whose Preview also shows a ring of its door, in the same session). @param {Model} m
 */
function syncPreview(m) {
  const c = m.call;
  const v = m.view?.sessionId ? m.view : null;
  const ringing = !!c && m.screen === Screen.Ringing && !c.answered && (c.preview === "starting" || c.preview === "live");
  const key = v?.sessionId ? viewKey(v.sessionId) : ringing && c ? c.id : null;
  if (preview && preview.callId !== key) {
    preview.dispose();
    preview = null;
  }
  const video = /** @type {HTMLVideoElement} */ ($(m.screen === Screen.Ringing ? "ring-video" : "view-video"));
  if (key && !preview && (v || c)) {
    const door = v ? v.doorId : /** @type {string} */ (c?.doorId);
    preview = new Preview({
      callId: key,
      iceServers: v ? v.iceServers : (c?.iceServers ?? []),
      pinned: readPins()[door] ?? null,
      certificate: certificateFor(door).catch(() => certificate),
      send: (text) => link.send(text),
      dispatch: v ? viewDispatch : dispatch,
      video,
      audio: v ? /** @type {HTMLAudioElement} */ ($("view-audio")) : null,
    });
  }
  preview?.show(video);
}

/** The history screen's view exists exactly while the screen shows. @param {Model} m */
function syncHistoryView(m) {
  const showing = m.screen === Screen.History;
  if (showing && !historyView) {
    historyView = new HistoryView({
      token: () => token,
      phoneId: () => model.welcome?.phone_id ?? "",
      doors: () => model.doors,
    });
  } else if (!showing && historyView) {
    historyView.dispose();
    historyView = null;
  }
}

/** The quick-reply panel shows on the ringing and call screens. @param {Model} m */
function syncQuickReplies(m) {
  const screen =
    m.screen === Screen.Ringing ? $("screen-ringing") : m.screen === Screen.InCall ? $("screen-call") : null;
  quickReplies?.show(m.call && screen ? { callId: m.call.id, doorId: m.call.doorId } : null, screen);
}

/**
 * Leaves a door (after asking): the hub closes this phone's connection, which reconnects to a
 * welcome without the door, or to "pair again" if it was the last one.
 * @param {string} doorId
 */
async function leaveDoor(doorId) {
  const name = model.doors.find((d) => d.door_id === doorId)?.name ?? doorId;
  const me = model.welcome?.phone_id;
  if (!me || !confirm(`Leave ${name}? This phone stops ringing for it.`)) return;
  const res = await fetch(`/api/doors/${encodeURIComponent(doorId)}/phones/${encodeURIComponent(me)}`, {
    method: "DELETE",
    headers: { Authorization: `Bearer ${token}` },
  }).catch(() => null);
  if (!res?.ok) console.warn("doorbell: leaving the door failed:", res?.status);
}

/** The household screen's view exists exactly while the screen shows. @param {Model} m */
function syncHouseholdView(m) {
  const showing = m.screen === Screen.Household && !!m.householdDoor;
  if (showing && !householdView) {
    const doorId = /** @type {string} */ (m.householdDoor);
    householdView = new HouseholdView({
      token: () => token,
      doorId,
      doorName: m.doors.find((d) => d.door_id === doorId)?.name ?? doorId,
      phoneId: () => model.welcome?.phone_id ?? "",
    });
  } else if (!showing && householdView) {
    householdView.dispose();
    householdView = null;
  }
}

// The history holds the missed rings this phone was not online for.
async function loadHistory() {
  try {
    const res = await fetch("/api/events", { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return;
    const body = await res.json();
    dispatch({ type: Action.HistoryLoaded, events: body.events ?? [], now: Date.now() });
  } catch (e) {
    console.warn("doorbell: cannot load the history:", /** @type {any} */ (e)?.message || e);
  }
}

/** @param {string} code @param {string | null} pin the door's fingerprint from its link */
async function pairAndConnect(code, pin) {
  dispatch({ type: Action.PairStarted });
  try {
    token = await pair(code, token, pin);
    shareTokenWithWorker(token);
    dispatch({ type: Action.PairDone });
  } catch (e) {
    const error = /** @type {Error} */ (e).message;
    dispatch({ type: Action.PairFailed, error, paired: !!token });
    if (!token) return;
  }
  // Reconnect so the hub's welcome lists the newly paired door.
  link.connect(true);
}

/**
 * Takes a pairing link's code out of the address and asks "Pair this phone with Front door?";
 * nothing is redeemed until the user says yes (issue 11, item 2).
 */
function pairFromAddress() {
  const code = pairCodeFrom(location.hash);
  if (!code) return false;
  const pin = pinFrom(location.hash);
  const doorName = doorNameFrom(location.hash);
  history.replaceState(null, "", location.pathname + location.search);
  dispatch({ type: Action.PairOffered, code, pin, doorName });
  return true;
}

function init() {
  quickReplies = new QuickReplies({ token: () => token, send: (text) => link.send(text), quickReply: proto.quickReply });
  quickReplies.doors = () => model.doors.map((d) => d.door_id);
  render(model, null, performance.now());
  $("btn-answer").addEventListener("click", answer);
  $("btn-decline").addEventListener("click", () => dispatch({ type: Action.DeclineClicked }));
  $("btn-hangup").addEventListener("click", () => dispatch({ type: Action.HangUpClicked }));
  $("btn-unlock").addEventListener("click", () => {
    if (canUnlock(model)) call?.unlock();
  });
  $("btn-mute").addEventListener("click", () => dispatch({ type: Action.MuteToggled }));
  $("notice-dismiss").addEventListener("click", () => dispatch({ type: Action.Home }));
  $("btn-history").addEventListener("click", () => dispatch({ type: Action.ShowHistory }));
  $("btn-history-back").addEventListener("click", () => dispatch({ type: Action.Home }));
  $("btn-household-back").addEventListener("click", () => dispatch({ type: Action.Home }));
  $("btn-view-stop").addEventListener("click", () => dispatch({ type: Action.ViewStopped }));
  $("door-list").addEventListener("click", (ev) => {
    const view = /** @type {HTMLElement} */ (ev.target).closest("button[data-view]");
    if (view instanceof HTMLElement) dispatch({ type: Action.ViewClicked, doorId: view.dataset.view });
    const button = /** @type {HTMLElement} */ (ev.target).closest("button[data-household]");
    if (button instanceof HTMLElement) dispatch({ type: Action.ShowHousehold, doorId: button.dataset.household });
    const leave = /** @type {HTMLElement} */ (ev.target).closest("button[data-leave]");
    if (leave instanceof HTMLElement && leave.dataset.leave) leaveDoor(leave.dataset.leave);
  });
  $("btn-pair-yes").addEventListener("click", () => {
    const offer = model.pairOffer;
    if (offer) pairAndConnect(offer.code, offer.pin);
  });
  $("btn-pair-no").addEventListener("click", () => dispatch({ type: Action.PairCancelled }));
  $("pair-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = /** @type {HTMLInputElement} */ ($("pair-input"));
    const code = pairCodeFrom(input.value);
    if (!code) {
      dispatch({ type: Action.PairLinkInvalid });
      return;
    }
    const pin = pinFrom(input.value);
    input.value = "";
    pairAndConnect(code, pin);
  });
  const unlockAudio = () => ringer.unlockAudio();
  document.addEventListener("pointerdown", unlockAudio, { capture: true });
  document.addEventListener("keydown", unlockAudio, { capture: true });
  window.addEventListener("online", () => {
    if (token && !link.ready) link.connect(true);
  });
  window.addEventListener("hashchange", pairFromAddress);
  $("btn-push-on").addEventListener("click", () => changePush(enablePush));
  $("btn-push-off").addEventListener("click", () => changePush(disablePush));
  navigator.serviceWorker?.addEventListener("message", (ev) => {
    if (ev.data?.type === "answer" && typeof ev.data.call_id === "string") replyWhenRinging(ev.data.call_id);
  });
  registerWorker();
  refreshPush();
  if (token) shareTokenWithWorker(token);
  const toReply = replyFromAddress();
  if (toReply) {
    history.replaceState(null, "", location.pathname + location.search);
    replyWhenRinging(toReply.callId, toReply.reply);
  }

  // A phone paired with other doors stays connected (and can ring) while it is asked.
  const offered = pairFromAddress();
  if (token) link.connect(true);
  else if (!offered) dispatch({ type: Action.NotPaired });
}

init();
