// A phone paired with the door's own link (`doorbelld --demo` prints it; `doorbelld pair`
// makes more) pins the door's DTLS fingerprint and still gets its calls: the real door's offer
// carries exactly that certificate. (trust.test.mjs shows the refusal of another one.)
//
// Needs the debug binaries: `cargo build --workspace --bins`.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { waitForStats } from "./lib/stats.mjs";
import { DOOR_BIN, capture, waitForOutput } from "./lib/system.mjs";

const run = promisify(execFile);
const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("a phone that pinned the door from its own link answers the door's call", async () => {
  const dir = mkdtempSync(join(tmpdir(), "doorbell-pinned-"));
  const env = {
    ...process.env,
    RUST_LOG: "info",
    DOORBELL__STATE_DIR: join(dir, "state"),
    DOORBELL__MEDIA__CAMERA: "test",
    DOORBELL__MEDIA__MICROPHONE: "test",
    DOORBELL__MEDIA__SPEAKER: "none",
    DOORBELL__MEDIA__ICE_LOCAL_ADDRESSES: "127.0.0.1",
    DOORBELL__BUTTON__STDIN: "false",
    DOORBELL__TURN__MODE: "off",
  };
  const door = spawn(DOOR_BIN, ["--demo", "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"], env });
  const log = capture(door, "door");
  cleanups.push(async () => {
    if (door.exitCode === null && door.signalCode === null) door.kill("SIGTERM");
    await new Promise((r) => (door.exitCode !== null ? r() : door.on("exit", r)));
    rmSync(dir, { recursive: true, force: true });
  });
  const [, link] = await waitForOutput(door.stdout, /Phone: (\S+)/, 60_000, "the demo's pairing link").catch((e) => {
    throw new Error(`${e.message}\n${log()}`);
  });
  // A code the door made: its id, the code id, the secret (docs/PROTOCOL.md "Pairing").
  assert.match(link, /#pair=d-[0-9a-f]+\.[0-9a-f]{16}\.[0-9a-f]{32}&door=[^&]+&fp=([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  const fp = link.split("&fp=")[1];

  const phone = await launchPhone({ name: "pinned" });
  cleanups.push(() => phone.close());
  const { page } = phone;
  assert.match(await openPairingLink(page, link), /^Pair this phone with .+\?$/);
  await waitForState(page, "idle", 30_000);
  const pins = await page.evaluate(() => JSON.parse(localStorage.getItem("doorbell.pins") ?? "{}"));
  assert.deepEqual(Object.values(pins), [fp]);

  const { stdout } = await run(DOOR_BIN, ["press"], { env, timeout: 30_000 });
  assert.equal(stdout.trim(), "ok");
  await waitForState(page, "ringing", 20_000);
  await page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(page, "in-call", 30_000).catch((e) => {
    throw new Error(`${e.message}\n${log()}`);
  });
  await waitForStats(page, (s) => s.video?.framesDecoded > 10, { timeout: 20_000 });
  await page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(page, "idle");
});
