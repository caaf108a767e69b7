#!/usr/bin/env python3
"""Draws the phone app's icons (web/icon-*.png, web/apple-touch-icon.png): the bell of the
page's favicon, green on the app's dark theme colour. Standard library only (zlib, struct), so
it runs on any machine; the PNGs are committed and this is run again only to change them.

    python3 scripts/gen-icons.py
"""

import struct
import zlib
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "web"
BG = (0x14, 0x16, 0x1A)  # theme_color in manifest.webmanifest
BELL = (0x22, 0xC5, 0x5E)  # the favicon's green
SAMPLES = 4  # per axis: 16 samples a pixel smooth the edges


def in_bell(x, y):
    """The favicon's bell (its SVG path, in its 24x24 viewBox) as a point test."""
    if 19.5 <= y <= 22 and (x - 12) ** 2 + (y - 19.5) ** 2 <= 2.5**2:  # clapper
        return True
    if 3.5 <= y <= 5 and 10.5 <= x <= 13.5:  # knob
        return True
    if y <= 3.5 and (x - 12) ** 2 + (y - 3.5) ** 2 <= 1.5**2:
        return True
    if 4 <= y <= 11 and (x - 12) ** 2 + (y - 11) ** 2 <= 7**2:  # dome
        return True
    if 11 <= y <= 16 and 5 <= x <= 19:  # body
        return True
    if 16 <= y <= 18:  # flare
        d = y - 16
        return 5 - d <= x <= 19 + d
    return 18 <= y <= 19 and 3 <= x <= 21


def in_rounded_square(u, v, radius):
    """u, v in 0..1; a square with rounded corners (the 'any' icon's plate)."""
    cx = min(max(u, radius), 1 - radius)
    cy = min(max(v, radius), 1 - radius)
    return (u - cx) ** 2 + (v - cy) ** 2 <= radius**2


def draw(size, bell_scale, full_bleed):
    """RGBA rows. bell_scale: the bell's 24-unit box as a share of the icon's side."""
    rows = []
    offset = (1 - bell_scale) / 2
    for py in range(size):
        row = bytearray()
        for px in range(size):
            bg = bell = 0
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    u = (px + (sx + 0.5) / SAMPLES) / size
                    v = (py + (sy + 0.5) / SAMPLES) / size
                    if not (full_bleed or in_rounded_square(u, v, 0.18)):
                        continue
                    bg += 1
                    if in_bell((u - offset) / bell_scale * 24, (v - offset) / bell_scale * 24):
                        bell += 1
            n = SAMPLES * SAMPLES
            if bg == 0:
                row += bytes((0, 0, 0, 0))
                continue
            t = bell / bg
            rgb = [round(BG[i] + (BELL[i] - BG[i]) * t) for i in range(3)]
            row += bytes(rgb + [round(255 * bg / n)])
        rows.append(bytes(row))
    return rows


def png(rows, size):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + r for r in rows)
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


ICONS = [
    # name, size, bell share, full bleed (maskable and Apple icons must have no transparency)
    ("icon-192.png", 192, 0.62, False),
    ("icon-512.png", 512, 0.62, False),
    # Maskable: the launcher crops to a circle of 80% of the side; the bell stays inside it.
    ("icon-maskable-512.png", 512, 0.5, True),
    ("apple-touch-icon.png", 180, 0.6, True),
]

if __name__ == "__main__":
    for name, size, scale, bleed in ICONS:
        (WEB / name).write_bytes(png(draw(size, scale, bleed), size))
        print("wrote", WEB / name)
