// A preview-session client that runs inside a paired phone's page: its own hub connection
// with the page's token, speaking the documented wire messages (web/protocol.js) directly.
// It asks for a preview when the door rings, shows the video, answers in its session with
// `answer_in_session` and only then opens the (fake) microphone. The tests read its state
// from `window.previewClient`.
//
// The phone app does the same (web/preview.js, tested in app_preview.test.mjs); this client
// pins the protocol and the door's behaviour on their own, and the benchmarks use it.

/**
 * Installs `window.previewClient` in `page` (a paired app page) and connects it to the hub.
 * The page first leaves the app for a page of the same origin without it (the token stays in
 * localStorage): the app previews a ringing door itself, and this phone's only viewer must be
 * this client.
 */
export async function startPreviewClient(page) {
  await page.goto(new URL("/no-app", page.url()).href);
  await page.evaluate(async () => {
    const proto = await import("/protocol.js");
    // The phone's own certificate, which the door pinned at pairing: it refuses any other.
    const certificate = await (await import("/phone-cert.js")).phoneCertificate();
    const token = localStorage.getItem("doorbell.token");
    if (!token) throw new Error("the page is not paired");
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
    const video = Object.assign(document.createElement("video"), { autoplay: true, muted: true, playsInline: true });
    const audio = Object.assign(document.createElement("audio"), { autoplay: true });
    document.body.append(video, audio);
    /** @type {RTCIceCandidateInit[]} */
    const early = [];
    const c = {
      ws,
      /** @type {RTCPeerConnection | null} */ pc: null,
      /** @type {RTCRtpTransceiver | null} */ audioTransceiver: null,
      callId: null,
      sessionId: null,
      closedReason: null,
      answeredElsewhere: false,
      micRequested: false,
      welcome: false,
      errors: [],
      /** @type {RTCDataChannel | null} the door's "control" channel */
      control: null,
      /** Data-channel replies from the door. */
      replies: [],
      /** Wall-clock ms (timeOrigin-based) of the ring, the first preview frame. */
      ringAt: null,
      firstFrameAt: null,
      async answer() {
        // Answer first (the door opens its audio at once), then the microphone: the door
        // must not hear this phone before Answer, and the call must not wait for the mic.
        ws.send(proto.answerInSession(c.callId, c.sessionId));
        c.micRequested = true;
        const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
        c.mic = mic;
        await c.audioTransceiver.sender.replaceTrack(mic.getAudioTracks()[0]);
      },
      async stats() {
        if (!c.pc) return null;
        const all = [...(await c.pc.getStats()).values()];
        const inVideo = all.find((s) => s.type === "inbound-rtp" && s.kind === "video");
        const inAudio = all.find((s) => s.type === "inbound-rtp" && s.kind === "audio");
        const outAudio = all.find((s) => s.type === "outbound-rtp" && s.kind === "audio");
        const transport = all.find((s) => s.type === "transport");
        return {
          connectionState: c.pc.connectionState,
          framesDecoded: inVideo?.framesDecoded ?? 0,
          audioSamplesReceived: inAudio?.totalSamplesReceived ?? 0,
          audioPacketsSent: outAudio?.packetsSent ?? 0,
          selectedPair: transport?.selectedCandidatePairId ?? null,
        };
      },
    };
    window.previewClient = c;
    ws.onopen = () => ws.send(proto.hello(token));
    ws.onmessage = async (ev) => {
      const msg = JSON.parse(ev.data);
      try {
        if (msg.type === "welcome") c.welcome = true;
        else if (msg.type === "ring") {
          c.ringAt = performance.timeOrigin + performance.now();
          // The last call's microphone (a soak answers hundreds of calls in one page).
          c.mic?.getTracks().forEach((t) => t.stop());
          c.mic = null;
          c.firstFrameAt = null;
          c.closedReason = null;
          c.answeredElsewhere = false;
          c.replies = [];
          c.callId = msg.call_id;
          c.iceServers = proto.toRtcIceServers(msg.ice_servers);
          ws.send(proto.preview(msg.call_id));
        } else if (msg.type === "session_offer") {
          c.sessionId = msg.session_id;
          const pc = (c.pc = new RTCPeerConnection({ iceServers: c.iceServers ?? [], certificates: [certificate] }));
          pc.onicecandidate = (e) => {
            if (e.candidate && e.candidate.candidate) ws.send(proto.sessionIce(c.sessionId, e.candidate));
          };
          pc.ondatachannel = (e) => {
            c.control = e.channel;
            e.channel.onmessage = (m) => c.replies.push(JSON.parse(m.data));
          };
          pc.ontrack = (e) => {
            const stream = e.streams[0] ?? new MediaStream([e.track]);
            if (e.track.kind === "video") {
              video.srcObject = stream;
              video.requestVideoFrameCallback(() => {
                c.firstFrameAt ??= performance.timeOrigin + performance.now();
              });
            } else audio.srcObject = stream;
          };
          await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
          // Audio is negotiated now (sendrecv, with no track: nothing is captured or sent),
          // so Answer only adds the microphone: no renegotiation, no new handshake.
          c.audioTransceiver = pc.getTransceivers().find((t) => t.receiver.track.kind === "audio");
          c.audioTransceiver.direction = "sendrecv";
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          ws.send(proto.sessionAnswer(c.sessionId, answer.sdp));
          for (const candidate of early.splice(0)) await pc.addIceCandidate(candidate);
        } else if (msg.type === "session_ice") {
          const candidate = proto.toIceCandidateInit(msg.candidate);
          if (c.pc?.remoteDescription) await c.pc.addIceCandidate(candidate);
          else early.push(candidate);
        } else if (msg.type === "session_closed") {
          c.closedReason = msg.reason;
          c.pc?.close();
        } else if (msg.type === "answered_elsewhere") c.answeredElsewhere = true;
        else if (msg.type === "hang_up" || msg.type === "ringing_cancelled") c.pc?.close();
        else if (msg.type === "error") c.errors.push(`${msg.code}: ${msg.message}`);
      } catch (e) {
        c.errors.push(String(e));
      }
    };
  });
  await page.waitForFunction(() => window.previewClient?.welcome, null, { timeout: 10_000 });
}

/** The client's getStats summary. */
export function previewStats(page) {
  return page.evaluate(() => window.previewClient.stats());
}

/** Polls the client until `predicate(stats, client)` holds; throws with the last state. */
export async function waitForPreview(page, predicate, what, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const state = await page.evaluate(async () => {
      const c = window.previewClient;
      return {
        stats: await c.stats(),
        closedReason: c.closedReason,
        answeredElsewhere: c.answeredElsewhere,
        micRequested: c.micRequested,
        errors: c.errors,
        replies: c.replies,
      };
    });
    if (predicate(state.stats, state)) return state;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeout} ms; last: ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
