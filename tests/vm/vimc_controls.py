#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The sensor controls' oracle (run by tests/vm/vimc_oracle.sh).

vimc_controls.py OURS_SENSOR VIMC_SENSOR OURS_NODE VIMC_NODE FRAME_BYTES WHAT

First the controls' descriptions (VIDIOC_QUERYCTRL, QUERYMENU) must equal
vimc's.  Then, for every value in the list below, sets the control on both sensors'
sub-device nodes, streams one frame from each video node (mmap, in this
process) and requires the frames to be byte-identical.  Then, while ours
streams, flips a control and requires a frame equal to vimc's with the new
value within 10 frames (ours draws its frame again when a control
changes).  Prints one line per value; exits 1 on the first difference.
"""
import fcntl
import mmap
import os
import select
import struct
import sys

S_CTRL, REQBUFS, QUERYBUF, QBUF, DQBUF = 0xC008561C, 0xC0145608, 0xC0585609, 0xC058560F, 0xC0585611
STREAMON, STREAMOFF = 0x40045612, 0x40045613
CAPTURE, MMAP = 1, 1

TEST_PATTERN = 0x00F0F000
HFLIP, VFLIP = 0x00980914, 0x00980915
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0x00980900, 0x00980901, 0x00980902, 0x00980903
DEFAULTS = {TEST_PATTERN: 0, HFLIP: 0, VFLIP: 0, BRIGHTNESS: 128, CONTRAST: 128, SATURATION: 128, HUE: 0}
NAMES = {TEST_PATTERN: "test_pattern", HFLIP: "horizontal_flip", VFLIP: "vertical_flip",
         BRIGHTNESS: "brightness", CONTRAST: "contrast", SATURATION: "saturation", HUE: "hue"}
# Every static tpg pattern (21, noise is random), then the other controls at
# a few values each, and two combinations.
CASES = [[(TEST_PATTERN, p)] for p in range(21)] + [
    [(HFLIP, 1)], [(VFLIP, 1)], [(HFLIP, 1), (VFLIP, 1)],
    [(BRIGHTNESS, 0)], [(BRIGHTNESS, 200)], [(BRIGHTNESS, 255)],
    [(CONTRAST, 0)], [(CONTRAST, 60)], [(CONTRAST, 255)],
    [(SATURATION, 0)], [(SATURATION, 255)],
    [(HUE, -128)], [(HUE, -40)], [(HUE, 100)],
    [(TEST_PATTERN, 4), (HUE, 60), (SATURATION, 200), (HFLIP, 1)],
    [(TEST_PATTERN, 20), (BRIGHTNESS, 90), (CONTRAST, 180), (VFLIP, 1)],
]


QUERYCTRL, QUERYMENU = 0xC0445624, 0xC02C5625


def describe(fd, cid):
    """A control's type, name, range, step, default and flags, and for a
    menu its item names, as VIDIOC_QUERYCTRL/QUERYMENU report them."""
    q = bytearray(68)
    struct.pack_into("<I", q, 0, cid)
    fcntl.ioctl(fd, QUERYCTRL, q)
    typ, name = struct.unpack_from("<I32s", q, 4)
    mn, mx, step, dflt, flags = struct.unpack_from("<iiiiI", q, 40)
    items = []
    if typ == 3:  # V4L2_CTRL_TYPE_MENU
        for i in range(mn, mx + 1):
            m = bytearray(44)
            struct.pack_into("<II", m, 0, cid, i)
            try:
                fcntl.ioctl(fd, QUERYMENU, m)
                items.append(bytes(m[8:40]).split(b"\0")[0])
            except OSError:
                items.append(None)
    return (typ, name.split(b"\0")[0], mn, mx, step, dflt, flags, items)


def set_ctrl(fd, cid, val):
    fcntl.ioctl(fd, S_CTRL, bytearray(struct.pack("<Ii", cid, val)))


class Stream:
    """An mmap stream of two buffers on a capture node."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR)
        req = bytearray(struct.pack("<IIII4x", 2, CAPTURE, MMAP, 0))
        fcntl.ioctl(self.fd, REQBUFS, req)
        self.maps = []
        for i in range(struct.unpack_from("<I", req)[0]):
            b = self.buf(i)
            fcntl.ioctl(self.fd, QUERYBUF, b)
            off, length = struct.unpack_from("<I", b, 64)[0], struct.unpack_from("<I", b, 72)[0]
            self.maps.append(mmap.mmap(self.fd, length, mmap.MAP_SHARED, mmap.PROT_READ, offset=off))
            fcntl.ioctl(self.fd, QBUF, b)
        fcntl.ioctl(self.fd, STREAMON, bytearray(struct.pack("<I", CAPTURE)))

    @staticmethod
    def buf(i):
        b = bytearray(88)
        struct.pack_into("<II", b, 0, i, CAPTURE)
        struct.pack_into("<I", b, 60, MMAP)
        return b

    def frame(self):
        """The next frame's bytes; the buffer goes back to the queue."""
        if not select.select([self.fd], [], [], 10)[0]:
            raise TimeoutError("no frame in 10 s")
        b = self.buf(0)
        fcntl.ioctl(self.fd, DQBUF, b)
        i, used, flags = struct.unpack_from("<III", b, 0)[0], struct.unpack_from("<I", b, 8)[0], struct.unpack_from("<I", b, 12)[0]
        if flags & 0x40:  # V4L2_BUF_FLAG_ERROR
            raise RuntimeError("buffer returned with an error")
        data = bytes(self.maps[i][:used])
        fcntl.ioctl(self.fd, QBUF, self.buf(i))
        return data

    def close(self):
        fcntl.ioctl(self.fd, STREAMOFF, bytearray(struct.pack("<I", CAPTURE)))
        for m in self.maps:
            m.close()
        fcntl.ioctl(self.fd, REQBUFS, bytearray(struct.pack("<IIII4x", 0, CAPTURE, MMAP, 0)))
        os.close(self.fd)


