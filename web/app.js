// Doorbell phone app. Served by the hub; talks to it over WebSocket /ws (docs/PROTOCOL.md),
// and to the door over WebRTC once a call is answered.
//
// One module-level state machine. The visible screen is chosen by CSS from
// document.body.dataset.state, one of:
//   not-paired | connecting-hub | idle | ringing | connecting | in-call | answered-elsewhere |
//   missed | declined | ended | door-offline | hub-unreachable
// In a call, the Unlock button sends `unlock` on the door's "control" data channel and shows
// the door's reply (docs/PROTOCOL.md "Data channel").
// window.doorbell exposes the state, the current RTCPeerConnection and timing metrics
// (read-only) for tests and debugging.

import * as proto from "./protocol.js";

const TOKEN_KEY = "doorbell.token";
const PHONE_ID_KEY = "doorbell.phone_id";
const NOTICE_MS = 4000; // terminal screens return to idle after this long
const CONNECT_TIMEOUT_MS = 30000; // answer pressed -> media connected, else give up
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const AUDIO_ONLY_GRACE_MS = 2000; // connected but no video frame yet: show the call anyway
const UNLOCK_REPLY_MS = 5000; // Unlock pressed -> the door's reply, else say it did not answer
const UNLOCK_NOTICE_MS = 5000; // how long "Door unlocked" stays on screen
const MISSED_SHOWN = 10; // missed rings listed on the idle screen (newest first)
const MISSED_SHOWN_FOR_MS = 7 * 24 * 3600 * 1000; // older ones are history, not news

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// State

let state = "connecting-hub";
let token = readToken();
let ws = null; // current WebSocket
let wsReady = false; // welcome received on `ws`
let reconnectAttempts = 0;
let reconnectTimer = null;
let welcome = null; // last welcome message
const doors = new Map(); // door_id -> {door_id, name, online}
let call = null; // {id, doorId, doorName, answered, pc, mic, micFailed, queue, chain, ...}
let noticeTimer = null;
let metrics = {};
// Rings pressed while the door could not reach the hub: {door_id, door_name, at_ms}, newest
// first. Live `missed_ring` messages plus the history (`GET /api/events`) after each welcome.
let missedRings = [];

// ---------------------------------------------------------------------------------------------
// Debug/test surface (read-only).

window.doorbell = Object.freeze({
  get state() {
    return state;
  },
  get pc() {
    return call?.pc ?? null;
  },
  get metrics() {
    return metrics;
  },
  get callId() {
    return call?.id ?? null;
  },
  get hubConnected() {
    return wsReady;
  },
  get missedRings() {
    return missedRings.map((r) => ({ ...r }));
  },
});

function setState(next) {
  state = next;
  document.body.dataset.state = next;
  document.title = next === "ringing" && call ? `🔔 ${call.doorName} is ringing` : "Doorbell";
}

// ---------------------------------------------------------------------------------------------
// Storage

function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(value, phoneId) {
  token = value;
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
    if (phoneId) localStorage.setItem(PHONE_ID_KEY, phoneId);
    else if (!value) localStorage.removeItem(PHONE_ID_KEY);
  } catch {
    // Private mode without storage: the token lives for this page only.
  }
}

// ---------------------------------------------------------------------------------------------
// Pairing

function shortDeviceName() {
  const ua = navigator.userAgent || "";
  const os = /Android/.test(ua)
    ? "Android"
    : /iPhone/.test(ua)
      ? "iPhone"
      : /iPad/.test(ua)
        ? "iPad"
        : /Mac OS X|Macintosh/.test(ua)
          ? "Mac"
          : /Windows/.test(ua)
            ? "Windows"
            : /CrOS/.test(ua)
              ? "ChromeOS"
              : /Linux/.test(ua)
                ? "Linux"
                : "";
  const browser = /Firefox\//.test(ua)
    ? "Firefox"
    : /Edg\//.test(ua)
      ? "Edge"
      : /SamsungBrowser\//.test(ua)
        ? "Samsung Internet"
        : /Chrom(e|ium)\//.test(ua)
          ? "Chrome"
          : /Safari\//.test(ua)
            ? "Safari"
            : "Browser";
  return (os ? `${browser} on ${os}` : browser).slice(0, 64);
}

