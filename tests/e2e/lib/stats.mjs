// WebRTC statistics of the phone's call, read in the page with getStats().
//
// By default the peer connection is window.doorbell.pc (the app's current call). Pass
// { global: "name" } to read globalThis[name] instead (used by self-checks). No eval: the
// page runs under a strict CSP.

/**
 * Returns a summary of the call's stats, or null when there is no peer connection:
 * {
 *   connectionState, iceConnectionState,
 *   video: { framesDecoded, framesReceived, frameWidth, frameHeight, packetsLost, mimeType, sdpFmtpLine } | null,
 *   audio: { totalSamplesReceived, packetsReceived, mimeType } | null,
 *   candidatePair: { state, localType, remoteType, local, remote, protocol, relayProtocol, currentRoundTripTime } | null,
 *     (local, remote: { type, address, port } of the two candidates)
 *   outboundAudio: { packetsSent, bytesSent } | null,
 *   remoteCertificate: base64 DER of the certificate the door used in the DTLS handshake | null,
 * }
 */
export async function callStats(page, options = {}) {
  return page.evaluate(readStatsInPage, options.global ?? null);
}

// Runs inside the page.
async function readStatsInPage(globalName) {
  const pc = globalName ? globalThis[globalName] : globalThis.doorbell?.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  const all = [...report.values()];
  const byId = (id) => (id ? report.get(id) : undefined);
  const codecOf = (s) => byId(s?.codecId);

  const inVideo = all.find((s) => s.type === "inbound-rtp" && s.kind === "video");
  const inAudio = all.find((s) => s.type === "inbound-rtp" && s.kind === "audio");
  const outAudio = all.find((s) => s.type === "outbound-rtp" && s.kind === "audio");

  const transport = all.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  let pair = byId(transport?.selectedCandidatePairId);
  if (!pair) pair = all.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded");
  const remoteCertificate = byId(transport?.remoteCertificateId);
  const local = byId(pair?.localCandidateId);
  const remote = byId(pair?.remoteCandidateId);

  return {
    connectionState: pc.connectionState,
    iceConnectionState: pc.iceConnectionState,
    video: inVideo
      ? {
          framesDecoded: inVideo.framesDecoded ?? 0,
          framesReceived: inVideo.framesReceived ?? 0,
          frameWidth: inVideo.frameWidth ?? 0,
          frameHeight: inVideo.frameHeight ?? 0,
          packetsLost: inVideo.packetsLost ?? 0,
          mimeType: codecOf(inVideo)?.mimeType ?? null,
          sdpFmtpLine: codecOf(inVideo)?.sdpFmtpLine ?? null,
        }
      : null,
    audio: inAudio
      ? {
          totalSamplesReceived: inAudio.totalSamplesReceived ?? 0,
          packetsReceived: inAudio.packetsReceived ?? 0,
          mimeType: codecOf(inAudio)?.mimeType ?? null,
        }
      : null,
    outboundAudio: outAudio ? { packetsSent: outAudio.packetsSent ?? 0, bytesSent: outAudio.bytesSent ?? 0 } : null,
    remoteCertificate: remoteCertificate?.base64Certificate ?? null,
    candidatePair: pair
      ? {
          state: pair.state,
          localType: local?.candidateType ?? null,
          remoteType: remote?.candidateType ?? null,
          local: local ? { type: local.candidateType, address: local.address, port: local.port } : null,
          remote: remote ? { type: remote.candidateType, address: remote.address, port: remote.port } : null,
          protocol: local?.protocol ?? null,
          relayProtocol: local?.relayProtocol ?? null,
          currentRoundTripTime: pair.currentRoundTripTime ?? null,
        }
      : null,
  };
}

/** Inbound video frames decoded so far (0 if none). */
export async function framesDecoded(page, options) {
  return (await callStats(page, options))?.video?.framesDecoded ?? 0;
}

/** The inbound video codec's mimeType, e.g. "video/H264". */
export async function videoCodec(page, options) {
  return (await callStats(page, options))?.video?.mimeType ?? null;
}

/** Inbound audio samples received (needs the track on a playing <audio>; the app does that). */
export async function audioSamplesReceived(page, options) {
  return (await callStats(page, options))?.audio?.totalSamplesReceived ?? 0;
}

/** The selected candidate pair's {localType, remoteType, ...} ("host", "srflx", "relay"). */
export async function selectedCandidatePair(page, options) {
  return (await callStats(page, options))?.candidatePair ?? null;
}

/**
 * Polls callStats until predicate(stats) is truthy; returns those stats. Throws with the last
 * stats on timeout.
 */
export async function waitForStats(page, predicate, { timeout = 15_000, interval = 50, ...options } = {}) {
  const deadline = Date.now() + timeout;
  let last = null;
  for (;;) {
    last = await callStats(page, options);
    if (last && predicate(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`stats condition not met after ${timeout} ms; last stats: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** The p-th percentile (nearest rank) of `values`. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}
