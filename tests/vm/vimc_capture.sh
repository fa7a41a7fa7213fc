# Frames through vimc_debayer: the capture node streams the sensor's test
# pattern through the debayer and the scaler (frame bytes checked), link
# validation refuses a mismatched pipeline with EPIPE, formats cannot
# change while streaming (EBUSY), v4l2-compliance streams with 0 failures
# on both nodes, tools/vimc-png writes the
# frame, the raw node streams Bayer frames (mmap and dmabuf) alongside the
# RGB node, debugfs shows per-entity frame times, and 100 stream on/off
# cycles leave the module unloadable.
insmod_ours vimc_debayer || fail "insmod"
wait_dmesg "faux_driver vimc_debayer: pipeline ready" 30 || fail "no 'pipeline ready' line"
mdev=$(media_of vimc_debayer) || fail "no vimc_debayer media device"
mc() { media-ctl -d "$mdev" "$@"; }
vid=$(mc -e Capture)
[ -c "$vid" ] || fail "no Capture video node ($vid)"
mc -p | grep -q '"Capture":0 \[ENABLED,IMMUTABLE\]' || fail "Scaler -> Capture link missing"
v4l2-ctl -d "$vid" --info | grep -q "Driver name *: vimc_debayer" || fail "$vid is not ours"
log "Capture node $vid, linked from Scaler:1"
raw=$(mc -e "Raw Capture 0")
[ -c "$raw" ] || fail "no Raw Capture 0 video node ($raw)"
mc -p | grep -q '"Raw Capture 0":0 \[ENABLED,IMMUTABLE\]' || fail "Sensor A -> Raw Capture 0 link missing"
log "Raw Capture 0 node $raw, linked from Sensor A:0"
# Media-controller mode: controls live on the sub-devices only, as in vimc.
[ -z "$(v4l2-ctl -d "$vid" --list-ctrls)$(v4l2-ctl -d "$raw" --list-ctrls)" ] || fail "controls on a video node"

