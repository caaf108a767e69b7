// The vendored QR library is the pinned npm package's file, and it draws invite links.
// Run: node --test web/

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { qrSvg } from "./qr.js";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

test("qrcode-generator.mjs is the pinned package's dist/qrcode.mjs", (t) => {
  const pkg = JSON.parse(readFileSync(here("package.json"), "utf8"));
  assert.equal(pkg.dependencies["qrcode-generator"], "2.0.4");
  const installed = here("node_modules/qrcode-generator/dist/qrcode.mjs");
  if (!existsSync(installed)) return t.skip("npm ci has not run in web/");
  assert.equal(readFileSync(here("qrcode-generator.mjs"), "utf8"), readFileSync(installed, "utf8"), "run `npm run vendor` in web/");
});

test("an invite link becomes an SVG QR code", () => {
  const svg = qrSvg("https://doorbell.example:8443/#pair=0123456789abcdef0123456789abcdef");
  assert.match(svg, /^<svg [^>]*viewBox=/);
  assert.ok((svg.match(/<path|<rect/g) ?? []).length > 0, svg.slice(0, 200));
  assert.notEqual(svg, qrSvg("https://doorbell.example:8443/#pair=other"));
});
