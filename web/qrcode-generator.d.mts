// Types of the part of the vendored qrcode-generator.mjs that qr.js uses (so tsc checks qr.js
// without checking the vendored file itself).
declare function qrcode(
  typeNumber: number,
  errorCorrectionLevel: "L" | "M" | "Q" | "H",
): {
  addData(data: string): void;
  make(): void;
  createSvgTag(opts: { cellSize?: number; margin?: number; scalable?: boolean }): string;
};
export default qrcode;
