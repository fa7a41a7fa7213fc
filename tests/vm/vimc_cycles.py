#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Stream on/off cycles (run by tests/vm/vimc_capture.sh).

vimc_cycles.py NODE COUNT FRAME_BYTES

COUNT times: open the node, request two mmap buffers, stream on, take one
frame of FRAME_BYTES bytes, stream off, free the buffers, close; what
`v4l2-ctl --stream-mmap --stream-count=1` does, in one process (a program
start per cycle costs a second under TCG).  Exits 1 on the first cycle
that fails.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vimc_controls import one_frame  # noqa: E402


def main():
    node, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for i in range(count):
        try:
            n = len(one_frame(node))
        except (OSError, RuntimeError, TimeoutError) as e:
            print(f"cycle {i + 1}: {e}")
            return 1
        if n != size:
            print(f"cycle {i + 1}: {n} bytes, want {size}")
            return 1
    return 0


sys.exit(main())
