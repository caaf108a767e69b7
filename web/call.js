// @ts-check
// One answered call: the RTCPeerConnection to the door, the microphone, the "control" data
// channel (Unlock) and every timer of the call. It reports what happens as reducer actions
// (state.js `Action`) through `dispatch`; `dispose()` releases all of it at once, after which
// nothing it owned can dispatch again.

import { IDENTITY_CHANGED, offerMatchesPin } from "./pin.js";
import { addCandidateSafely, candidateIndex } from "./preview.js";
import * as proto from "./protocol.js";
import { Action } from "./state.js";

/** Answer pressed -> media connected, else give up. */
export const CONNECT_TIMEOUT_MS = 30000;
/** Connected but no video frame yet: show the call anyway. */
export const AUDIO_ONLY_GRACE_MS = 2000;
/** Unlock pressed -> the door's reply, else say it did not answer. */
export const UNLOCK_REPLY_MS = 5000;
/** How long "Door unlocked" stays on screen. */
export const UNLOCK_NOTICE_MS = 5000;
/** The call timer's refresh. */
const CLOCK_TICK_MS = 1000;

/**
 * Timing of the current call for tests and benchmarks (performance.now() values).
 * @typedef {{
 *   callId?: string, doorId?: string, ringAt?: number, ringAtEpochMs?: number,
 *   answerClickAt?: number | null, offerAt?: number | null, answerSentAt?: number | null,
 *   connectedAt?: number | null, firstFrameAt?: number | null,
 * }} Metrics
 * @typedef {{type: string, [key: string]: any}} Act
 * @typedef {{
 *   id: string, doorName: string, iceServers: any[], muted: boolean, pinned: string | null,
 *   send: (text: string) => boolean, dispatch: (action: Act) => void, onTick: () => void,
 *   video: HTMLVideoElement, audio: HTMLAudioElement, metrics: Metrics,
 *   certificate?: RTCCertificate | null | Promise<RTCCertificate | null>,
 * }} CallOptions
 */

/** @type {Record<string, string>} */
const UNLOCK_ERRORS = {
  not_in_call: "The door can only be unlocked during a call.",
  not_allowed: "This phone may not unlock this door.",
  unsupported_version: "This page is out of date for the door. Reload the page.",
};

export class Call {
  /** @type {RTCPeerConnection | null} */
  pc = null;
  /** @type {MediaStream | null} */
  #mic = null;
  #micFailed = false;
  /** @type {RTCRtpTransceiver | null} */
  #audioTransceiver = null;
  /** @type {RTCIceCandidateInit[]} remote candidates waiting for the remote description */
  #queue = [];
  /** Serializes signaling work for this call. */
  #chain = Promise.resolve();
  #gotFrame = false;
  #disposed = false;
  /** @type {RTCDataChannel | null} the door's "control" channel (Unlock) */
  #control = null;
  #unlockSeq = 0; // request_id of the last unlock sent
  /** @type {string | null} the preview session this call was answered in (its ICE is `session_ice`) */
  sessionId = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #connectTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #graceTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */ #clock;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #unlockTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #unlockNoticeTimer;
  #o;

  /** @param {CallOptions} options */
  constructor(options) {
    this.#o = options;
    this.id = options.id;
  }

