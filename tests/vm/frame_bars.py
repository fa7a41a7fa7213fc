#!/usr/bin/env python3
"""Checks that a captured frame shows tpg's 75% colour bar (white, yellow,
cyan, green, magenta, red, blue, black, left to right).

  frame_bars.py FILE... W H FOURCC   the last W x H frame in each FILE

(PNG files are decoded to RGB3 with ffmpeg first.)  Prints the sampled bars;
exits non-zero if a bar has the wrong colour or a FILE is not whole frames."""
import sys

# Byte offsets of R, G, B in a pixel, and bytes per pixel, per V4L2 fourcc
# (pixfmt-rgb.rst).
LAYOUTS = {
    "RGB3": ((0, 1, 2), 3), "BGR3": ((2, 1, 0), 3),
    "AR24": ((2, 1, 0), 4), "XR24": ((2, 1, 0), 4),
    "RA24": ((3, 2, 1), 4), "RX24": ((3, 2, 1), 4),
    "AB24": ((0, 1, 2), 4), "XB24": ((0, 1, 2), 4),
    "BA24": ((1, 2, 3), 4), "BX24": ((1, 2, 3), 4),
}


def check(w, h, px):
    want = ["111", "110", "011", "010", "101", "100", "001", "000"]
    bars = [px(int((i + 0.5) * w / 8), h // 2) for i in range(8)]
    print(f"    {w}x{h}, bars (R,G,B): {bars}")
    for i, (rgb, wnt) in enumerate(zip(bars, want)):
        got = "".join("1" if c >= 120 else "0" if c <= 40 else "?" for c in rgb)
        assert got == wnt, f"bar {i}: {rgb} is not {wnt}"


def check_file(name, w, h, fourcc):
    (r, g, b), bpp = LAYOUTS[fourcc]
    data = open(name, "rb").read()
    size = w * h * bpp
    assert len(data) >= size and len(data) % size == 0, f"{name}: {len(data)} bytes, frames of {size}"
    f = data[-size:]

    def px(x, y):
        o = (y * w + x) * bpp
        return (f[o + r], f[o + g], f[o + b])
    try:
        check(w, h, px)
    except AssertionError as e:
        raise AssertionError(f"{name}: {e}") from None


def main(argv):
    w, h, fourcc = int(argv[-3]), int(argv[-2]), argv[-1]
    assert len(argv) > 4, "usage: frame_bars.py FILE... W H FOURCC"
    for name in argv[1:-3]:
        check_file(name, w, h, fourcc)


if __name__ == "__main__":
    main(sys.argv)
