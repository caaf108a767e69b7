// Calls across NAT, in a test bed of network namespaces (tests/nat/lib/netns.mjs; needs root):
// the hub and TURN in a "public" namespace, the door (doorbelld) behind one symmetric NAT, the
// phone (Debian's Chromium) behind another, no route between the two LANs.
//
//   sudo node --test --test-concurrency=1 tests/nat/      (after `cargo build --workspace --bins`)
//
// The TURN tests configure the hub's `[turn]` table (`doorbell-hub serve --config`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";

import { waitForOutput } from "../e2e/lib/system.mjs";
import { createTestBed, nsPrefix, PUBLIC_IP, sh } from "./lib/netns.mjs";
import { natCall, relayCandidate, startNatSystem } from "./lib/natcall.mjs";
import { COTURN_PORT, COTURN_RELAY_PORTS, EMBEDDED_RELAY_PORTS } from "./lib/turn.mjs";

/** The hub hands out coturn only as a STUN server (the hub of this branch has no [turn]). */
const COTURN_AS_STUN = ["--stun", `stun:${PUBLIC_IP}:${COTURN_PORT}`];
/** One-way latency of the door's WAN link: the door-phone round trip through the relay is 50 ms. */
const DELAY_MS = 25;

/** Runs `body(ctx)` with a system in a fresh test bed, and always tears the bed down. */
async function withSystem(options, body) {
  const ctx = await startNatSystem(options);
  try {
    return await body(ctx);
  } finally {
    await ctx.close();
  }
}

function assertInRange(port, [low, high], what) {
  assert.ok(port >= low && port <= high, `${what}: port ${port} is not in ${low}-${high}`);
}

/** A relayed pair whose relay candidate is on the public address, in `ports`. */
function assertRelayed(pair, ports, server) {
  const relay = relayCandidate(pair);
  assert.ok(relay, `the selected pair is not relayed: ${JSON.stringify(pair)}`);
  assert.equal(relay.address, PUBLIC_IP, JSON.stringify(pair));
  assertInRange(relay.port, ports, `relay candidate of ${server}`);
}

/**
 * The phone got per-call TURN REST credentials from the hub for a TURN server on the public
 * address (`port`, if given): username "expiry:id" with the expiry ahead, and a credential that
 * is base64(HMAC-SHA1(secret, username)) with the bed's shared secret.
 */
function assertTurnCredentials(iceServers, secret, port) {
  const turn = iceServers.find((s) => [s.urls].flat().some((u) => u.startsWith(`turn:${PUBLIC_IP}:`)));
  assert.ok(turn, `no turn:${PUBLIC_IP}:… among the phone's ICE servers: ${JSON.stringify(iceServers)}`);
  if (port) assert.ok([turn.urls].flat().some((u) => u.startsWith(`turn:${PUBLIC_IP}:${port}`)), JSON.stringify(turn));
  const [, expiry] = turn.username.match(/^(\d+):\S+$/) ?? [];
  assert.ok(expiry, `username ${turn.username} is not "expiry:id"`);
  assert.ok(Number(expiry) > Date.now() / 1000, `expired credentials: ${turn.username}`);
  assert.equal(turn.credential, createHmac("sha1", secret).update(turn.username).digest("base64"));
}

/** Both sides used their TURN credentials: each gathered a relay candidate. */
function assertBothRelay(candidateTypes) {
  assert.ok(candidateTypes.local.includes("relay"), `the phone gathered no relay candidate: ${JSON.stringify(candidateTypes)}`);
  assert.ok(
    candidateTypes.remote.includes("relay"),
    `the door sent no relay candidate (its ice_servers in "answered"?): ${JSON.stringify(candidateTypes)}`,
  );
}

async function ourNamespaces(bed) {
  const tag = bed.ns.public.replace(/pub$/, ""); // "dbnat-<pid>-<n>-"
  return (await sh("ip", ["netns", "list"])).split("\n").filter((l) => l.startsWith(tag));
}

test("the bed: no route between the door's and the phone's LANs, both NATs filter, all gone after", async () => {
  const bed = await createTestBed();
  let listener;
  try {
    // A listener on the door's LAN, to tell "unreachable" from "nothing listens".
    const [ip, ...pre] = nsPrefix(bed.ns.door);
    listener = spawn(ip, [...pre, process.execPath, "-e",
      `const s = require("node:net").createServer((c) => c.end()); s.listen(0, () => console.log("port", s.address().port));`,
    ], { stdio: ["ignore", "pipe", "inherit"] });
    const [, port] = await waitForOutput(listener.stdout, /port (\d+)/, 10_000, "the door's test listener");

    assert.equal(await bed.tcpProbe(bed.ns.door, bed.addr.door, port), "connected", "the listener works");
    // The phone cannot reach the door's host address, nor the door the phone's.
    assert.equal(await bed.tcpProbe(bed.ns.phone, bed.addr.door, port), "unreachable");
    assert.equal(await bed.tcpProbe(bed.ns.door, bed.addr.phone, port), "unreachable");
    // Unsolicited traffic to the door's NAT stops at its router (no port forwarding).
    assert.equal(await bed.tcpProbe(bed.ns.phone, bed.addr.doorWan, port), "refused");
    // Both reach the public side (where nothing listens on this port: refused, not unreachable).
    assert.equal(await bed.tcpProbe(bed.ns.door, bed.addr.public, port), "refused");
    assert.equal(await bed.tcpProbe(bed.ns.phone, bed.addr.public, port), "refused");
  } finally {
    listener?.kill();
    await bed.destroy();
  }
  assert.deepEqual(await ourNamespaces(bed), [], "destroy() removes every namespace of the bed");
});

