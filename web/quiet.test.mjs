// Tests the pure parts of web/quiet.js: do-not-disturb ends, the settings sent, the summary.
import { test } from "node:test";
import assert from "node:assert/strict";

import { describe, dndUntil, settingsFrom } from "./quiet.js";

const now = new Date(2026, 0, 5, 23, 30); // local time

test("do-not-disturb choices end when they say", () => {
  assert.equal(dndUntil("off", now), null);
  assert.equal(dndUntil("1h", now), now.getTime() + 3600_000);
  const morning = new Date(dndUntil("morning", now) ?? 0);
  assert.deepEqual([morning.getDate(), morning.getHours(), morning.getMinutes()], [6, 7, 0]);
  const early = new Date(2026, 0, 6, 5, 0);
  assert.equal(new Date(dndUntil("morning", early) ?? 0).getDate(), 6, "before 07:00: today");
});

test("the panel's form becomes the API's settings", () => {
  const s = settingsFrom({ dnd: "off", nightly: true, start: "22:00", end: "07:00", keepDnd: null }, now);
  assert.deepEqual(s.schedule, [{ days: [0, 1, 2, 3, 4, 5, 6], start: "22:00", end: "07:00" }]);
  assert.equal(s.dnd_until_ms, null);
  assert.equal(s.utc_offset_min, -now.getTimezoneOffset());
  const kept = settingsFrom({ dnd: "keep", nightly: false, start: "", end: "", keepDnd: now.getTime() + 5 }, now);
  assert.deepEqual([kept.schedule, kept.dnd_until_ms], [[], now.getTime() + 5]);
  const over = settingsFrom({ dnd: "keep", nightly: false, start: "", end: "", keepDnd: now.getTime() - 5 }, now);
  assert.equal(over.dnd_until_ms, null, "an ended switch is sent as off");
});

test("the summary says what happens", () => {
  assert.equal(describe({ utc_offset_min: 0, schedule: [], dnd_until_ms: null }, now), "This phone rings for every visitor.");
  const text = describe(
    { utc_offset_min: 0, schedule: [{ days: [0], start: "22:00", end: "07:00" }], dnd_until_ms: null, quiet_now: true },
    now,
  );
  assert.match(text, /^Quiet every night 22:00–07:00\. Quiet now/);
});
