// Benchmark (not a test): calls under network conditions across the NAT test bed, each with the
// adaptive sender (media.congestion_control = "gcc") and, in the same run, the fixed-bitrate
// sender ("off", the behaviour before congestion control); one table per scenario, side by
// side. The phone's getStats is read each second and differenced (tests/nat/lib/callstats.mjs);
// the door's estimate comes from `doorbelld status`. Needs root.
//
//   cargo build --release --workspace --bins && sudo node tests/nat/bench_network.mjs [SECONDS] [--only NAME]
//
// SECONDS: measured length of each call (default 40; the step scenario takes 3x). The door's
// test camera sends "snow", an incompressible picture, so each sender really sends its bitrate.
// Scenario names: cap1m, step, loss2, loss5, cap500k.

import { performance } from "node:perf_hooks";

process.env.DOORBELL_PROFILE ||= "release";
const { startNatSystem } = await import("./lib/natcall.mjs");
const { capDoorUplink, loseDoorUplink } = await import("./lib/shape.mjs");
const { answerCall, firstSecond, hangUp, sampleCall, summarize } = await import("./lib/callstats.mjs");

const args = process.argv.slice(2);
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? args.splice(onlyAt, 2)[1] : null;
const SECONDS = Number(args[0] ?? 40);
if (!Number.isInteger(SECONDS) || SECONDS < 10) {
  console.error("usage: node tests/nat/bench_network.mjs [SECONDS >= 10, default 40] [--only NAME]");
  process.exit(2);
}
/** The "first 5 s": start-up, left out of the figures. */
const SETTLE = 5;

/** Each scenario: bed delay (one way), conditions before the call, steps during it. */
const SCENARIOS = [
  {
    name: "cap1m",
    title: "1 Mbit/s cap, 40 ms RTT",
    delayMs: 20,
    before: (bed) => capDoorUplink(bed, 1000),
    targets: "goodput 0.75-0.95 Mbit/s, 0 freezes after 5 s, mean jitter-buffer delay < 100 ms",
  },
  {
    name: "step",
    title: "step 3 -> 1 -> 3 Mbit/s, 40 ms RTT (a third of the call each)",
    delayMs: 20,
    seconds: 3 * SECONDS,
    // The adaptive sender may use up to 4 Mbit/s here, or 90 % of 3 Mbit/s could not be reached.
    doorEnv: { DOORBELL__MEDIA__VIDEO_MAX_KBPS: "4000" },
    before: (bed) => capDoorUplink(bed, 3000),
    steps: (bed) => ({ [SECONDS]: () => capDoorUplink(bed, 1000), [2 * SECONDS]: () => capDoorUplink(bed, 3000) }),
    targets: "3 -> 1: estimate <= cap within 2 s, <= 1 freeze; 1 -> 3: 90 % of the cap within 15 s",
  },
  {
    name: "loss2",
    title: "2 % random loss, 60 ms RTT",
    delayMs: 30,
    before: (bed) => loseDoorUplink(bed, 2),
    targets: "<= 1 freeze per minute, concealed audio <= 2 %",
  },
  {
    name: "loss5",
    title: "5 % random loss, 60 ms RTT",
    delayMs: 30,
    before: (bed) => loseDoorUplink(bed, 5),
    targets: "<= 3 freezes per minute, concealed audio <= 2 %",
  },
  {
    name: "cap500k",
    title: "500 kbit/s cap, 40 ms RTT",
    delayMs: 20,
    before: (bed) => capDoorUplink(bed, 500),
    targets: "(no figure in the issue: compare freezes and delay)",
  },
];
const SENDERS = [
  ["adaptive", "gcc"],
  ["fixed", "off"],
];

async function run(scenario, congestion) {
  const seconds = scenario.seconds ?? SECONDS;
  const ctx = await startNatSystem({
    hubTurn: "embedded",
    delayMs: scenario.delayMs,
    doorEnv: {
      DOORBELL__MEDIA__CAMERA: "test",
      DOORBELL__MEDIA__TEST_PATTERN: "snow",
      DOORBELL__MEDIA__CONGESTION_CONTROL: congestion,
      ...scenario.doorEnv,
    },
  });
  try {
    await scenario.before(ctx.bed);
    // Audio is enough to start measuring: a sender above the cap may never get a frame through.
    await answerCall(ctx, { video: false });
    const rows = await sampleCall(ctx, seconds, scenario.steps?.(ctx.bed) ?? {});
    await hangUp(ctx);
    return rows;
  } finally {
    await ctx.close();
  }
}