function pairCodeFrom(text) {
  const s = String(text || "").trim();
  const m = /[#&?]pair=([^&\s]+)/.exec(s);
  if (m) return decodeURIComponent(m[1]);
  if (/^[A-Za-z0-9_.~-]+$/.test(s)) return s; // a bare code
  return null;
}

async function pair(code) {
  const body = { code, name: shortDeviceName() };
  if (token) body.token = token;
  let res;
  try {
    res = await fetch("/api/pair", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new Error("Couldn't reach the hub to pair. Check the connection and open the link again.");
  }
  if (!res.ok) {
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      throw new Error("This pairing link was already used or expired. Ask for a new one.");
    }
    throw new Error(`The hub couldn't pair this phone (HTTP ${res.status}). Try again in a moment.`);
  }
  let data;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!data || typeof data.token !== "string" || !data.token) {
    throw new Error("The hub sent an unexpected pairing reply. Ask for a new link.");
  }
  storeToken(data.token, typeof data.phone_id === "string" ? data.phone_id : null);
}

function showError(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

async function pairAndConnect(code) {
  setState("connecting-hub");
  $("hub-title").textContent = "Pairing…";
  $("hub-detail").textContent = "";
  showError($("hub-error"), "");
  try {
    await pair(code);
    showError($("pair-error"), "");
    showError($("idle-error"), "");
  } catch (e) {
    if (!token) {
      showError($("pair-error"), e.message);
      setState("not-paired");
      return;
    }
    // Already paired with some door: keep working, but say what went wrong.
    showError($("idle-error"), e.message);
  }
  // Reconnect so the hub's welcome lists the newly paired door.
  connect(true);
}

// ---------------------------------------------------------------------------------------------
// Hub connection

function wsUrl() {
  return (location.protocol === "https:" ? "wss" : "ws") + "://" + location.host + "/ws";
}

function connect(fresh = false) {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  if (ws) {
    const old = ws;
    ws = null;
    old.onopen = old.onmessage = old.onclose = old.onerror = null;
    try {
      old.close(1000);
    } catch {}
  }
  wsReady = false;
  if (!token) {
    showNotPaired();
    return;
  }
  if (fresh) reconnectAttempts = 0;
  if (reconnectAttempts === 0 && !isCallState()) {
    setState("connecting-hub");
    $("hub-title").textContent = "Connecting to the hub…";
    $("hub-detail").textContent = "";
  }

  let socket;
  try {
    socket = new WebSocket(wsUrl());
  } catch (e) {
    console.warn("doorbell: cannot open WebSocket", e);
    scheduleReconnect();
    return;
  }
  ws = socket;
  let unauthorized = false;

  socket.onopen = () => {
    socket.send(proto.hello(token));
  };
  socket.onmessage = (ev) => {
    if (socket !== ws) return;
    let msg;
    try {
      msg = proto.decodeHubToPhone(ev.data);
    } catch (e) {
      console.warn("doorbell: ignoring bad message from hub:", e.message);
      return;
    }
    if (msg.type === "error" && msg.code === "unauthorized") unauthorized = true;
    handleHubMessage(msg);
  };
  socket.onerror = () => {}; // onclose follows and does the work
  socket.onclose = (ev) => {
    if (socket !== ws) return;
    ws = null;
    wsReady = false;
    if (unauthorized) {
      forgetPairing();
      return;
    }
    onHubLost(ev);
  };
}

function send(text) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(text);
    return true;
  }
  console.warn("doorbell: not connected; dropped", text.slice(0, 80));
  return false;
}

function backoffDelay(attempt) {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return Math.round(cap / 2 + Math.random() * (cap / 2)); // "equal jitter"
}

function scheduleReconnect() {
  clearTimeout(reconnectTimer);
  const delay = backoffDelay(reconnectAttempts);
  reconnectAttempts += 1;
  reconnectTimer = setTimeout(() => connect(false), delay);
  return delay;
}

function onHubLost(ev) {
  const delay = scheduleReconnect();
  // Shown now, or after a call that outlives the outage ends (goHome).
  $("hub-title").textContent = "Hub unreachable, reconnecting";
  $("hub-detail").textContent = `Trying again in ${Math.max(1, Math.round(delay / 1000))} s…`;
  if (call && state === "in-call") {
    // Media is peer to peer: a call that is connected goes on while the hub restarts or the
    // network to it heals; we reconnect in the background. (Ringing or connecting calls need
    // the hub's signaling, so those end below.)
    console.info("doorbell: hub connection lost during a call; the call continues, reconnecting");
    return;
  }
  if (call) endCall({ notify: false });
  stopNoticeTimer();
  setState("hub-unreachable");
  if (ev && ev.code && ev.code !== 1006 && ev.reason) console.info("doorbell: hub closed the connection:", ev.code, ev.reason);
}

