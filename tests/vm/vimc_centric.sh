# vimc_debayer with video_centric=1: the capture nodes' S_FMT sets up the
# pipeline, so plain V4L2 applications work with no media-ctl step and no
# format arguments.  v4l2-ctl at the default format, FFmpeg and GStreamer
# at the format each picks itself: frames checked for the colour bar.
# Formats chosen on one node reach the sub-devices and the other node; a
# node holding buffers keeps its format (EBUSY); a sub-device changed
# behind the node's back fails stream on (EPIPE) until the next S_FMT;
# the sub-devices' controls on the nodes; v4l2-compliance 0/0 on both
# nodes and the media device.
# In the guest's own memory: the shared build directory took minutes for the
# 25 MB decoded 3840x2160 frame under TCG.
out=/tmp/centric
rm -rf "$out"
mkdir -p "$out"
bars() { python3 "$REPO/tests/vm/frame_bars.py" "$@"; }
# PNG -> RGB3 frame (ffmpeg's PNG decoder, not under test), then the bars.
png_bars() { # PNG W H
	local wh
	wh=$(python3 -c 'import struct, sys; print("%d,%d" % struct.unpack(">II", open(sys.argv[1], "rb").read()[16:24]))' "$1")
	[ "$wh" = "$2,$3" ] || fail "$1 is $wh, want $2x$3"
	ffmpeg -v error -y -i "$1" -f rawvideo -pix_fmt rgb24 "$1.rgb" || fail "decode $1"
	bars "$1.rgb" "$2" "$3" RGB3 || fail "$1: no colour bar"
}
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

insmod_ours vimc_debayer video_centric=1 || fail "insmod video_centric=1"
wait_dmesg "faux_driver vimc_debayer: pipeline ready" 30 || fail "no 'pipeline ready' line"
mdev=$(media_of vimc_debayer) || fail "no vimc_debayer media device"
mc() { media-ctl -d "$mdev" "$@"; }
vid=$(mc -e Capture)
raw=$(mc -e "Raw Capture 0")
info=$(v4l2-ctl -d "$vid" --info)
! echo "$info" | grep -q "I/O MC" || fail "video-centric node claims V4L2_CAP_IO_MC"
v4l2-ctl -d "$vid" --get-input | grep -q "Video input : 0 (Camera" || fail "no input 0"
log "nodes $vid (RGB) and $raw (raw), no IO_MC, one input"

# The sensor's and the debayer's controls on both nodes (all such an
# application knows): the sub-devices' own controls, so a value set on a
# node is the sub-device's and the other way round.
sen=$(mc -e "Sensor A")
deb=$(mc -e "Debayer A")
for n in "$vid" "$raw"; do
	ctrls=$(v4l2-ctl -d "$n" --list-ctrls)
	for c in brightness contrast saturation hue horizontal_flip vertical_flip test_pattern debayer_mean_window_size; do
		echo "$ctrls" | grep -q "^ *$c 0x" || { echo "$ctrls"; fail "control $c missing on $n"; }
	done
done
win=$(v4l2-ctl -d "$deb" -C debayer_mean_window_size)
v4l2-ctl -d "$vid" -c brightness=200,debayer_mean_window_size=5 || fail "set controls on $vid"
[ "$(v4l2-ctl -d "$sen" -C brightness)" = "brightness: 200" ] || fail "brightness set on $vid is not the sensor's"
[ "$(v4l2-ctl -d "$deb" -C debayer_mean_window_size)" = "debayer_mean_window_size: 5" ] ||
	fail "window set on $vid is not the debayer's"
v4l2-ctl -d "$sen" -c brightness=128 || fail "set brightness on $sen"
[ "$(v4l2-ctl -d "$raw" -C brightness)" = "brightness: 128" ] || fail "brightness set on $sen not seen on $raw"
v4l2-ctl -d "$vid" -c "debayer_mean_window_size=${win##* }" || fail "restore window"
log "sensor and debayer controls on both nodes, shared with the sub-devices"

# v4l2-ctl, no format arguments: the default format streams.
v4l2-ctl -d "$vid" --stream-mmap --stream-count=3 --stream-to="$out/v4l2-ctl.raw" || fail "v4l2-ctl stream"
bars "$out/v4l2-ctl.raw" 640 480 RGB3 || fail "v4l2-ctl frame"
log "v4l2-ctl --stream-mmap at defaults: 640x480 RGB3, colour bar"