out=$REPO/build/vm/vimc-frames.raw
# The whole pipeline at one size and code.
pipe_fmt() { # BAYER_CODE W H
	vimc_setup "$mdev" Capture "$1" "$2" "$3" 3 || fail "pipeline format $*"
}
# Bars of tpg's 75% colour bar, sampled in the middle row of the last
# frame: white, yellow, cyan, green, magenta, red, blue, black.
check_bars() { # FILE W H
	python3 - "$@" <<'PY'
import sys
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(path, "rb").read()
size = w * h * 3
assert len(data) >= size and len(data) % size == 0, f"{len(data)} bytes, frames of {size}"
f = data[-size:]
def px(x, y):
    o = (y * w + x) * 3
    return tuple(f[o:o + 3])
bars = [px(int((i + 0.5) * w / 8), h // 2) for i in range(8)]
print("    bars (R,G,B):", bars)
hi, lo = 120, 40
want = ["111", "110", "011", "010", "101", "100", "001", "000"]
for i, (rgb, wnt) in enumerate(zip(bars, want)):
    got = "".join("1" if c >= hi else "0" if c <= lo else "?" for c in rgb)
    assert got == wnt, f"bar {i}: {rgb} is not {wnt}"
PY
}

pipe_fmt SRGGB8_1X8 640 480
rm -f "$out"
v4l2-ctl -d "$vid" --stream-mmap --stream-count=3 --stream-to="$out" || fail "stream 3 frames"
[ "$(stat -c %s "$out")" = $((640 * 480 * 3 * 3)) ] || fail "captured $(stat -c %s "$out") bytes, want 3 frames of 640x480 RGB24"
check_bars "$out" 640 480 || fail "frame content is not tpg's colour bar after debayer"
log "640x480 SRGGB8 -> RGB24: 3 frames, colour bars in place"

# tools/vimc-png writes a frame as PNG; decoded, it is the colour bar
# the raw stream showed.
"$REPO/tools/vimc-png" -o "$REPO/build/vm/vimc-frame.png" || fail "tools/vimc-png"
python3 - "$REPO/build/vm/vimc-frame.png" "$out" <<'PY' || fail "PNG does not hold the captured frame"
import struct, sys, zlib
p = open(sys.argv[1], "rb").read()
assert p[:8] == b"\x89PNG\r\n\x1a\n"
w, h, depth, ctype = struct.unpack(">IIBB", p[16:26])
assert (w, h, depth, ctype) == (640, 480, 8, 2), (w, h, depth, ctype)
i, idat = 8, b""
while i < len(p):
    n, kind = struct.unpack(">I4s", p[i:i + 8])
    if kind == b"IDAT":
        idat += p[i + 8:i + 8 + n]
    i += 12 + n
raw = zlib.decompress(idat)
rows = [raw[y * (1 + w * 3) + 1:(y + 1) * (1 + w * 3)] for y in range(h)]
last = open(sys.argv[2], "rb").read()[-w * h * 3:]
# The pattern does not move, so any frame of the stream is the same.
assert b"".join(rows) == last, "PNG pixels differ from the raw frame"
PY
log "tools/vimc-png: 640x480 PNG equal to the raw frame"

# Another Bayer order and the scaler doubling the size.
mc -V '"Sensor A":0[fmt:SBGGR8_1X8/320x240], "Debayer A":0[fmt:SBGGR8_1X8/320x240], "Debayer A":1[fmt:RGB888_1X24/320x240], "Scaler":0[fmt:RGB888_1X24/320x240], "Scaler":1[fmt:RGB888_1X24/640x480]' ||
	fail "pad formats (sensor, debayer, scaler)"
v4l2-ctl -d "$vid" --set-fmt-video=width=640,height=480,pixelformat=RGB3 || fail "capture format"
v4l2-ctl -d "$raw" --set-fmt-video=width=320,height=240,pixelformat=BA81 || fail "raw capture format"
rm -f "$out"
v4l2-ctl -d "$vid" --stream-mmap --stream-count=2 --stream-to="$out" || fail "stream scaled"
check_bars "$out" 640 480 || fail "scaled SBGGR8 frame is not the colour bar"
log "320x240 SBGGR8 scaled to 640x480: colour bars in place"

# Link validation: the debayer's sink no longer matches the sensor.
pipe_fmt SRGGB8_1X8 640 480
mc -V '"Debayer A":0[fmt:SGBRG8_1X8/640x480]' || fail "debayer sink format"
# (v4l2-ctl exits 0 after a failed STREAMON; its message is the evidence.)
err=$(v4l2-ctl -d "$vid" --stream-mmap --stream-count=1 --stream-to=/dev/null 2>&1)
echo "$err" | grep -q "VIDIOC_STREAMON returned -1 (Broken pipe)" ||
	fail "stream on with mismatched sensor and debayer formats did not fail with EPIPE: $err"
# ... and the capture format differs from the scaler's output.
pipe_fmt SRGGB8_1X8 640 480
v4l2-ctl -d "$vid" --set-fmt-video=width=320,height=240,pixelformat=RGB3 || fail "capture format"
err=$(v4l2-ctl -d "$vid" --stream-mmap --stream-count=1 --stream-to=/dev/null 2>&1)
echo "$err" | grep -q "VIDIOC_STREAMON returned -1 (Broken pipe)" ||
	fail "stream on with the capture size unlike the scaler's did not fail with EPIPE: $err"
log "link validation: mismatched formats -> EPIPE at stream on"

# No format change while streaming (small frames: under TCG with KASAN a
# 640x480 frame takes over a second).
pipe_fmt SRGGB8_1X8 160 120
stream_bg -d "$vid" --stream-mmap --stream-count=1000 --stream-to=/dev/null ||
	fail "background stream ended early or never began"
busy_sensor=$(mc -V '"Sensor A":0[fmt:SRGGB8_1X8/320x240]' 2>&1 || true)
busy_cap=$(v4l2-ctl -d "$vid" --set-fmt-video=width=320,height=240 2>&1 || true)
kill $sp 2>/dev/null || true
wait $sp 2>/dev/null || true
echo "$busy_sensor" | grep -qi "busy" || fail "sensor format set while streaming: $busy_sensor"
echo "$busy_cap" | grep -qi "busy" || fail "capture format set while streaming: $busy_cap"
mc --get-v4l2 '"Sensor A":0' | grep -q "fmt:SRGGB8_1X8/160x120" || fail "sensor format changed while streaming"
log "formats fixed while streaming (EBUSY)"

# v4l2-compliance with streaming on the capture node.
pipe_fmt SRGGB8_1X8 64 48
cout=$(v4l2_compliance -d "$vid" -s 2>&1 || true)
compliance_ok "$cout" "v4l2-compliance -s on $vid"
echo "$cout" | grep -qE "^Total for vimc_debayer device $vid: " || fail "v4l2-compliance -s did not test $vid"
for t in "MMAP (select, REQBUFS)" "MMAP (select, CREATE_BUFS)" "USERPTR (select)"; do
	echo "$cout" | grep -q "test $t: OK" || fail "v4l2-compliance did not stream $t on $vid"
done
log "v4l2-compliance -s $vid: 0 failures, 0 warnings, MMAP and USERPTR streaming"
# ... and on the raw node, with buffers exported by the RGB node so that
# the DMABUF streaming tests run too.
rout=$(v4l2_compliance -d "$raw" -s --expbuf-device "$vid" 2>&1 || true)
compliance_ok "$rout" "v4l2-compliance -s on $raw"
echo "$rout" | grep -qE "^Total for vimc_debayer device $raw: " || fail "v4l2-compliance -s did not test $raw"
for t in "MMAP (select, REQBUFS)" "MMAP (select, CREATE_BUFS)" "USERPTR (select)" "DMABUF (select)"; do
	echo "$rout" | grep -q "test $t: OK" || fail "v4l2-compliance did not stream $t on $raw"
done
log "v4l2-compliance -s $raw --expbuf-device $vid: 0 failures, 0 warnings, MMAP, USERPTR and DMABUF streaming"

# The raw node: Bayer frames of the sensor, while the RGB node streams too
# (both start the media device's one pipeline), into mmap buffers and into
# dmabufs exported by the RGB node.
pipe_fmt SRGGB8_1X8 160 120
echo 0 >/sys/kernel/debug/vimc_debayer/timing
stream_bg -d "$vid" --stream-mmap --stream-count=100000 --stream-to=/dev/null ||
	fail "the RGB stream ended early or never began"
rawout=$REPO/build/vm/vimc-raw.raw
rm -f "$rawout"
v4l2-ctl -d "$raw" --stream-mmap --stream-count=3 --stream-to="$rawout" || fail "raw stream"
[ -d /proc/$sp ] || fail "the RGB stream ended before the raw one"
kill $sp 2>/dev/null || true
wait $sp 2>/dev/null || true
[ "$(stat -c %s "$rawout")" = $((160 * 120 * 3)) ] || fail "raw: $(stat -c %s "$rawout") bytes, want 3 frames of 160x120 8-bit Bayer"
python3 - "$rawout" <<'PY' || fail "raw frame is not the colour bar in RGGB order"
import sys
w, h = 160, 120
f = open(sys.argv[1], "rb").read()[-w * h:]
want = ["111", "110", "011", "010", "101", "100", "001", "000"]
for i, wnt in enumerate(want):
    x, y = int((i + 0.5) * w / 8) & ~1, h // 2 & ~1
    rgb = (f[y * w + x], f[y * w + x + 1], f[(y + 1) * w + x + 1])  # R G / G B
    got = "".join("1" if c >= 120 else "0" if c <= 40 else "?" for c in rgb)
    assert got == wnt, f"bar {i}: {rgb} is not {wnt}"
print("    raw RGGB cells ok")
PY
log "raw node: 160x120 RGGB frames with the colour bar, while the RGB node streamed"
rawdma=$REPO/build/vm/vimc-raw-dmabuf.raw
rm -f "$rawdma"
v4l2-ctl -d "$raw" --stream-dmabuf --export-device "$vid" --stream-count=3 --stream-to="$rawdma" || fail "dmabuf stream"
cmp "$rawout" "$rawdma" || fail "frames captured into dmabufs differ from the mmap ones"
log "dmabuf: raw node filled buffers exported by the RGB node, same bytes as mmap"
# While only the raw node streams, the shared pipeline is validated and
# started: the debayer and scaler formats are fixed as well, and the RGB
# node, whose start the media core no longer validates, checks its own end.
stream_bg -d "$raw" --stream-mmap --stream-count=100000 --stream-to=/dev/null ||
	fail "the raw stream ended early or never began"
busy_scaler=$(mc -V '"Scaler":1[fmt:RGB888_1X24/80x60]' 2>&1 || true)
v4l2-ctl -d "$vid" --set-fmt-video=width=80,height=60,pixelformat=RGB3 || fail "capture format (idle node)"
err=$(v4l2-ctl -d "$vid" --stream-mmap --stream-count=1 --stream-to=/dev/null 2>&1)
[ -d /proc/$sp ] || fail "the raw stream ended early"
kill $sp 2>/dev/null || true
wait $sp 2>/dev/null || true
echo "$busy_scaler" | grep -qi "busy" || fail "scaler format set while the raw node streamed: $busy_scaler"
mc --get-v4l2 '"Scaler":1' | grep -q "fmt:RGB888_1X24/160x120" || fail "scaler format changed while the raw node streamed"
echo "$err" | grep -q "VIDIOC_STREAMON returned -1 (Broken pipe)" ||
	fail "RGB stream on with a mismatched capture format while the raw node streamed: $err"
log "raw node streaming: scaler format fixed (EBUSY), mismatched RGB node refused (EPIPE)"
pipe_fmt SRGGB8_1X8 160 120
timing=$(cat /sys/kernel/debug/vimc_debayer/timing)
echo "$timing" | sed 's/^/    /'
for e in "Sensor A" "Debayer A" "Scaler" "Capture" "Raw Capture 0"; do
	echo "$timing" | grep -qE "^$e: frames=[1-9][0-9]* last_ns=[1-9]" || fail "debugfs timing: no frames timed for $e"
done
echo 0 >/sys/kernel/debug/vimc_debayer/timing
! grep -v "frames=0 last_ns=0 avg_ns=0 max_ns=0" /sys/kernel/debug/vimc_debayer/timing || fail "timing not reset"
log "debugfs timing: every entity timed; writing resets"

# 100 stream on/off cycles (open, buffers, stream on, a frame, stream off,
# close), in one process; the capture entity's frame counter must move by
# at least one frame a cycle.
cap_frames() { sed -n 's/^Capture: frames=\([0-9]*\) .*/\1/p' /sys/kernel/debug/vimc_debayer/timing; }
f0=$(cap_frames)
python3 "$REPO/tests/vm/vimc_cycles.py" "$vid" 100 $((160 * 120 * 3)) || fail "stream on/off cycles"
f1=$(cap_frames)
[ $((f1 - f0)) -ge 100 ] || fail "100 cycles, but the capture entity counted $((f1 - f0)) frames"
log "100 stream on/off cycles, $((f1 - f0)) frames"
rmmod vimc_debayer || fail "rmmod after streaming"