function forgetPairing() {
  storeToken(null);
  welcome = null;
  doors.clear();
  if (call) endCall({ notify: false });
  showError($("pair-error"), "The hub no longer knows this phone. Pair it again with a new link.");
  showNotPaired();
}

function showNotPaired() {
  clearTimeout(reconnectTimer);
  stopNoticeTimer();
  setState("not-paired");
}

// ---------------------------------------------------------------------------------------------
// Messages from the hub

function handleHubMessage(msg) {
  switch (msg.type) {
    case "welcome":
      return onWelcome(msg);
    case "ring":
      return onRing(msg);
    case "ringing_cancelled":
      return onRingingCancelled(msg);
    case "answered_elsewhere":
      return onAnsweredElsewhere(msg);
    case "sdp_offer":
      return onCallSignal(msg, () => applyOffer(msg.sdp));
    case "ice":
      return onCallSignal(msg, () => addRemoteCandidate(msg.candidate));
    case "hang_up":
      return onHangUp(msg);
    case "door_status":
      return onDoorStatus(msg);
    case "missed_ring":
      return onMissedRing(msg);
    case "error":
      return onError(msg);
  }
}

function onWelcome(msg) {
  if (msg.protocol_version !== proto.PROTOCOL_VERSION) {
    console.warn("doorbell: hub speaks protocol", msg.protocol_version);
  }
  welcome = msg;
  wsReady = true;
  reconnectAttempts = 0;
  try {
    localStorage.setItem(PHONE_ID_KEY, msg.phone_id);
  } catch {}
  doors.clear();
  for (const d of msg.doors) doors.set(d.door_id, { ...d });
  renderDoors();
  if (!isCallState() && !isNoticeState()) setState("idle");
  loadMissedRings();
}

// ---------------------------------------------------------------------------------------------
// Missed rings: presses while the door could not reach the hub, reported when it came back.

function onMissedRing(msg) {
  addMissedRings([{ door_id: msg.door_id, door_name: msg.door_name, at_ms: msg.at_ms }]);
}

