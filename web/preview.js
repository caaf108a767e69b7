// @ts-check
// The door's live video while the phone rings (docs/PROTOCOL.md "Preview while ringing"): one
// preview session's RTCPeerConnection, shown muted behind Answer/Decline. Video only: the
// door's audio line is answered sendrecv with no track, so the microphone is not requested
// before Answer and Answer needs no renegotiation; `handOver()` then gives the connection to
// the Call (call.js) without closing it. It reports to the reducer through `dispatch`
// (PreviewFrame, PreviewFailed); a failed preview only means Answer takes the plain path.

import { offerMatchesPin } from "./pin.js";
import * as proto from "./protocol.js";
import { Action } from "./state.js";

/** Ring -> first preview frame, else give up on the preview (Answer then negotiates anew). */
export const PREVIEW_FRAME_TIMEOUT_MS = 10000;

/**
 * What the Call takes over at Answer.
 * @typedef {{
 *   pc: RTCPeerConnection, sessionId: string, audioTransceiver: RTCRtpTransceiver | null,
 *   control: RTCDataChannel | null, videoTrack: MediaStreamTrack | null, audioTrack: MediaStreamTrack | null,
 * }} Handover
 * @typedef {{
 *   callId: string, iceServers: any[], pinned: string | null,
 *   certificate?: RTCCertificate | null | Promise<RTCCertificate | null>,
 *   send: (text: string) => boolean,
 *   dispatch: (action: {type: string, [key: string]: any}) => void, video: HTMLVideoElement,
 *   audio?: HTMLAudioElement | null,
 * }} PreviewOptions `audio`: a live view's, where the door lets its audio out (`view.door_audio`)
 */

export class Preview {
  /** @type {RTCPeerConnection | null} */
  pc = null;
  /** @type {string | null} */
  sessionId = null;
  /** @type {RTCRtpTransceiver | null} */
  #audioTransceiver = null;
  /** @type {RTCDataChannel | null} the door's "control" channel, used once answered */
  #control = null;
  /** @type {MediaStreamTrack | null} */ #videoTrack = null;
  /** @type {MediaStreamTrack | null} */ #audioTrack = null;
  /** @type {RTCIceCandidateInit[]} remote candidates waiting for the remote description */
  #queue = [];
  #chain = Promise.resolve();
  #disposed = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #frameTimer;
  #o;

  /** @param {PreviewOptions} options */
  constructor(options) {
    this.#o = options;
    this.callId = options.callId;
    this.#frameTimer = setTimeout(() => this.#emit({ type: Action.PreviewFailed }), PREVIEW_FRAME_TIMEOUT_MS);
  }

  /** @param {{type: string, [key: string]: any}} action */
  #emit(action) {
    if (!this.#disposed) this.#o.dispatch(action);
  }

