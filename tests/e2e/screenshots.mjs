// Regenerates the README's screenshots (docs/screenshot-ringing.png, docs/screenshot-in-call.png)
// from a real call: real hub, real doorbelld with the test pattern, Chromium at phone size.
//
//   cargo build --workspace --bins && node tests/e2e/screenshots.mjs

import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { waitForStats } from "./lib/stats.mjs";
import { startSystem } from "./lib/system.mjs";

const DOCS = resolve(dirname(fileURLToPath(import.meta.url)), "../../docs");

const system = await startSystem();
const phone = await launchPhone({ name: "screenshots" });
try {
  const { page } = phone;
  await openPairingLink(page, await system.pairingUrl());
  await waitForState(page, "idle");
  await system.press();
  await waitForState(page, "ringing");
  await page.screenshot({ path: join(DOCS, "screenshot-ringing.png") });

  await page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(page, "in-call");
  await waitForStats(page, (s) => s.video?.framesDecoded > 60);
  // Let the call timer show a non-zero time.
  await page.waitForFunction(() => document.getElementById("call-timer")?.textContent !== "00:00");
  await page.screenshot({ path: join(DOCS, "screenshot-in-call.png") });
  await page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(page, "idle");
  console.log(`wrote ${DOCS}/screenshot-ringing.png and screenshot-in-call.png`);
} finally {
  await phone.close();
  await system.stop();
}