// The history holds the missed rings this phone was not online for.
async function loadMissedRings() {
  try {
    const res = await fetch("/api/events", { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return;
    const body = await res.json();
    const found = (body.events ?? [])
      .filter((e) => e.kind === "missed_ring" && Number.isSafeInteger(e.at))
      .map((e) => ({ door_id: e.door_id, door_name: doors.get(e.door_id)?.name ?? e.door_id, at_ms: e.at }));
    addMissedRings(found);
  } catch (e) {
    console.warn("doorbell: cannot load the history:", e?.message || e);
  }
}

function addMissedRings(list) {
  const key = (r) => `${r.door_id}/${r.at_ms}`;
  const known = new Set(missedRings.map(key));
  const since = Date.now() - MISSED_SHOWN_FOR_MS;
  for (const r of list) if (!known.has(key(r)) && r.at_ms >= since) missedRings.push(r);
  missedRings.sort((a, b) => b.at_ms - a.at_ms);
  missedRings = missedRings.slice(0, MISSED_SHOWN);
  renderMissedRings();
}

function formatRingTime(atMs) {
  const at = new Date(atMs);
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  if (at.toDateString() === new Date().toDateString()) return time;
  return `${time}, ${at.toLocaleDateString([], { day: "numeric", month: "short" })}`;
}

function renderMissedRings() {
  const list = $("missed-list");
  list.replaceChildren();
  $("missed-title").hidden = list.hidden = missedRings.length === 0;
  for (const r of missedRings) {
    const li = document.createElement("li");
    li.className = "missed";
    li.dataset.atMs = String(r.at_ms);
    li.dataset.doorId = r.door_id;
    const text = document.createElement("span");
    text.className = "missed-text";
    text.textContent = `Missed ring at ${formatRingTime(r.at_ms)}`;
    const door = document.createElement("span");
    door.className = "missed-door";
    door.textContent = r.door_name;
    li.append(text, door);
    list.append(li);
  }
}

function onRing(msg) {
  // A ring always takes over the screen, except from a call in progress (do not drop a
  // visitor we are talking to because another door rings).
  if (call && call.answered) {
    console.info("doorbell: ignoring ring from", msg.door_name, "during a call");
    return;
  }
  if (call && call.id === msg.call_id) return; // duplicate (e.g. after reconnect)
  if (call) endCall({ notify: false });
  stopNoticeTimer();
  const now = performance.now();
  metrics = {
    callId: msg.call_id,
    doorId: msg.door_id,
    ringAt: now,
    ringAtEpochMs: Date.now(),
    answerClickAt: null,
    offerAt: null,
    answerSentAt: null,
    connectedAt: null,
    firstFrameAt: null,
  };
  call = {
    id: msg.call_id,
    doorId: msg.door_id,
    doorName: msg.door_name || doors.get(msg.door_id)?.name || "Door",
    // STUN/TURN for this call; TURN credentials in `ring` are minted for this phone and call.
    iceServers: proto.callIceServers(msg, welcome),
    answered: false,
    pc: null,
    mic: null,
    micFailed: false,
    micPromise: null,
    audioTransceiver: null,
    queue: [], // remote candidates waiting for the remote description
    chain: Promise.resolve(), // serializes signaling work for this call
    startedAt: 0,
    timer: null,
    connectTimer: null,
    graceTimer: null,
    gotFrame: false,
    muted: false,
    control: null, // the door's "control" data channel (Unlock)
    unlockSeq: 0, // request_id of the last unlock sent
    unlockTimer: null, // waiting for the door's reply
    unlockNoticeTimer: null,
  };
  const known = doors.get(msg.door_id);
  if (known) known.online = true;
  $("ring-door").textContent = call.doorName;
  setState("ringing");
  startRinging();
}

function onRingingCancelled(msg) {
  if (!call || call.id !== msg.call_id || call.answered) return;
  const name = call.doorName;
  endCall({ notify: false });
  switch (msg.reason) {
    case "declined":
      return showNotice("declined", "Declined", `The call from ${name} was declined.`);
    case "door_offline":
      markDoor(msg.call_id, false);
      return showNotice("door-offline", `${name} is offline`, "The door lost its connection while ringing.");
    default: // timeout, cancelled
      return showNotice("missed", `Missed call from ${name}`, new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  }
}

function onAnsweredElsewhere(msg) {
  if (!call || call.id !== msg.call_id) return;
  const name = call.doorName;
  endCall({ notify: false });
  showNotice("answered-elsewhere", "Answered on another phone", `${name} was answered on another phone.`);
}

/**
 * The door's link to the hub dropped (or was replaced by its reconnect) during our call. The
 * media is peer to peer: while our connection to the door is up the call goes on, and it
 * ends the usual ways (Hang up, the door closing its side, or the connection failing).
 */
function keepCallWithoutDoorSignaling(c) {
  if (!c.pc || c.pc.connectionState !== "connected") return false;
  c.doorSignalingLost = true;
  $("call-status-text").textContent = "The door's link to the hub dropped; the call goes on.";
  return true;
}

/**
 * Without signaling (our hub link or the door's is gone) a hang-up at the door cannot reach
 * us as `hang_up`; the door leaving the media session is then the end of call `c`. Returns
 * whether it ended the call.
 */
function endCallTheDoorLeft(c, how) {
  if (call !== c || state !== "in-call" || !(c.doorSignalingLost || !wsReady)) return false;
  const name = c.doorName;
  endCall({ notify: false });
  showNotice("ended", "Call ended", `${name} ${how}.`);
  return true;
}

function onHangUp(msg) {
  if (!call || call.id !== msg.call_id) return;
  if (msg.reason === "peer_gone" && keepCallWithoutDoorSignaling(call)) return;
  const name = call.doorName;
  const doorId = call.doorId;
  endCall({ notify: false });
  if (msg.reason === "peer_gone") {
    const d = doors.get(doorId);
    if (d) {
      d.online = false;
      renderDoors();
    }
    return showNotice("door-offline", `${name} is offline`, "The door lost its connection. The call ended.");
  }
  const detail = {
    normal: `${name} hung up.`,
    timeout: "The call reached its time limit.",
    failed: "The connection to the door failed.",
  }[msg.reason];
  showNotice("ended", "Call ended", detail);
}

function onDoorStatus(msg) {
  const d = doors.get(msg.door_id);
  if (d) d.online = msg.online;
  else doors.set(msg.door_id, { door_id: msg.door_id, name: msg.door_id, online: msg.online });
  renderDoors();
  if (!msg.online && call && call.doorId === msg.door_id) {
    if (keepCallWithoutDoorSignaling(call)) return;
    const name = call.doorName;
    endCall({ notify: false });
    showNotice("door-offline", `${name} is offline`, "The door lost its connection.");
  }
}

function onError(msg) {
  switch (msg.code) {
    case "unauthorized":
      // The hub closes the socket next; onclose forgets the token.
      return;
    case "unsupported_version":
      $("hub-error").textContent = "This page is out of date for the hub. Reload the page.";
      $("hub-error").hidden = false;
      return;
    case "already_answered":
      if (call && (!msg.call_id || msg.call_id === call.id)) {
        const name = call.doorName;
        endCall({ notify: false });
        showNotice("answered-elsewhere", "Answered on another phone", `${name} was answered on another phone.`);
      }
      return;
    case "unknown_call":
      if (call && msg.call_id === call.id) {
        endCall({ notify: false });
        showNotice("ended", "Call ended", "This call is already over.");
      }
      return;
    default:
      console.warn(`doorbell: hub error ${msg.code}: ${msg.message}`);
  }
}

function markDoor(_callId, online) {
  if (!call) return;
  const d = doors.get(call.doorId);
  if (d) {
    d.online = online;
    renderDoors();
  }
}

// Runs signaling work for the current call in order.
function onCallSignal(msg, work) {
  if (!call || call.id !== msg.call_id || !call.pc) {
    console.warn(`doorbell: ${msg.type} for a call that is not ours; ignored`);
    return;
  }
  const c = call;
  c.chain = c.chain
    .then(() => (call === c ? work() : undefined))
    .catch((e) => {
      console.error(`doorbell: ${msg.type} failed:`, e);
      if (call === c && msg.type === "sdp_offer") failCall("Couldn't set up the call with the door.");
    });
}

// ---------------------------------------------------------------------------------------------
// Calls

function isCallState() {
  return state === "ringing" || state === "connecting" || state === "in-call";
}

function isNoticeState() {
  return ["answered-elsewhere", "missed", "declined", "ended", "door-offline"].includes(state);
}

function onAnswerClick() {
  if (!call || call.answered || state !== "ringing") return;
  metrics.answerClickAt = performance.now();
  stopRinging();
  if (!send(proto.answer(call.id))) return;
  call.answered = true;
  $("call-door").textContent = call.doorName;
  $("call-timer").textContent = "00:00";
  $("call-status-text").textContent = "Connecting…";
  $("call-mic-note").hidden = true;
  setMuted(false);
  $("btn-mute").disabled = true;
  setState("connecting");

  const c = call;
  c.pc = createPeerConnection(c);
  c.micPromise = requestMic(c);
  c.connectTimer = setTimeout(() => {
    if (call === c && state === "connecting") failCall(`Couldn't connect to ${c.doorName}.`);
  }, CONNECT_TIMEOUT_MS);
}

function onDeclineClick() {
  if (!call || call.answered) return;
  send(proto.decline(call.id));
  endCall({ notify: false });
  goHome();
}

function onHangUpClick() {
  if (!call) return;
  endCall({ notify: true, reason: "normal" });
  goHome();
}

async function requestMic(c) {
  if (!navigator.mediaDevices?.getUserMedia) {
    micUnavailable(c);
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
    if (call !== c) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    c.mic = stream;
    const track = stream.getAudioTracks()[0];
    track.enabled = !c.muted;
    $("btn-mute").disabled = false;
    await attachMic(c);
  } catch (e) {
    console.warn("doorbell: microphone unavailable:", e?.name || e, e?.message || "");
    micUnavailable(c);
  }
}

function micUnavailable(c) {
  if (call !== c) return;
  c.micFailed = true;
  $("call-mic-note").hidden = false;
  $("btn-mute").disabled = true;
}

// Puts the microphone on the audio transceiver the door offered. Called when the mic arrives
// and when the offer is applied, whichever is later; replaceTrack needs no renegotiation
// because the answer already said sendrecv while the mic was pending.
async function attachMic(c) {
  const tr = c.audioTransceiver;
  const track = c.mic?.getAudioTracks()[0];
  if (!tr || !track || tr.sender.track === track) return;
  await tr.sender.replaceTrack(track);
}

function createPeerConnection(c) {
  const pc = new RTCPeerConnection({
    iceServers: proto.toRtcIceServers(c.iceServers),
    bundlePolicy: "max-bundle",
  });
  pc.onicecandidate = (ev) => {
    if (call !== c) return;
    const cand = ev.candidate;
    if (!cand || !cand.candidate) return; // end of candidates: nothing to send in v1
    let index = cand.sdpMLineIndex;
    if (index == null) {
      index = pc.getTransceivers().findIndex((t) => t.mid != null && t.mid === cand.sdpMid);
      if (index < 0) return;
    }
    send(proto.ice(c.id, { candidate: cand.candidate, sdpMLineIndex: index }));
  };
  pc.ontrack = (ev) => {
    if (call !== c) return;
    const track = ev.track;
    if (track.kind === "video") {
      const video = $("remote-video");
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => {});
      watchFirstFrame(c, video);
    } else if (track.kind === "audio") {
      const audio = $("remote-audio");
      audio.srcObject = new MediaStream([track]);
      audio.play().catch((e) => console.warn("doorbell: remote audio blocked:", e?.name || e));
    }
  };
  pc.ondatachannel = (ev) => {
    if (call !== c || ev.channel.label !== proto.CONTROL_LABEL) return;
    attachControl(c, ev.channel);
  };
  pc.onconnectionstatechange = () => {
    if (call !== c) return;
    const s = pc.connectionState;
    if (s === "connected") {
      if (metrics.connectedAt == null) metrics.connectedAt = performance.now();
      clearTimeout(c.connectTimer);
      if (!c.gotFrame) {
        clearTimeout(c.graceTimer);
        c.graceTimer = setTimeout(() => {
          if (call === c && state === "connecting") {
            $("call-status-text").textContent = "Waiting for video…";
            enterInCall(c);
          }
        }, AUDIO_ONLY_GRACE_MS);
      }
    } else if (s === "failed") {
      failCall("The connection to the door was lost.");
    } else if (s === "disconnected") {
      // No signaling to say why: a door that hung up (its pipeline is gone, so it answers
      // no more ICE checks) looks like this within seconds, not at the ~30 s "failed".
      endCallTheDoorLeft(c, "hung up or went away");
    }
  };
  return pc;
}

async function applyOffer(sdp) {
  const c = call;
  const pc = c.pc;
  metrics.offerAt = performance.now();
  await pc.setRemoteDescription({ type: "offer", sdp });
  for (const cand of c.queue.splice(0)) await addCandidateSafely(pc, cand);

  // The door offers video sendonly and audio sendrecv: answer audio with our microphone, or
  // with sendrecv and no track yet if the permission prompt is still open (the track is
  // swapped in later without renegotiation), or recvonly if there is no microphone.
  const tr = pc.getTransceivers().find((t) => t.receiver.track?.kind === "audio");
  if (tr) {
    c.audioTransceiver = tr;
    tr.direction = c.micFailed ? "recvonly" : "sendrecv";
    await attachMic(c);
  }
  const answer = await pc.createAnswer();
  await pc.setLocalDescription(answer);
  if (call !== c) return;
  send(proto.sdpAnswer(c.id, pc.localDescription.sdp));
  metrics.answerSentAt = performance.now();
}

async function addRemoteCandidate(candidate) {
  const c = call;
  const init = proto.toIceCandidateInit(candidate);
  if (!c.pc.remoteDescription) {
    c.queue.push(init);
    return;
  }
  await addCandidateSafely(c.pc, init);
}

async function addCandidateSafely(pc, init) {
  try {
    await pc.addIceCandidate(init);
  } catch (e) {
    console.warn("doorbell: bad remote candidate ignored:", e?.message || e, init.candidate);
  }
}

function watchFirstFrame(c, video) {
  const onFrame = () => {
    if (call !== c || c.gotFrame) return;
    c.gotFrame = true;
    metrics.firstFrameAt = performance.now();
    enterInCall(c);
  };
  if ("requestVideoFrameCallback" in video) {
    video.requestVideoFrameCallback(onFrame);
  } else {
    video.addEventListener("loadeddata", onFrame, { once: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Unlock: a typed message on the door's data channel, answered with "unlocked" or an error.

function attachControl(c, channel) {
  c.control = channel;
  channel.onopen = () => renderUnlock(c);
  channel.onclose = () => {
    // The door closing its side of the call is its hang-up when no `hang_up` can reach us.
    if (!endCallTheDoorLeft(c, "hung up")) renderUnlock(c);
  };
  channel.onmessage = (ev) => onControlMessage(c, ev.data);
  renderUnlock(c);
}

function controlOpen(c) {
  return c?.control?.readyState === "open";
}

// The button works only in the call screen, on an open channel, with no request in flight.
function renderUnlock(c) {
  if (call !== c) return;
  $("btn-unlock").disabled = !(state === "in-call" && controlOpen(c) && !c.unlockTimer);
}

function showUnlockStatus(c, kind, text) {
  const el = $("unlock-status");
  clearTimeout(c.unlockNoticeTimer);
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  if (kind !== "pending") {
    c.unlockNoticeTimer = setTimeout(() => {
      if (call === c) el.hidden = true;
    }, UNLOCK_NOTICE_MS);
  }
}

function onUnlockClick() {
  const c = call;
  if (!c || state !== "in-call" || !controlOpen(c) || c.unlockTimer) return;
  c.unlockSeq += 1;
  try {
    c.control.send(proto.unlock(c.unlockSeq));
  } catch (e) {
    console.warn("doorbell: cannot send unlock:", e?.message || e);
    showUnlockStatus(c, "error", "Couldn't reach the door. Try again.");
    return;
  }
  showUnlockStatus(c, "pending", "Unlocking…");
  c.unlockTimer = setTimeout(() => {
    if (call !== c) return;
    c.unlockTimer = null;
    showUnlockStatus(c, "error", "The door did not answer. Try again.");
    renderUnlock(c);
  }, UNLOCK_REPLY_MS);
  renderUnlock(c);
}

function onControlMessage(c, data) {
  if (call !== c) return;
  let msg;
  try {
    msg = proto.decodeDoorToPhone(data);
  } catch (e) {
    console.warn("doorbell: ignoring bad data-channel message from the door:", e.message);
    return;
  }
  if (msg.request_id !== undefined && msg.request_id !== c.unlockSeq) return; // stale reply
  clearTimeout(c.unlockTimer);
  c.unlockTimer = null;
  if (msg.type === "unlocked") {
    showUnlockStatus(c, "ok", "Door unlocked");
  } else {
    const text = {
      not_in_call: "The door can only be unlocked during a call.",
      unsupported_version: "This page is out of date for the door. Reload the page.",
    }[msg.code];
    showUnlockStatus(c, "error", text || `The door refused: ${msg.message}`);
  }
  renderUnlock(c);
}

function enterInCall(c) {
  if (call !== c) return;
  clearTimeout(c.connectTimer);
  clearTimeout(c.graceTimer);
  if (c.gotFrame) $("call-status-text").textContent = "";
  if (state !== "in-call") {
    c.startedAt = performance.now();
    c.timer = setInterval(() => renderTimer(c), 1000);
    renderTimer(c);
    setState("in-call");
    renderUnlock(c);
  }
}

function renderTimer(c) {
  if (call !== c) return;
  const s = Math.floor((performance.now() - c.startedAt) / 1000);
  const mm = String(Math.floor(s / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  $("call-timer").textContent = `${mm}:${ss}`;
}

function failCall(text) {
  if (!call) return;
  const name = call.doorName;
  endCall({ notify: call.answered, reason: "failed" });
  showNotice("ended", "Call failed", text || `The connection to ${name} failed.`);
}

// Releases everything the current call holds. notify: send hang_up to the hub.
function endCall({ notify, reason = "normal" }) {
  const c = call;
  if (!c) return;
  call = null;
  stopRinging();
  clearTimeout(c.connectTimer);
  clearTimeout(c.graceTimer);
  clearInterval(c.timer);
  clearTimeout(c.unlockTimer);
  clearTimeout(c.unlockNoticeTimer);
  $("btn-unlock").disabled = true;
  $("unlock-status").hidden = true;
  if (c.control) c.control.onopen = c.control.onclose = c.control.onmessage = null;
  if (notify && c.answered) send(proto.hangUp(c.id, reason));
  if (c.pc) {
    c.pc.onicecandidate = c.pc.ontrack = c.pc.onconnectionstatechange = c.pc.ondatachannel = null;
    try {
      c.pc.close();
    } catch {}
  }
  c.mic?.getTracks().forEach((t) => t.stop());
  for (const el of [$("remote-video"), $("remote-audio")]) {
    try {
      el.pause();
    } catch {}
    el.srcObject = null;
  }
}

function setMuted(muted) {
  if (call) {
    call.muted = muted;
    const track = call.mic?.getAudioTracks()[0];
    if (track) track.enabled = !muted;
  }
  const btn = $("btn-mute");
  btn.setAttribute("aria-pressed", String(muted));
  btn.classList.toggle("active", muted);
  $("btn-mute-label").textContent = muted ? "Unmute" : "Mute";
}

// ---------------------------------------------------------------------------------------------
// Terminal screens

function showNotice(kind, title, detail) {
  stopNoticeTimer();
  $("notice-title").textContent = title;
  $("notice-detail").textContent = detail || "";
  $("notice-icon").dataset.kind = kind;
  setState(kind);
  noticeTimer = setTimeout(goHome, NOTICE_MS);
}

function stopNoticeTimer() {
  clearTimeout(noticeTimer);
  noticeTimer = null;
}

// Back to the resting screen that matches the connection.
function goHome() {
  stopNoticeTimer();
  if (!token) return showNotPaired();
  if (wsReady) return setState("idle");
  if (ws && ws.readyState === WebSocket.CONNECTING && reconnectAttempts === 0) return setState("connecting-hub");
  setState("hub-unreachable");
}

// ---------------------------------------------------------------------------------------------
// Door list

function renderDoors() {
  const list = $("door-list");
  list.replaceChildren();
  if (doors.size === 0) {
    const li = document.createElement("li");
    li.className = "door empty";
    li.textContent = "No doors paired yet. Open a pairing link to add one.";
    list.append(li);
    return;
  }
  const sorted = [...doors.values()].sort((a, b) => a.name.localeCompare(b.name));
  for (const d of sorted) {
    const li = document.createElement("li");
    li.className = "door";
    li.dataset.doorId = d.door_id;
    li.dataset.online = String(d.online);
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "door-label";
    name.textContent = d.name;
    const status = document.createElement("span");
    status.className = "door-status";
    status.textContent = d.online ? "Online" : "Offline";
    li.append(dot, name, status);
    list.append(li);
  }
}

// ---------------------------------------------------------------------------------------------
// Ringtone and vibration

let audioCtx = null;
let ringTimer = null;
let vibrateTimer = null;

function getAudioContext() {
  if (!audioCtx) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    try {
      audioCtx = new Ctx();
    } catch {
      return null;
    }
  }
  return audioCtx;
}

// One "ring-ring": two short bursts of a two-tone chime.
function playRingBurst() {
  const ctx = getAudioContext();
  if (!ctx) return;
  if (ctx.state === "suspended") ctx.resume().catch(() => {});
  const t0 = ctx.currentTime + 0.02;
  const gain = ctx.createGain();
  gain.gain.value = 0;
  gain.connect(ctx.destination);
  const tones = [
    [880, 0.0],
    [660, 0.25],
    [880, 0.7],
    [660, 0.95],
  ];
  for (const [freq, at] of tones) {
    const osc = ctx.createOscillator();
    osc.type = "sine";
    osc.frequency.value = freq;
    osc.connect(gain);
    const s = t0 + at;
    gain.gain.setValueAtTime(0, s);
    gain.gain.linearRampToValueAtTime(0.25, s + 0.02);
    gain.gain.setValueAtTime(0.25, s + 0.2);
    gain.gain.linearRampToValueAtTime(0, s + 0.24);
    osc.start(s);
    osc.stop(s + 0.25);
  }
  setTimeout(() => gain.disconnect(), 1500);
}

function startRinging() {
  stopRinging();
  try {
    playRingBurst();
  } catch {}
  ringTimer = setInterval(() => {
    try {
      playRingBurst();
    } catch {}
  }, 2500);
  if (navigator.vibrate) {
    const buzz = () => {
      try {
        navigator.vibrate([400, 200, 400]);
      } catch {}
    };
    buzz();
    vibrateTimer = setInterval(buzz, 2500);
  }
}

function stopRinging() {
  clearInterval(ringTimer);
  clearInterval(vibrateTimer);
  ringTimer = vibrateTimer = null;
  try {
    if (navigator.vibrate) navigator.vibrate(0);
  } catch {}
}

// Browsers allow audio only after a user gesture: use the first tap to unlock it so a later
// ring can be heard.
function unlockAudio() {
  const ctx = getAudioContext();
  if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Start

function init() {
  setState(state);
  renderDoors();
  $("btn-answer").addEventListener("click", onAnswerClick);
  $("btn-decline").addEventListener("click", onDeclineClick);
  $("btn-hangup").addEventListener("click", onHangUpClick);
  $("btn-unlock").addEventListener("click", onUnlockClick);
  $("btn-mute").addEventListener("click", () => setMuted(!(call?.muted ?? false)));
  $("notice-dismiss").addEventListener("click", goHome);
  $("pair-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const code = pairCodeFrom($("pair-input").value);
    if (!code) {
      showError($("pair-error"), "That doesn't look like a pairing link. It contains “#pair=”.");
      return;
    }
    $("pair-input").value = "";
    pairAndConnect(code);
  });
  document.addEventListener("pointerdown", unlockAudio, { capture: true });
  document.addEventListener("keydown", unlockAudio, { capture: true });
  window.addEventListener("online", () => {
    if (token && !wsReady) connect(true);
  });
  window.addEventListener("hashchange", () => {
    const code = pairCodeFrom(location.hash);
    if (code) {
      history.replaceState(null, "", location.pathname + location.search);
      pairAndConnect(code);
    }
  });

  const code = pairCodeFrom(location.hash);
  if (code) {
    history.replaceState(null, "", location.pathname + location.search);
    pairAndConnect(code);
  } else if (!token) {
    showNotPaired();
  } else {
    connect(true);
  }
}

init();