# FFmpeg picks its format itself (the first of its list the node keeps).
ffmpeg -hide_banner -nostdin -f v4l2 -i "$vid" -frames:v 1 -y "$out/ffmpeg.png" >"$out/ffmpeg.log" 2>&1 ||
	{ tail -n 20 "$out/ffmpeg.log"; fail "ffmpeg capture"; }
fin=$(grep -m1 "Stream #0:0: Video:" "$out/ffmpeg.log" || true)
log "ffmpeg: $fin"
fmt=$(v4l2-ctl -d "$vid" --get-fmt-video)
echo "$fmt" | grep -q "Pixel Format *: 'BGR3'" || fail "ffmpeg did not set BGR3: $fmt"
mc --get-v4l2 '"Debayer A":1' | grep -q "fmt:BGR888_1X24/640x480" || fail "debayer source not BGR888 after ffmpeg"
png_bars "$out/ffmpeg.png" 640 480
log "ffmpeg -f v4l2 -i $vid out.png: BGR3 set up through the pipeline, colour bar"

# GStreamer negotiates the largest size and a layout videoconvert takes.
gst-launch-1.0 -v v4l2src device="$vid" num-buffers=3 ! videoconvert ! pngenc ! \
	multifilesink location="$out/gst-%d.png" >"$out/gst.log" 2>&1 ||
	{ tail -n 20 "$out/gst.log"; fail "gst-launch"; }
caps=$(grep -m1 "v4l2src0.GstPad:src: caps" "$out/gst.log" | sed "s/.*caps = //" || true)
log "gstreamer: $caps"
fmt=$(v4l2-ctl -d "$vid" --get-fmt-video)
w=$(echo "$fmt" | sed -n 's/.*Width\/Height *: *\([0-9]*\)\/\([0-9]*\).*/\1/p')
h=$(echo "$fmt" | sed -n 's/.*Width\/Height *: *\([0-9]*\)\/\([0-9]*\).*/\2/p')
echo "$caps" | grep -q "width=(int)$w, height=(int)$h" || fail "caps $caps vs node $w x $h"
mc --get-v4l2 '"Sensor A":0' | grep -q "/${w}x$h" || fail "sensor not at ${w}x$h after gstreamer"
[ -f "$out/gst-2.png" ] || fail "gstreamer wrote $(ls "$out")"
png_bars "$out/gst-2.png" "$w" "$h"
pf=$(echo "$fmt" | sed -n "s/.*Pixel Format *: '\(....\)'.*/\1/p")
log "gst-launch v4l2src num-buffers=3: ${w}x$h $pf, colour bar in frame 3"

# Every layout of the RGB node, by S_FMT alone (v4l2-ctl -v), small frames.
for f in RGB3 BGR3 AR24 XR24 RA24 RX24 AB24 XB24 BA24 BX24; do
	v4l2-ctl -d "$vid" -v "width=160,height=120,pixelformat=$f" \
		--stream-mmap --stream-count=2 --stream-to="$out/$f.raw" || fail "stream $f"
	bars "$out/$f.raw" 160 120 "$f" >/dev/null || fail "$f: no colour bar"
done
mc --get-v4l2 '"Scaler":1' | grep -q "fmt:ARGB8888_1X32/160x120" || fail "scaler not ARGB8888 for 32-bit layouts"
log "RGB3 BGR3 and eight 32-bit layouts at 160x120: colour bar in each"

# Formats follow across the nodes, and a node with buffers keeps its own.
python3 - "$vid" "$raw" <<'PY' || fail "formats across nodes"
import errno, fcntl, os, struct, sys
G_FMT, S_FMT, REQBUFS = 0xC0D05604, 0xC0D05605, 0xC0145608
def fcc(s): return struct.unpack("<I", s.encode())[0]
def fmt(fd, req=None):
    b = bytearray(208)
    struct.pack_into("I", b, 0, 1)
    if req:
        struct.pack_into("IIII", b, 8, req[1], req[2], fcc(req[0]), 1)
    fcntl.ioctl(fd, S_FMT if req else G_FMT, b)
    w, h, p = struct.unpack_from("III", b, 8)
    return (struct.pack("<I", p).decode(), w, h)
def reqbufs(fd, n):
    fcntl.ioctl(fd, REQBUFS, bytearray(struct.pack("IIII4x", n, 1, 1, 0)))