  /** Answer was sent: open the peer connection, ask for the microphone, arm the timeout. */
  start() {
    // The peer connection uses the phone's kept certificate, the one the door pinned (any
    // other is refused); if it is still loading, signaling waits for it on the chain.
    this.#chain = Promise.resolve(this.#o.certificate).then((cert) => {
      if (!this.#disposed) this.pc = this.#createPeerConnection(cert ?? null);
    });
    this.#requestMic();
    this.#connectTimer = setTimeout(() => this.#emit({ type: Action.ConnectTimeout }), CONNECT_TIMEOUT_MS);
  }

  /**
   * Answered in the preview session (`answer_in_session`): the call is that connection, already
   * up with the door's video; only the microphone is added (replaceTrack, no renegotiation).
   * @param {import("./preview.js").Handover} h
   */
  adopt(h) {
    this.sessionId = h.sessionId;
    this.pc = h.pc;
    this.#wire(h.pc);
    this.#audioTransceiver = h.audioTransceiver;
    this.#requestMic();
    for (const track of [h.videoTrack, h.audioTrack]) if (track) this.#showTrack(track);
    this.#connectTimer = setTimeout(() => this.#emit({ type: Action.ConnectTimeout }), CONNECT_TIMEOUT_MS);
    // Reported after the dispatch that created this call has finished (no nested dispatch).
    queueMicrotask(() => {
      if (this.#disposed) return;
      if (h.control) this.#attachControl(h.control);
      this.#onPeerState(h.pc.connectionState);
    });
  }

  /** @param {Act} action */
  #emit(action) {
    if (!this.#disposed) this.#o.dispatch(action);
  }

  /**
   * Signaling for this call (`sdp_offer`, `ice`), applied in arrival order.
   * @param {any} msg
   */
  signal(msg) {
    const work =
      msg.type === "sdp_offer" ? () => this.#applyOffer(msg.sdp) : () => this.#addRemoteCandidate(msg.candidate);
    this.#chain = this.#chain
      .then(() => (this.#disposed ? undefined : work()))
      .catch((e) => {
        console.error(`doorbell: ${msg.type} failed:`, e);
        if (msg.type !== "sdp_offer") return;
        const text = e instanceof IdentityChanged ? IDENTITY_CHANGED : "Couldn't set up the call with the door.";
        this.#emit({ type: Action.SetupFailed, text });
      });
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.#o.muted = muted;
    const track = this.#mic?.getAudioTracks()[0];
    if (track) track.enabled = !muted;
  }

  /** The call became visible: tick its timer. */
  startClock() {
    clearInterval(this.#clock);
    this.#clock = setInterval(() => {
      if (!this.#disposed) this.#o.onTick();
    }, CLOCK_TICK_MS);
  }

  /**
   * Releases everything the call holds. notify: send hang_up to the hub with `reason`.
   * @param {{notify: boolean, reason?: string}} how
   */
  dispose({ notify, reason = "normal" }) {
    if (this.#disposed) return;
    this.#disposed = true;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#graceTimer);
    clearInterval(this.#clock);
    clearTimeout(this.#unlockTimer);
    clearTimeout(this.#unlockNoticeTimer);
    const control = this.#control;
    if (control) control.onopen = control.onclose = control.onmessage = null;
    if (notify) this.#o.send(proto.hangUp(this.id, reason));
    const pc = this.pc;
    if (pc) {
      pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = pc.ondatachannel = null;
      try {
        pc.close();
      } catch {}
    }
    this.#mic?.getTracks().forEach((t) => t.stop());
    for (const el of [this.#o.video, this.#o.audio]) {
      try {
        el.pause();
      } catch {}
      el.srcObject = null;
    }
  }

  async #requestMic() {
    if (!navigator.mediaDevices?.getUserMedia) {
      this.#micUnavailable();
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
      if (this.#disposed) {
        stream.getTracks().forEach((t) => t.stop());
        return;
      }
      this.#mic = stream;
      stream.getAudioTracks()[0].enabled = !this.#o.muted;
      this.#emit({ type: Action.MicReady });
      await this.#attachMic();
    } catch (e) {
      const err = /** @type {any} */ (e);
      console.warn("doorbell: microphone unavailable:", err?.name || e, err?.message || "");
      this.#micUnavailable();
    }
  }

  #micUnavailable() {
    if (this.#disposed) return;
    this.#micFailed = true;
    this.#emit({ type: Action.MicFailed });
  }

  // Puts the microphone on the audio transceiver the door offered. Called when the mic arrives
  // and when the offer is applied, whichever is later; replaceTrack needs no renegotiation
  // because the answer already said sendrecv while the mic was pending.
  async #attachMic() {
    const tr = this.#audioTransceiver;
    const track = this.#mic?.getAudioTracks()[0];
    if (!tr || !track || tr.sender.track === track) return;
    await tr.sender.replaceTrack(track);
  }

  /** @param {RTCCertificate | null} certificate */
  #createPeerConnection(certificate) {
    const pc = new RTCPeerConnection({
      iceServers: proto.toRtcIceServers(this.#o.iceServers),
      bundlePolicy: "max-bundle",
      // The phone's kept certificate (phone-cert.js): the same fingerprint on every call.
      ...(certificate ? { certificates: [certificate] } : {}),
    });
    this.#wire(pc);
    return pc;
  }

  /** @param {RTCPeerConnection} pc */
  #wire(pc) {
    pc.onicecandidate = (ev) => {
      const cand = ev.candidate;
      if (this.#disposed || !cand || !cand.candidate) return; // end of candidates: nothing to send in v1
      const init = { candidate: cand.candidate, sdpMLineIndex: candidateIndex(pc, cand) };
      this.#o.send(this.sessionId ? proto.sessionIce(this.sessionId, init) : proto.ice(this.id, init));
    };
    pc.ontrack = (ev) => {
      if (!this.#disposed) this.#showTrack(ev.track);
    };
    pc.ondatachannel = (ev) => {
      if (this.#disposed || ev.channel.label !== proto.CONTROL_LABEL) return;
      this.#attachControl(ev.channel);
    };
    pc.onconnectionstatechange = () => {
      if (!this.#disposed) this.#onPeerState(pc.connectionState);
    };
  }

  /** @param {MediaStreamTrack} track */
  #showTrack(track) {
    if (track.kind === "video") {
      const video = this.#o.video;
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => {});
      this.#watchFirstFrame(video);
    } else if (track.kind === "audio") {
      const audio = this.#o.audio;
      audio.srcObject = new MediaStream([track]);
      audio.play().catch((e) => console.warn("doorbell: remote audio blocked:", e?.name || e));
    }
  }

  /** @param {RTCPeerConnectionState} s */
  #onPeerState(s) {
    if (s === "connected") {
      const m = this.#o.metrics;
      if (m.connectedAt == null) m.connectedAt = performance.now();
      clearTimeout(this.#connectTimer);
      if (!this.#gotFrame) {
        clearTimeout(this.#graceTimer);
        this.#graceTimer = setTimeout(
          () => this.#emit({ type: Action.VideoGraceElapsed, at: performance.now() }),
          AUDIO_ONLY_GRACE_MS,
        );
      }
    }
    this.#emit({ type: Action.PeerState, state: s });
  }

  /** @param {string} sdp */
  async #applyOffer(sdp) {
    const pc = /** @type {RTCPeerConnection} */ (this.pc);
    this.#o.metrics.offerAt = performance.now();
    // Before anything of the offer is used: is it from the door this phone paired with?
    if (!offerMatchesPin(sdp, this.#o.pinned)) throw new IdentityChanged();
    await pc.setRemoteDescription({ type: "offer", sdp });
    for (const cand of this.#queue.splice(0)) await addCandidateSafely(pc, cand);

    // The door offers video sendonly and audio sendrecv: answer audio with our microphone, or
    // with sendrecv and no track yet if the permission prompt is still open (the track is
    // swapped in later without renegotiation), or recvonly if there is no microphone.
    const tr = pc.getTransceivers().find((t) => t.receiver.track?.kind === "audio");
    if (tr) {
      this.#audioTransceiver = tr;
      tr.direction = this.#micFailed ? "recvonly" : "sendrecv";
      await this.#attachMic();
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (this.#disposed || !pc.localDescription) return;
    this.#o.send(proto.sdpAnswer(this.id, pc.localDescription.sdp));
    this.#o.metrics.answerSentAt = performance.now();
  }

  /** @param {any} candidate */
  async #addRemoteCandidate(candidate) {
    const pc = /** @type {RTCPeerConnection} */ (this.pc);
    const init = proto.toIceCandidateInit(candidate);
    if (!pc.remoteDescription) {
      this.#queue.push(init);
      return;
    }
    await addCandidateSafely(pc, init);
  }

  /** @param {HTMLVideoElement} video */
  #watchFirstFrame(video) {
    const onFrame = () => {
      if (this.#disposed || this.#gotFrame) return;
      this.#gotFrame = true;
      this.#o.metrics.firstFrameAt = performance.now();
      clearTimeout(this.#connectTimer);
      clearTimeout(this.#graceTimer);
      this.#emit({ type: Action.FirstFrame, at: performance.now() });
    };
    if ("requestVideoFrameCallback" in video) {
      video.requestVideoFrameCallback(onFrame);
    } else {
      /** @type {HTMLVideoElement} */ (video).addEventListener("loadeddata", onFrame, { once: true });
    }
  }

  // Unlock: a typed message on the door's data channel, answered with "unlocked" or an error.

  /** @param {RTCDataChannel} channel */
  #attachControl(channel) {
    this.#control = channel;
    channel.onopen = () => this.#emit({ type: Action.ControlOpen });
    channel.onclose = () => this.#emit({ type: Action.ControlClosed });
    channel.onmessage = (ev) => this.#onControlMessage(ev.data);
    if (channel.readyState === "open") this.#emit({ type: Action.ControlOpen });
  }

  /** Sends `unlock` (the reducer's canUnlock said the button works now). */
  unlock() {
    const control = this.#control;
    if (!control || control.readyState !== "open") return;
    this.#unlockSeq += 1;
    try {
      control.send(proto.unlock(this.#unlockSeq));
    } catch (e) {
      console.warn("doorbell: cannot send unlock:", /** @type {any} */ (e)?.message || e);
      this.#unlockStatus("error", "Couldn't reach the door. Try again.", false);
      return;
    }
    this.#unlockStatus("pending", "Unlocking…", true);
    this.#unlockTimer = setTimeout(() => {
      this.#unlockTimer = undefined;
      this.#unlockStatus("error", "The door did not answer. Try again.", false);
    }, UNLOCK_REPLY_MS);
  }

  /** @param {"pending" | "ok" | "error"} kind @param {string} text @param {boolean} pending */
  #unlockStatus(kind, text, pending) {
    clearTimeout(this.#unlockNoticeTimer);
    this.#emit({ type: Action.UnlockStatus, status: { kind, text }, pending });
    if (kind !== "pending") {
      this.#unlockNoticeTimer = setTimeout(
        () => this.#emit({ type: Action.UnlockStatus, status: null, pending: this.#unlockTimer !== undefined }),
        UNLOCK_NOTICE_MS,
      );
    }
  }

  /** @param {any} data */
  #onControlMessage(data) {
    if (this.#disposed) return;
    let msg;
    try {
      msg = proto.decodeDoorToPhone(data);
    } catch (e) {
      console.warn("doorbell: ignoring bad data-channel message from the door:", /** @type {any} */ (e).message);
      return;
    }
    if (msg.request_id !== undefined && msg.request_id !== this.#unlockSeq) return; // stale reply
    clearTimeout(this.#unlockTimer);
    this.#unlockTimer = undefined;
    if (msg.type === "unlocked") {
      this.#unlockStatus("ok", "Door unlocked", false);
    } else {
      this.#unlockStatus("error", UNLOCK_ERRORS[msg.code] || `The door refused: ${msg.message}`, false);
    }
  }
}

/** The offer's DTLS certificate is not the door's pinned one (pin.js). */
class IdentityChanged extends Error {
  constructor() {
    super("the offer's DTLS fingerprint differs from the door's pinned one");
    this.name = "IdentityChanged";
  }
}