  /**
   * `session_offer` / `session_ice` of this preview, applied in arrival order.
   * @param {any} msg
   */
  signal(msg) {
    if (msg.type === "session_offer") this.sessionId = msg.session_id;
    const work = msg.type === "session_offer" ? () => this.#applyOffer(msg.sdp) : () => this.#addCandidate(msg.candidate);
    this.#chain = this.#chain
      .then(() => (this.#disposed ? undefined : work()))
      .catch((e) => {
        console.warn(`doorbell: preview ${msg.type} failed:`, /** @type {any} */ (e)?.message || e);
        if (msg.type === "session_offer") this.#emit({ type: Action.PreviewFailed });
      });
  }

  /** @param {string} sdp */
  async #applyOffer(sdp) {
    // The pinned door's certificate or nothing: a mismatch is reported by the plain answer path.
    if (!offerMatchesPin(sdp, this.#o.pinned)) throw new Error("the offer is not from the pinned door");
    // The phone's kept certificate (phone-cert.js), the one the door pinned (it refuses any
    // other); still loading right after start, so waited for.
    const certificate = await this.#o.certificate;
    if (this.#disposed) return;
    const pc = (this.pc = new RTCPeerConnection({
      iceServers: proto.toRtcIceServers(this.#o.iceServers),
      bundlePolicy: "max-bundle",
      ...(certificate ? { certificates: [certificate] } : {}),
    }));
    pc.onicecandidate = (ev) => {
      const cand = ev.candidate;
      if (this.#disposed || !cand || !cand.candidate || !this.sessionId) return;
      this.#o.send(proto.sessionIce(this.sessionId, { candidate: cand.candidate, sdpMLineIndex: candidateIndex(pc, cand) }));
    };
    pc.ontrack = (ev) => {
      if (this.#disposed) return;
      if (ev.track.kind === "audio") {
        this.#audioTrack = ev.track; // silent until Answer (the door holds it); played by the Call
        const audio = this.#o.audio;
        if (audio) {
          audio.srcObject = new MediaStream([ev.track]); // a view's door audio, when let out
          audio.play().catch(() => {});
        }
        return;
      }
      this.#videoTrack = ev.track;
      const video = this.#o.video;
      video.srcObject = new MediaStream([ev.track]);
      video.play().catch(() => {});
      const onFrame = () => {
        clearTimeout(this.#frameTimer);
        this.#emit({ type: Action.PreviewFrame });
      };
      if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(onFrame);
      else /** @type {HTMLVideoElement} */ (video).addEventListener("loadeddata", onFrame, { once: true });
    };
    pc.ondatachannel = (ev) => {
      if (ev.channel.label === proto.CONTROL_LABEL) this.#control = ev.channel;
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") this.#emit({ type: Action.PreviewFailed });
    };
    await pc.setRemoteDescription({ type: "offer", sdp });
    for (const init of this.#queue.splice(0)) await addCandidateSafely(pc, init);
    // Audio sendrecv with no track: nothing is captured or sent; Answer only adds the mic.
    this.#audioTransceiver = pc.getTransceivers().find((t) => t.receiver.track?.kind === "audio") ?? null;
    if (this.#audioTransceiver) this.#audioTransceiver.direction = "sendrecv";
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (this.#disposed || !pc.localDescription || !this.sessionId) return;
    this.#o.send(proto.sessionAnswer(this.sessionId, pc.localDescription.sdp));
  }

  /** @param {any} candidate */
  async #addCandidate(candidate) {
    const init = proto.toIceCandidateInit(candidate);
    if (!this.pc?.remoteDescription) this.#queue.push(init);
    else await addCandidateSafely(this.pc, init);
  }

  /**
   * Show the video in `video` from now on (a live view's preview moves between the viewer
   * screen and the ringing screen of a ring during it).
   * @param {HTMLVideoElement} video
   */
  show(video) {
    const old = this.#o.video;
    if (old === video || this.#disposed) return;
    this.#o.video = video;
    if (!this.#videoTrack) return;
    video.srcObject = new MediaStream([this.#videoTrack]);
    video.play().catch(() => {});
    old.srcObject = null;
  }

  #release() {
    this.#disposed = true;
    clearTimeout(this.#frameTimer);
    const pc = this.pc;
    if (pc) pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = pc.ondatachannel = null;
    const video = this.#o.video;
    try {
      video.pause();
    } catch {}
    video.srcObject = null;
    if (this.#o.audio) this.#o.audio.srcObject = null;
  }

  /** Answered in this session: the Call takes the connection as it is (no new handshake). @returns {Handover | null} */
  handOver() {
    const { pc, sessionId } = this;
    this.#release();
    if (!pc || !sessionId) return null;
    return {
      pc,
      sessionId,
      audioTransceiver: this.#audioTransceiver,
      control: this.#control,
      videoTrack: this.#videoTrack,
      audioTrack: this.#audioTrack,
    };
  }

  /** The preview ends here (the hub or the door closes the session itself). */
  dispose() {
    if (this.#disposed) return;
    this.#release();
    try {
      this.pc?.close();
    } catch {}
  }
}

/**
 * The m-line index of a local candidate (`ice`/`session_ice` carry the index, not the mid).
 * @param {RTCPeerConnection} pc @param {RTCIceCandidate} cand
 */
export function candidateIndex(pc, cand) {
  if (cand.sdpMLineIndex != null) return cand.sdpMLineIndex;
  const index = pc.getTransceivers().findIndex((t) => t.mid != null && t.mid === cand.sdpMid);
  return index < 0 ? 0 : index;
}

/** @param {RTCPeerConnection} pc @param {RTCIceCandidateInit} init */
export async function addCandidateSafely(pc, init) {
  try {
    await pc.addIceCandidate(init);
  } catch (e) {
    console.warn("doorbell: bad remote candidate ignored:", /** @type {any} */ (e)?.message || e, init.candidate);
  }
}
