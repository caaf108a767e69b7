// One doorbell system inside a NAT test bed: the hub (and TURN) in the public namespace, the
// door and a Chromium phone each in their own namespace; and one call through it. Shared by
// the NAT tests and the TURN benchmark.

import { launchPhone, openPairingLink, waitForState } from "../../e2e/lib/browser.mjs";
import { waitForStats } from "../../e2e/lib/stats.mjs";
import { startSystem } from "../../e2e/lib/system.mjs";
import { PUBLIC_IP, createTestBed, sh } from "./netns.mjs";
import { COTURN_PORT, embeddedTurnConfig, externalTurnConfig, makeSecret, restCredentials, startCoturn } from "./turn.mjs";

// Runs in the phone's page before the app: adds TURN servers the hub did not hand out and/or
// forces an ICE transport policy, by wrapping the RTCPeerConnection constructor the app calls.
function phoneIceOverride({ policy, iceServers }) {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config = {}, ...rest) {
      const iceTransportPolicy = policy ?? config.iceTransportPolicy;
      super({ ...config, iceTransportPolicy, iceServers: [...(config.iceServers ?? []), ...iceServers] }, ...rest);
    }
  };
}

/**
 * Builds a test bed and starts everything in it; the phone is paired and idle.
 *
 * options.topology   "nat" (default) or "flat"
 * options.hubTurn    null (no [turn] table), "embedded", or "external" (coturn, started here)
 * options.coturn     start coturn even without hubTurn "external" (default: only with it)
 * options.delayMs    one-way latency of the door router's WAN link (door-phone RTT += 2x)
 * options.phoneIce   { policy: "relay", turnFromCoturn: true }: override the phone's ICE config
 * options.hubArgs    more `doorbell-hub serve` arguments (e.g. ["--stun", url])
 * options.doorEnv    more environment for doorbelld (e.g. DOORBELL__MEDIA__CONGESTION_CONTROL)
 *
 * Returns { bed, system, phone, coturn, secret, close() }; close() always tears everything
 * down. secret: { secret, file } shared by the hub and coturn, when there is TURN.
 */
export async function startNatSystem(options = {}) {
  const { topology = "nat", hubTurn = null, delayMs = 0, phoneIce = null, hubArgs = [] } = options;
  const useCoturn = options.coturn ?? hubTurn === "external";
  const bed = await createTestBed({ topology, doorWanDelayMs: delayMs });
  const parts = { bed, system: null, phone: null, coturn: null, secret: null };
  const close = async () => {
    // Each step runs even if an earlier one fails; the namespaces go last.
    const steps = [
      () => parts.phone?.close(),
      () => parts.system?.stop(),
      () => parts.coturn?.stop(),
      () => parts.secret?.remove(),
      () => bed.destroy(),
    ];
    for (const step of steps) await Promise.resolve().then(step).catch((e) => process.stderr.write(`teardown: ${e.message}\n`));
  };
  try {
    if (hubTurn || useCoturn) parts.secret = makeSecret();
    if (useCoturn) parts.coturn = await startCoturn(bed.ns.public, parts.secret.secret);
    const hubConfig =
      hubTurn === "embedded" ? embeddedTurnConfig(parts.secret.file)
      : hubTurn === "external" ? externalTurnConfig(parts.secret.file)
      : hubTurn === null ? null
      : (() => { throw new Error(`unknown hubTurn ${hubTurn}`); })();
    parts.system = await startSystem({
      netns: { hub: bed.ns.public, door: bed.ns.door },
      hubListen: `${PUBLIC_IP}:0`,
      hubConfig,
      hubArgs,
      doorEnv: {
        // The door's only interface (besides loopback) is its LAN.
        DOORBELL__MEDIA__ICE_LOCAL_ADDRESSES: bed.addr.door,
        ...(process.env.DEBUG ? {} : { RUST_LOG: "warn,doorbelld=info" }),
        ...options.doorEnv,
      },
    });
    let initArg = null;
    if (phoneIce) {
      const iceServers = [];
      if (phoneIce.turnFromCoturn) {
        const creds = restCredentials(parts.secret.secret, "phone-test");
        iceServers.push({ urls: [`turn:${PUBLIC_IP}:${COTURN_PORT}?transport=udp`], ...creds });
      }
      initArg = { policy: phoneIce.policy ?? null, iceServers };
    }
    parts.phone = await launchPhone({
      name: "phone",
      netns: bed.ns.phone,
      ignoreHTTPSErrors: true, // the hub's self-signed certificate
      initScript: initArg ? phoneIceOverride : undefined,
      initArg,
    });
    await openPairingLink(parts.phone.page, await parts.system.pairingUrl());
    await waitForState(parts.phone.page, "idle", 20_000);
    return { ...parts, close };
  } catch (e) {
    const logs = [parts.system?.logs(), parts.coturn && `--- coturn ---\n${parts.coturn.logs()}`].filter(Boolean).join("\n");
    await close();
    throw logs ? new Error(`${e.message}\n${logs}`, { cause: e }) : e;
  }
}

/**
 * One call: press, ring, Answer, wait until `frames` video frames are decoded, audio arrives at
 * the phone and the phone's microphone at the door; then hang up and wait for both sides to be
 * idle. Returns { stats, metrics, iceServers, candidateTypes }: the phone's stats in the call,
 * window.doorbell.metrics, the ICE servers its peer connection was configured with, and the
 * types of the phone's own candidates and of the door's ({ local: [...], remote: [...] }).
 */
export async function natCall({ system, phone }, { frames = 15, timeout = 30_000 } = {}) {
  const { page } = phone;
  const before = await system.status();
  const pressed = await system.press();
  if (pressed !== "ok") throw new Error(`press: ${pressed}`);
  await waitForState(page, "ringing", 15_000);
  await page.getByRole("button", { name: "Answer", exact: true }).click();
  let stats;
  try {
    await waitForState(page, "in-call", timeout);
    stats = await waitForStats(
      page,
      (s) => s.connectionState === "connected" && s.video?.framesDecoded >= frames && s.audio?.totalSamplesReceived > 0,
      { timeout },
    );
    await system.waitForStatus(
      (s) => s.state === "in_call" && s.current_call?.audio_buffers_received > 0,
      "in_call with audio from the phone",
      timeout,
    );
  } catch (e) {
    throw new Error(`${e.message}\n${system.logs()}`, { cause: e });
  }
  const metrics = await page.evaluate(() => ({ ...window.doorbell.metrics }));
  const { iceServers, candidateTypes } = await page.evaluate(async () => {
    const pc = window.doorbell.pc;
    const all = [...(await pc.getStats()).values()];
    const types = (kind) => [...new Set(all.filter((s) => s.type === kind).map((s) => s.candidateType))].sort();
    return {
      iceServers: pc.getConfiguration().iceServers ?? [],
      candidateTypes: { local: types("local-candidate"), remote: types("remote-candidate") },
    };
  });
  await page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(page, "idle");
  await system.waitForStatus((s) => s.state === "idle" && s.calls_ended === before.calls_ended + 1, "idle after the call");
  return { stats, metrics, iceServers, candidateTypes };
}

/** The relay candidate of a selected pair (the phone's own or the door's), or null. */
export function relayCandidate(pair) {
  return [pair?.local, pair?.remote].find((c) => c?.type === "relay") ?? null;
}