rgb, raw = os.open(sys.argv[1], os.O_RDWR), os.open(sys.argv[2], os.O_RDWR)
assert fmt(rgb, ("BGR3", 320, 240)) == ("BGR3", 320, 240)
assert fmt(raw) == ("RGGB", 320, 240), fmt(raw)
assert fmt(raw, ("BA10", 200, 100)) == ("BA10", 200, 100)
assert fmt(rgb) == ("BGR3", 200, 100), fmt(rgb)
reqbufs(raw, 2)
try:
    fmt(rgb, ("BGR3", 320, 240))
    raise SystemExit("size change while the raw node holds buffers")
except OSError as e:
    assert e.errno == errno.EBUSY, e
assert fmt(rgb) == ("BGR3", 200, 100) and fmt(raw) == ("BA10", 200, 100)
assert fmt(rgb, ("XR24", 200, 100)) == ("XR24", 200, 100)  # raw node unchanged
reqbufs(raw, 0)
assert fmt(rgb, ("RGB3", 320, 240)) == ("RGB3", 320, 240)
assert fmt(raw) == ("BA10", 320, 240), fmt(raw)
print("    follow, EBUSY while holding buffers, layout-only change allowed")
PY
mc --get-v4l2 '"Sensor A":0' | grep -q "fmt:SGRBG10_1X10/320x240" || fail "sensor not SGRBG10 320x240"
mc --get-v4l2 '"Debayer A":1' | grep -q "fmt:RGB888_1X24/320x240" || fail "debayer source not RGB888 320x240"
v4l2-ctl -d "$raw" --stream-mmap --stream-count=2 --stream-to="$out/raw.raw" || fail "raw stream"
[ "$(stat -c %s "$out/raw.raw")" = $((320 * 240 * 2 * 2)) ] || fail "raw: $(stat -c %s "$out/raw.raw") bytes"
v4l2-ctl -d "$vid" --stream-mmap --stream-count=2 --stream-to="$out/rgb.raw" || fail "rgb stream"
bars "$out/rgb.raw" 320 240 RGB3 >/dev/null || fail "RGB frame after the raw node set SGRBG10"
log "formats follow between nodes; EBUSY while the other node holds buffers"

# A sub-device changed behind the node's back: stream on refused until
# the node's S_FMT sets the pipeline up again.
mc -V '"Sensor A":0[fmt:SGRBG10_1X10/160x120]' || fail "media-ctl -V"
err=$(v4l2-ctl -d "$vid" --stream-mmap --stream-count=1 --stream-to=/dev/null --verbose 2>&1 || true)
echo "$err" | grep -q "VIDIOC_STREAMON returned -1 (Broken pipe)" || fail "stream on after media-ctl: $err"
v4l2-ctl -d "$vid" -v width=320,height=240,pixelformat=RGB3 || fail "S_FMT"
v4l2-ctl -d "$vid" --stream-mmap --stream-count=2 --stream-to="$out/again.raw" || fail "stream after S_FMT"
bars "$out/again.raw" 320 240 RGB3 >/dev/null || fail "frame after S_FMT"
log "sensor set by media-ctl: stream on EPIPE; S_FMT on the node: streams again"

# While one node streams, the other cannot change the pipeline.
stream_bg -d "$raw" --stream-mmap --stream-count=100000 --stream-to=/dev/null ||
	fail "raw stream ended early or never began"
busy=$(v4l2-ctl -d "$vid" -v width=160,height=120,pixelformat=RGB3 2>&1 || true)
[ -d /proc/$sp ] || fail "raw stream ended early"
kill $sp
wait $sp 2>/dev/null || true
echo "$busy" | grep -qi "busy" || fail "RGB S_FMT while the raw node streamed: $busy"
mc --get-v4l2 '"Sensor A":0' | grep -q "fmt:SGRBG10_1X10/320x240" || fail "sensor changed while streaming"
log "S_FMT refused while the other node streams (EBUSY)"

# v4l2-compliance in this mode: both nodes streaming, the media device.
v4l2-ctl -d "$vid" -v width=64,height=48,pixelformat=RGB3 || fail "small format"
for n in "$vid" "$raw"; do
	cout=$(v4l2_compliance -d "$n" -s 2>&1 || true)
	compliance_ok "$cout" "v4l2-compliance -s on $n (video-centric)"
	echo "$cout" | grep -q "test MMAP (select, REQBUFS): OK" || fail "v4l2-compliance did not stream on $n"
done
mout=$(v4l2_compliance -m "$mdev" 2>&1 || true)
compliance_ok "$mout" "v4l2-compliance -m $mdev (video-centric)"
log "v4l2-compliance -s on both nodes and -m: 0 failures, 0 warnings"
rmmod vimc_debayer || fail "rmmod"
