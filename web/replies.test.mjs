// Tests the pure parts of web/replies.js: the recorder type asked for and on-the-spot labels.
import { test } from "node:test";
import assert from "node:assert/strict";

import { recorderType, spotLabel } from "./replies.js";

test("Opus in WebM first, Ogg where only that is recorded, nothing forced otherwise", () => {
  assert.equal(recorderType(() => true), "audio/webm;codecs=opus");
  assert.equal(recorderType((t) => t.startsWith("audio/ogg")), "audio/ogg;codecs=opus");
  assert.equal(recorderType(() => false), "");
});

test("a reply recorded on the spot is named by its time", () => {
  assert.match(spotLabel(new Date(2026, 0, 5, 9, 7)), /^Reply 09:07$/);
});
