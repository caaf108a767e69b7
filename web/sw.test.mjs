// The service worker's app shell must list every file the app loads, or the installed app
// opens half-broken without the hub. Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
// As hub/build.rs embeds them (tests, dotfiles, npm and tsc files are not served).
const NOT_SERVED = /^(\..*|.*\.test\..*|package(-lock)?\.json|tsconfig(\.sw)?\.json|.*\.d\.m?ts)$/;

test("sw.js caches every file of the app but itself", () => {
  const source = readFileSync(new URL("sw.js", import.meta.url), "utf8");
  const list = /const SHELL = \[([^\]]*)\]/.exec(source);
  assert.ok(list, "SHELL in sw.js");
  const shell = [...list[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]);
  const served = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && !NOT_SERVED.test(e.name) && e.name !== "sw.js")
    .map((e) => (e.name === "index.html" ? "/" : `/${e.name}`));
  assert.deepEqual([...shell].sort(), served.sort());
});
