// Launches Debian's Chromium as a "phone" for end-to-end tests.
//
// Debian's /usr/bin/chromium decodes H.264 (Playwright's bundled Chromium does not), so we
// drive it through playwright-core with executablePath. Flags are those checked in
// /work/shared/PLATFORM.md; every phone gets its own fresh user-data dir, hence its own
// localStorage (pairing token), like two real phones.

import { chromium } from "playwright-core";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CHROMIUM = process.env.DOORBELL_CHROMIUM || "/usr/bin/chromium";

// PLATFORM.md's flags. "--headless" comes from headless:true, "--user-data-dir" from
// launchPersistentContext.
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
];

export const PHONE_VIEWPORT = { width: 390, height: 844 };

/**
 * Starts one phone: a headless Chromium with a fresh profile and one page.
 *
 * options.name     label used in console logs ("phone A")
 * options.headless default true (set DOORBELL_HEADED=1 to watch)
 * options.log      print the page's console to stderr (default: env DOORBELL_E2E_LOG=1)
 * options.netns    run Chromium inside this network namespace (tests/nat; needs root).
 *                  Playwright drives it over a pipe, which crosses namespaces.
 * options.ignoreHTTPSErrors  accept the hub's self-signed certificate (a secure context still)
 * options.initScript         a function run in every page before the app (e.g. to wrap
 *                            RTCPeerConnection); options.initArg is its argument
 *
 * Returns { browserContext, page, consoleErrors, name, close() }. consoleErrors collects
 * console.error messages and uncaught page errors, for "no errors" assertions.
 */
/**
 * Collects `page`'s console errors and uncaught exceptions (returned array, filled as they
 * come) and, with `log`, echoes every console line to stderr as `[name type] text`. Works for
 * Playwright's and puppeteer's pages alike (Chromium and Firefox phones).
 */
export function watchConsole(page, name, log) {
  const consoleErrors = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
    if (log) process.stderr.write(`[${name} ${msg.type()}] ${msg.text()}\n`);
  });
  page.on("pageerror", (err) => {
    consoleErrors.push(`pageerror: ${err.message}`);
    if (log) process.stderr.write(`[${name} pageerror] ${err.stack || err.message}\n`);
  });
  return consoleErrors;
}

export async function launchPhone(options = {}) {
  const name = options.name ?? "phone";
  const userDataDir = await mkdtemp(join(tmpdir(), "doorbell-phone-"));
  const headless = options.headless ?? process.env.DOORBELL_HEADED !== "1";
  const log = options.log ?? process.env.DOORBELL_E2E_LOG === "1";
  let executablePath = CHROMIUM;
  if (options.netns) {
    // Outside the profile directory: Chromium owns that one.
    executablePath = `${userDataDir}.sh`;
    await writeFile(executablePath, `#!/bin/sh\nexec ip netns exec '${options.netns}' '${CHROMIUM}' "$@"\n`);
    await chmod(executablePath, 0o700);
  }

  const browserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    ignoreHTTPSErrors: options.ignoreHTTPSErrors ?? false,
    headless,
    args: CHROMIUM_ARGS,
    // Playwright mutes audio in headless mode; PLATFORM.md's audio facts were observed unmuted.
    ignoreDefaultArgs: ["--mute-audio"],
    viewport: PHONE_VIEWPORT,
    deviceScaleFactor: 2,
    isMobile: false, // true would need a touch-emulated UA; the app does not care
    hasTouch: true,
    baseURL: options.baseURL,
    permissions: ["microphone", "camera"],
    timeout: 30_000,
  });
  // Grant for every origin the tests use (the hub's http://127.0.0.1:port as well).
  await browserContext.grantPermissions(["microphone", "camera"]);

  if (options.initScript) await browserContext.addInitScript(options.initScript, options.initArg);
  const page = browserContext.pages()[0] ?? (await browserContext.newPage());
  const consoleErrors = watchConsole(page, name, log);

  let closed = false;
  async function close() {
    if (closed) return;
    closed = true;
    await browserContext.close().catch(() => {});
    await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
    if (options.netns) await rm(executablePath, { force: true }).catch(() => {});
  }

  return { name, browserContext, page, consoleErrors, userDataDir, close };
}

/** Waits until document.body.dataset.state is `state` (or one of `state` if an array). */
export async function waitForState(page, state, timeout = 15_000) {
  const wanted = Array.isArray(state) ? state : [state];
  try {
    await page.waitForFunction((w) => w.includes(document.body?.dataset.state), wanted, { timeout, polling: 20 });
  } catch (e) {
    const now = await page.evaluate(() => document.body?.dataset.state).catch(() => "?");
    // "connecting-hub" is also index.html's own value before the app's script has run: say
    // whether it ran, so a page whose script never started is not mistaken for a slow hub.
    const where = await page
      .evaluate(() => `${location.href.split("#")[0]}, document ${document.readyState}, app ${window.doorbell ? "running" : "not started"}`)
      .catch(() => "?");
    throw new Error(`timed out after ${timeout} ms waiting for state ${wanted.join("|")}; state is ${now} (${where})`, { cause: e });
  }
}

/**
 * Opens a pairing link on a phone and says yes to "Pair this phone with Front door?" (the app
 * redeems nothing before). Returns the question as shown.
 * @param {import("playwright-core").Page} page
 * @param {string} link
 */
export async function openPairingLink(page, link, timeout = 15_000) {
  await page.goto(link);
  await waitForState(page, "confirm-pair", timeout);
  const question = await page.locator("#confirm-pair-title").innerText();
  await page.click("#btn-pair-yes", { timeout });
  return question;
}