test("flat network, no TURN: the call takes a direct host pair", async () => {
  await withSystem({ topology: "flat" }, async (ctx) => {
    const { stats } = await natCall(ctx);
    const pair = stats.candidatePair;
    assert.equal(pair.localType, "host", JSON.stringify(pair));
    assert.equal(pair.local.address, ctx.bed.addr.phone);
    assert.ok(["host", "prflx"].includes(pair.remoteType), JSON.stringify(pair));
    assert.deepEqual(ctx.phone.consoleErrors, []);
  });
});

test("two symmetric NATs, STUN only: no direct path, the call fails at the door", async () => {
  // Both sides learn server-reflexive candidates from STUN (coturn), yet no pair can connect:
  // this is why the calls below need a relay, and why their "relay" is not a mere preference.
  await withSystem({ coturn: true, hubArgs: COTURN_AS_STUN }, async ({ system, phone }) => {
    const before = await system.status();
    assert.equal(await system.press(), "ok");
    await phone.page.getByRole("button", { name: "Answer", exact: true }).click({ timeout: 15_000 });
    const after = await system.waitForStatus(
      (s) => s.state === "idle" && s.calls_ended === before.calls_ended + 1,
      "the call to end",
      40_000,
    );
    assert.equal(after.last_call.outcome, "failed", JSON.stringify(after.last_call));
    assert.equal(after.last_call.stats.audio_buffers_received, 0);
  });
});

test("bed check: a call through coturn at 50 ms RTT, TURN credentials on the phone only", async () => {
  // Exercises the relay path, coturn and the delay without the hub's [turn]: the phone gets
  // coturn credentials from the test (computed with the shared secret), the door only STUN.
  await withSystem(
    { coturn: true, hubArgs: COTURN_AS_STUN, phoneIce: { turnFromCoturn: true }, delayMs: DELAY_MS },
    async (ctx) => {
      const { stats, iceServers } = await natCall(ctx);
      const pair = stats.candidatePair;
      assert.equal(pair.localType, "relay", JSON.stringify(pair));
      assertRelayed(pair, COTURN_RELAY_PORTS, "coturn");
      assertTurnCredentials(iceServers, ctx.secret.secret, COTURN_PORT);
      assert.ok(pair.currentRoundTripTime >= 0.045, `RTT ${pair.currentRoundTripTime} s, expected >= 0.045 s`);
    },
  );
});

// ---- TURN: the hub configures TURN and hands out per-call credentials.

test("embedded TURN: a call across two NATs is relayed by the hub's TURN", async () => {
  await withSystem({ hubTurn: "embedded" }, async (ctx) => {
    const { stats, iceServers, candidateTypes } = await natCall(ctx);
    assertRelayed(stats.candidatePair, EMBEDDED_RELAY_PORTS, "the embedded TURN");
    assertTurnCredentials(iceServers, ctx.secret.secret);
    assertBothRelay(candidateTypes);
    assert.deepEqual(ctx.phone.consoleErrors, []);
  });
});

test("coturn (external TURN): a call across two NATs is relayed by coturn", async () => {
  await withSystem({ hubTurn: "external" }, async (ctx) => {
    const { stats, iceServers, candidateTypes } = await natCall(ctx);
    assertRelayed(stats.candidatePair, COTURN_RELAY_PORTS, "coturn");
    assertTurnCredentials(iceServers, ctx.secret.secret, COTURN_PORT);
    assertBothRelay(candidateTypes);
    assert.deepEqual(ctx.phone.consoleErrors, []);
  });
});

test("embedded TURN, phone with iceTransportPolicy relay: the phone's own candidate is a relay", async () => {
  await withSystem({ hubTurn: "embedded", phoneIce: { policy: "relay" } }, async (ctx) => {
    const { stats } = await natCall(ctx);
    assert.equal(stats.candidatePair.localType, "relay", JSON.stringify(stats.candidatePair));
    assertRelayed(stats.candidatePair, EMBEDDED_RELAY_PORTS, "the embedded TURN");
  });
});

test("embedded TURN at 50 ms RTT: relayed, and the pair's RTT shows the delay", async () => {
  await withSystem({ hubTurn: "embedded", delayMs: DELAY_MS }, async (ctx) => {
    const { stats } = await natCall(ctx);
    const pair = stats.candidatePair;
    assertRelayed(pair, EMBEDDED_RELAY_PORTS, "the embedded TURN");
    assert.ok(pair.currentRoundTripTime >= 0.045, `RTT ${pair.currentRoundTripTime} s, expected >= 0.045 s`);
  });
});

test("flat network with the embedded TURN offered: the call still takes a direct pair", async () => {
  await withSystem({ topology: "flat", hubTurn: "embedded" }, async (ctx) => {
    const { stats, iceServers, candidateTypes } = await natCall(ctx);
    // TURN was on offer and the door allocated a relay; ICE preferred the direct path. (Chromium
    // may not have gathered its own relay candidate yet: a working host pair comes first.)
    assertTurnCredentials(iceServers, ctx.secret.secret);
    assert.ok(candidateTypes.remote.includes("relay"), `the door sent no relay candidate: ${JSON.stringify(candidateTypes)}`);
    const pair = stats.candidatePair;
    assert.equal(relayCandidate(pair), null, `relayed on a flat network: ${JSON.stringify(pair)}`);
    assert.ok(["host", "srflx", "prflx"].includes(pair.localType), JSON.stringify(pair));
    assert.ok(["host", "srflx", "prflx"].includes(pair.remoteType), JSON.stringify(pair));
  });
});