def one_frame(path):
    s = Stream(path)
    try:
        return s.frame()
    finally:
        s.close()


def main():
    ours_sd, vimc_sd, ours_node, vimc_node, size, what = sys.argv[1:7]
    size = int(size)
    sds = [os.open(ours_sd, os.O_RDWR), os.open(vimc_sd, os.O_RDWR)]
    # The controls as applications see them: the same on both.
    for cid in DEFAULTS:
        ours, theirs = describe(sds[0], cid), describe(sds[1], cid)
        if ours != theirs:
            print(f"FAIL {NAMES[cid]}: ours {ours} vimc {theirs}")
            return 1
    print(f"    {what} {len(DEFAULTS)} controls: type, name, range, step, default, flags and menu as vimc's")

    def setall(case):
        for fd in sds:
            for cid, val in DEFAULTS.items():
                set_ctrl(fd, cid, val)
            for cid, val in case:
                set_ctrl(fd, cid, val)

    for case in CASES:
        setall(case)
        ours, theirs = one_frame(ours_node), one_frame(vimc_node)
        label = ", ".join(f"{NAMES[c]}={v}" for c, v in case)
        if len(ours) != size or len(theirs) != size:
            print(f"FAIL {what} {label}: {len(ours)} and {len(theirs)} bytes, want {size}")
            return 1
        diff = sum(1 for a, b in zip(ours, theirs) if a != b)
        if diff:
            print(f"FAIL {what} {label}: {diff} bytes differ from vimc")
            return 1
        print(f"    {what} {label}: identical")
    # A control changed while ours streams shows within 10 frames.
    setall([(HFLIP, 1), (TEST_PATTERN, 12)])
    want = one_frame(vimc_node)
    setall([])
    s = Stream(ours_node)
    try:
        before = s.frame()
        set_ctrl(sds[0], HFLIP, 1)
        set_ctrl(sds[0], TEST_PATTERN, 12)
        seen = [s.frame() for _ in range(10)]
    finally:
        s.close()
    if before == want or want not in seen:
        print(f"FAIL {what}: a control set while streaming did not reach the frames")
        return 1
    print(f"    {what} hflip + pattern 12 set while streaming: frame {seen.index(want) + 1} after matches vimc's")
    setall([])
    for fd in sds:
        os.close(fd)
    print(f"{len(CASES)} control settings identical to vimc ({what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
