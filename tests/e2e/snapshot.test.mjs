// The visitor's snapshot end to end: a real `doorbell-hub`, a real `doorbelld` with its test
// pattern camera, and Chromium as the phone. A press shows the snapshot on the ringing screen
// (a decoded image, naturalWidth > 0), and the history lists the ring with its thumbnail.
//
// Needs the debug binaries: `cargo build --workspace --bins` (scripts/test.sh does it).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { launchPhone, openPairingLink, waitForState } from "./lib/browser.mjs";
import { startSystem } from "./lib/system.mjs";
import { until } from "./lib/worker.mjs";

let system;
let phone;

before(async () => {
  system = await startSystem();
  phone = await launchPhone({ name: "snapshot" });
  await openPairingLink(phone.page, await system.pairingUrl());
  await waitForState(phone.page, "idle");
});

after(async () => {
  await phone?.close();
  const exit = await system?.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, system?.logs());
});

/** Waits until `selector` is an <img> showing a decoded picture; returns its size. */
async function decodedImage(page, selector, what) {
  const handle = await page
    .waitForFunction(
      (sel) => {
        const img = document.querySelector(sel);
        return img && !img.hidden && img.complete && img.naturalWidth > 0
          ? { width: img.naturalWidth, height: img.naturalHeight, src: img.getAttribute("src") }
          : null;
      },
      selector,
      { timeout: 15_000 },
    )
    .catch((e) => {
      throw new Error(`${what}: ${e.message}\n${system.logs()}`);
    });
  return handle.jsonValue();
}

test("press -> the ringing screen shows the door's snapshot; the history lists it with its thumbnail", async () => {
  const { page } = phone;
  assert.equal(await system.press(), "ok");
  await waitForState(page, "ringing");
  const shown = await decodedImage(page, "#ring-snapshot", "the snapshot on the ringing screen");
  assert.ok(shown.width > 0 && shown.width <= 640, `snapshot ${shown.width}x${shown.height}`);
  assert.match(shown.src, /^\/api\/snapshots\/cap\//);

  // Decline, then open the history: the ring is there with its thumbnail and outcome.
  await page.click("#btn-decline");
  await waitForState(page, "idle");
  await page.click("#btn-history");
  await waitForState(page, "history");
  const thumb = await decodedImage(page, ".history-row .history-thumb", "the history's thumbnail");
  assert.ok(thumb.width > 0);
  const outcome = await page.locator(".history-row .history-outcome").first().textContent();
  assert.match(outcome, /Declined|Missed/);

  // Tap for the full snapshot.
  await page.click(".history-row .history-thumb");
  await decodedImage(page, "#snapshot-viewer img", "the full snapshot");
  await page.click("#snapshot-viewer");

  // Delete the ring: the list empties.
  await page.click(".history-row .history-delete");
  await page.waitForFunction(() => document.querySelectorAll(".history-row").length === 0, null, { timeout: 10_000 });
});

test("a press while the hub is down keeps its snapshot and uploads it with the missed ring", async () => {
  const { page } = phone;
  await system.killHub();
  await system.waitForStatus((s) => !s.hub_connected, "the hub lost");
  assert.equal(await system.press(), "ok");
  await system.waitForStatus((s) => s.missed_rings_pending === 1, "the missed ring kept");
  await system.restartHub();
  await system.waitForStatus((s) => s.hub_connected && s.missed_rings_pending === 0, "the missed ring reported");
  // The history (as the phone reads it) gets the missed ring with its snapshot.
  // Polled from here rather than with waitForFunction: the history is a hub query with no event
  // to wait on, and one evaluation may be cut short while the page reconnects to the restarted hub.
  const missedRingWithSnapshot = () =>
    page
      .evaluate(async () => {
        const token = localStorage.getItem("doorbell.token");
        const res = await fetch("/api/events?limit=20", { headers: { Authorization: `Bearer ${token}` } });
        if (!res.ok) return null;
        const body = await res.json();
        return body.events.find((e) => e.kind === "missed_ring" && e.snapshot) ?? null;
      })
      .catch(() => null);
  const event = await until(missedRingWithSnapshot, "a missed ring with a snapshot in the history", 20_000).catch(
    (e) => {
      throw new Error(`${e.message}\n${system.logs()}`);
    },
  );
  const jpeg = await page.evaluate(async (url) => {
    const res = await fetch(url);
    return { status: res.status, type: res.headers.get("content-type"), size: (await res.arrayBuffer()).byteLength };
  }, event.snapshot);
  assert.equal(jpeg.status, 200);
  assert.equal(jpeg.type, "image/jpeg");
  assert.ok(jpeg.size > 0);
});
