// @ts-check
// QR codes for invite links, drawn as SVG by qrcode-generator (MIT, Kazuhiko Arase), vendored
// as qrcode-generator.mjs from the npm package pinned in package.json (`npm run vendor`
// copies it; qr.test.mjs checks that the copy matches).

import qrcode from "./qrcode-generator.mjs";

/** Cell size and quiet zone, in cells of the SVG's own units (it scales to its box). */
const CELL = 4;
const MARGIN = 4;

/**
 * An SVG image of a QR code holding `text` (error correction M: a link survives a smudge).
 * @param {string} text @returns {string}
 */
export function qrSvg(text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return qr.createSvgTag({ cellSize: CELL, margin: MARGIN, scalable: true });
}
