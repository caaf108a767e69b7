// Launches Debian's Firefox ESR as a second kind of phone for end-to-end tests.
//
// Playwright cannot drive a stock Firefox (it needs its own patched build); puppeteer-core
// drives it over WebDriver BiDi. Debian's Firefox has no H.264 here (its OpenH264 plugin is
// downloaded at run time, which cannot happen offline), so it is the phone that lacks H.264.
// The page object is Puppeteer's, not Playwright's: the helpers below are the few the tests
// need, with the same meaning as lib/browser.mjs's.

import puppeteer from "puppeteer-core";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { watchConsole } from "./browser.mjs";

export const FIREFOX = process.env.DOORBELL_FIREFOX || "/usr/bin/firefox-esr";

/** Preferences for a headless phone: fake camera and microphone, no prompts, loopback ICE. */
export const FIREFOX_PREFS = {
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "media.autoplay.default": 0,
  "media.autoplay.blocking_policy": 0,
  "media.peerconnection.ice.loopback": true,
  // Real host addresses, not mDNS names (the door resolves no .local names).
  "media.peerconnection.ice.obfuscate_host_addresses": false,
  // Offline: no update checks, telemetry or captive-portal probes.
  "app.update.enabled": false,
  "network.captive-portal-service.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
};

/**
 * Starts one Firefox phone with a fresh profile and one page.
 * Returns { name, browser, page, consoleErrors, close() }.
 */
export async function launchFirefoxPhone(options = {}) {
  const name = options.name ?? "firefox";
  const log = options.log ?? process.env.DOORBELL_E2E_LOG === "1";
  const userDataDir = await mkdtemp(join(tmpdir(), "doorbell-firefox-"));
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: process.env.DOORBELL_HEADED !== "1",
    userDataDir,
    extraPrefsFirefox: FIREFOX_PREFS,
    timeout: 60_000,
  });
  const page = (await browser.pages())[0] ?? (await browser.newPage());
  const consoleErrors = watchConsole(page, name, log);
  let closed = false;
  async function close() {
    if (closed) return;
    closed = true;
    await browser.close().catch(() => {});
    await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
  }
  return { name, browser, page, consoleErrors, close };
}

/** Waits until document.body.dataset.state is `state` (or one of them), as lib/browser.mjs. */
export async function waitForFirefoxState(page, state, timeout = 15_000) {
  const wanted = Array.isArray(state) ? state : [state];
  try {
    await page.waitForFunction((w) => w.includes(document.body?.dataset.state), { timeout, polling: 50 }, wanted);
  } catch (e) {
    const now = await page.evaluate(() => document.body?.dataset.state).catch(() => "?");
    throw new Error(`timed out after ${timeout} ms waiting for state ${wanted.join("|")}; state is ${now}`, { cause: e });
  }
}

/** Opens a pairing link and says yes to "Pair this phone with …?". */
export async function pairFirefox(page, link, timeout = 15_000) {
  await page.goto(link);
  await waitForFirefoxState(page, "confirm-pair", timeout);
  await page.click("#btn-pair-yes");
  await waitForFirefoxState(page, "idle", timeout);
}

/** Clicks `selector` once it is enabled (Unlock waits for the data channel). */
export async function clickWhenEnabled(page, selector, timeout = 20_000) {
  await page.waitForFunction((s) => document.querySelector(s)?.disabled === false, { timeout, polling: 50 }, selector);
  await page.click(selector);
}
