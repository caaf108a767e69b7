// Benchmark (not a test): the ring as a person meets it, through TURN across the NAT test bed
// at 50 ms round trip. The phone's ring preview (docs/PROTOCOL.md "Preview while ringing")
// shows the door's video before Answer, and the answer goes into that session, so Answer ->
// first frame is moot: what a person waits for is press -> first preview frame. Prints that,
// and Answer (1.5 s after the picture, in the session) -> the door hears the phone. Needs root.
//
//   cargo build --release --workspace --bins && sudo node tests/nat/bench_turn_preview.mjs [N]
//
// (tests/nat/bench_turn.mjs answers the instant the phone rings, before any preview frame, so
// it measures the fallback of a fresh negotiation at Answer.)

process.env.DOORBELL_PROFILE ||= "release";
const { startNatSystem } = await import("./lib/natcall.mjs");
const { waitForState } = await import("../e2e/lib/browser.mjs");
const { percentile } = await import("../e2e/lib/stats.mjs");

const calls = Number(process.argv[2] ?? 20);
if (!Number.isInteger(calls) || calls < 1) {
  console.error("usage: node tests/nat/bench_turn_preview.mjs [N calls, default 20]");
  process.exit(2);
}
/** How long a person looks at the picture before tapping Answer. */
const LOOK_MS = 1500;
/** Polling the phone's getStats for the first decoded frame. */
const POLL_MS = 10;

// Runs in the page: whether a new preview connection (not `old`) decoded a frame.
async function previewFrameShown() {
  const pc = window.doorbell?.previewPc;
  if (!pc || pc === window.previousPreviewPc) return false;
  const video = [...(await pc.getStats()).values()].find((s) => s.type === "inbound-rtp" && s.kind === "video");
  return (video?.framesDecoded ?? 0) > 0;
}

const ctx = await startNatSystem({ hubTurn: "embedded", delayMs: 25 });
const preview = [];
const talk = [];
let inSession = 0;
try {
  const { page } = ctx.phone;
  for (let i = 0; i < calls; i++) {
    await page.evaluate(() => {
      window.previousPreviewPc = window.doorbell?.previewPc ?? null;
    });
    const pressedAt = Date.now();
    if ((await ctx.system.press()) !== "ok") throw new Error("press refused");
    while (!(await page.evaluate(previewFrameShown))) {
      if (Date.now() - pressedAt > 20_000) throw new Error(`call ${i + 1}: no preview frame within 20 s\n${ctx.system.logs()}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    preview.push(Date.now() - pressedAt);
    await new Promise((r) => setTimeout(r, LOOK_MS));
    const answeredAt = Date.now();
    await page.getByRole("button", { name: "Answer", exact: true }).click();
    await waitForState(page, "in-call", 15_000);
    await ctx.system.waitForStatus(
      (s) => s.state === "in_call" && s.current_call?.audio_buffers_received > 0,
      "the door to hear the phone",
      15_000,
    );
    talk.push(Date.now() - answeredAt);
    // No new offer at Answer: the call is the preview's connection.
    if (await page.evaluate(() => window.doorbell.metrics.offerAt === null)) inSession++;
    await page.getByRole("button", { name: "Hang up", exact: true }).click();
    await waitForState(page, "idle");
    await ctx.system.waitForStatus((s) => s.state === "idle", "idle after the call");
    process.stderr.write(`call ${i + 1}/${calls}: preview frame ${preview.at(-1)} ms, talk ${talk.at(-1)} ms\n`);
  }
  const fmt = (xs) => `p50 ${percentile(xs, 50).toFixed(0)} ms, p95 ${percentile(xs, 95).toFixed(0)} ms, max ${Math.max(...xs)} ms`;
  console.log(`calls: ${calls} through the embedded TURN, ${process.env.DOORBELL_PROFILE} build, door link delayed 25 ms each way`);
  console.log(`press -> first preview frame: ${fmt(preview)}`);
  console.log(`Answer (in the session) -> the door hears the phone: ${fmt(talk)}`);
  console.log(`answered in the preview session (no new negotiation): ${inSession}/${calls}`);
} finally {
  await ctx.close();
}