const n = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v) ? "-" : Number(v).toFixed(digits));

/** Rows of the table: label and how to print one sender's figure. */
const LINES = [
  ["goodput after 5 s (Mbit/s)", (s) => n(s.goodputKbps / 1000, 2)],
  ["frames/s", (s) => n(s.fps, 1)],
  ["seconds without a frame", (s) => n(s.stalled)],
  ["freezes after 5 s (ended ones)", (s) => n(s.freezes)],
  ["freezes per minute", (s) => n(s.freezesPerMin, 1)],
  ["frozen (ms)", (s) => n(s.freezeMs)],
  ["frames dropped", (s) => n(s.dropped)],
  ["mean jitter-buffer delay (ms)", (s) => n(s.jitterMs)],
  ["mean QP", (s) => n(s.qp, 1)],
  ["NACKs sent", (s) => n(s.nacks)],
  ["PLIs sent", (s) => n(s.plis)],
  ["packets retransmitted", (s) => n(s.retransmitted)],
  ["packets lost", (s) => n(s.lost)],
  ["concealed audio (%)", (s) => n(s.concealedPct, 2)],
  ["door's mean estimate (kbit/s)", (s) => n(s.estimateKbps)],
];

/** The step scenario's own figures, from one sender's rows. */
function stepFigures(rows) {
  const down = SECONDS; // index of the first row at 1 Mbit/s
  const up = 2 * SECONDS;
  const estimateUnder = firstSecond(rows, (r) => r.estimateKbps !== null && r.estimateKbps > 0 && r.estimateKbps <= 1000, down);
  const reached = firstSecond(rows, (r) => r.kbps >= 2700, up);
  const low = summarize(rows, { from: down, to: up });
  return {
    "3->1: s until estimate <= cap": estimateUnder === null ? "never" : String(estimateUnder - down),
    "3->1: freezes at 1 Mbit/s": n(low.freezes),
    "3->1: frozen at 1 Mbit/s (ms)": n(low.freezeMs),
    "1->3: s until 90 % of the cap": reached === null ? "never" : String(reached - up),
  };
}

function printTable(scenario, results) {
  const names = results.map(([name]) => name);
  const width = 32;
  const col = 12;
  const line = (label, values) => console.log(label.padEnd(width) + values.map((v) => String(v).padStart(col)).join(""));
  console.log(`\n## ${scenario.title}   [${scenario.name}]`);
  console.log(`targets: ${scenario.targets}`);
  line("", names);
  const summaries = results.map(([, rows]) => summarize(rows, { from: SETTLE }));
  for (const [label, figure] of LINES) line(label, summaries.map(figure));
  if (scenario.name === "step") {
    const figures = results.map(([, rows]) => stepFigures(rows));
    for (const key of Object.keys(figures[0])) line(key, figures.map((f) => f[key]));
  }
  const adaptive = results.find(([name]) => name === "adaptive")?.[1];
  if (adaptive) {
    console.log(`adaptive: door's estimate each second (kbit/s): ${adaptive.map((r) => n(r.estimateKbps)).join(" ")}`);
    console.log(`adaptive: received each second (kbit/s):       ${adaptive.map((r) => n(r.kbps)).join(" ")}`);
  }
  const fixed = results.find(([name]) => name === "fixed")?.[1];
  if (fixed) console.log(`fixed:    received each second (kbit/s):       ${fixed.map((r) => n(r.kbps)).join(" ")}`);
}

const started = performance.now();
const chosen = SCENARIOS.filter((s) => !only || s.name === only);
if (!chosen.length) {
  console.error(`no scenario named ${only}; names: ${SCENARIOS.map((s) => s.name).join(", ")}`);
  process.exit(2);
}
console.log(`# Network benchmark: ${process.env.DOORBELL_PROFILE} build, 640x480@30 "snow", ${SECONDS} s per call, figures after the first ${SETTLE} s`);
for (const scenario of chosen) {
  const results = [];
  for (const [name, congestion] of SENDERS) {
    process.stderr.write(`${scenario.name}: ${name} sender...\n`);
    results.push([name, await run(scenario, congestion)]);
  }
  printTable(scenario, results);
}
process.stderr.write(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
