// Tests the history screen's grouping of events into rings (web/history.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { duration, groupHistory } from "./history.js";

test("a call's events make one row with who answered, for how long and who unlocked", () => {
  const events = [
    { id: 4, at: 4000, door_id: "d", kind: "ended", call_id: "c1", phone_id: "p-a", phone_name: "Anna", reason: "normal", duration_ms: 65000 },
    { id: 3, at: 3000, door_id: "d", kind: "unlocked", call_id: "c1", phone_id: "p-me" },
    { id: 2, at: 2000, door_id: "d", kind: "answered", call_id: "c1", phone_id: "p-a", phone_name: "Anna" },
    { id: 1, at: 1000, door_id: "d", kind: "ring", call_id: "c1", snapshot: "/api/snapshots/cap/x" },
  ];
  assert.deepEqual(groupHistory(events, "p-me"), [
    {
      key: "c/d/c1",
      id: 1,
      at: 1000,
      doorId: "d",
      snapshot: "/api/snapshots/cap/x",
      outcome: "Answered by Anna, 1:05",
      unlocks: ["Unlocked by this phone"],
    },
  ]);
});

test("declined, missed and missed-while-offline rows, newest first", () => {
  const events = [
    { id: 1, at: 1000, door_id: "d", kind: "ring", call_id: "c1" },
    { id: 2, at: 1500, door_id: "d", kind: "missed", call_id: "c1", reason: "declined" },
    { id: 3, at: 2000, door_id: "d", kind: "ring", call_id: "c2" },
    { id: 4, at: 2500, door_id: "d", kind: "missed", call_id: "c2", reason: "timeout" },
    { id: 5, at: 500, door_id: "d", kind: "missed_ring", snapshot: "/s" },
  ];
  const rows = groupHistory(events, "p-me");
  assert.deepEqual(
    rows.map((r) => [r.outcome, r.snapshot]),
    [
      ["Missed", null],
      ["Declined", null],
      ["Missed while the door was offline", "/s"],
    ],
  );
});

test("durations read as minutes and seconds", () => {
  assert.equal(duration(0), "0:00");
  assert.equal(duration(9400), "0:09");
  assert.equal(duration(125000), "2:05");
});

test("a ring with a voice message carries its link", () => {
  const rows = groupHistory(
    [
      { id: 1, at: 1, door_id: "d", kind: "ring", call_id: "c", voice_id: 9, voice: "/api/voice/cap/x" },
      { id: 2, at: 2, door_id: "d", kind: "missed", call_id: "c", reason: "timeout" },
    ],
    "p",
  );
  assert.equal(rows[0].voice, "/api/voice/cap/x");
  assert.equal(rows[0].outcome, "Missed");
});

test("a live view is a row of its own with who viewed", () => {
  const rows = groupHistory(
    [
      { id: 1, at: 1000, door_id: "d", kind: "view", phone_id: "p-2", phone_name: "Kitchen" },
      { id: 2, at: 2000, door_id: "d", kind: "view", phone_id: "p-1" },
    ],
    "p-1",
  );
  assert.deepEqual(
    rows.map((r) => r.outcome),
    ["Viewed by this phone", "Viewed by Kitchen"],
  );
});
