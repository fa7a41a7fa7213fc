# vimc_debayer's media graph as userspace sees it: entities, pads and
# links in media-ctl, pad format negotiation and clamping through the
# subdev API, the window control, and v4l2-compliance on the media device
# and every subdev node.
insmod_ours vimc_debayer
wait_dmesg "faux_driver vimc_debayer: pipeline ready" 30 || fail "no 'pipeline ready' line"
mdev=$(media_of vimc_debayer) || fail "no vimc_debayer media device"
mc() { media-ctl -d "$mdev" "$@"; }
topo=$(mc -p)
echo "$topo" | grep -E "^- entity|^\s+pad|->|<-" | sed 's/^/    /'
for e in "Sensor A" "Debayer A" "Scaler" "Capture" "Raw Capture 0"; do
	echo "$topo" | grep -q "^- entity [0-9]*: $e " || fail "no entity '$e'"
done
echo "$topo" | grep -q '"Debayer A":0 \[ENABLED,IMMUTABLE\]' || fail "Sensor A -> Debayer A link missing or not enabled"
echo "$topo" | grep -q '"Scaler":0 \[ENABLED,IMMUTABLE\]' || fail "Debayer A -> Scaler link missing or not enabled"
echo "$topo" | grep -q '"Raw Capture 0":0 \[ENABLED,IMMUTABLE\]' || fail "Sensor A -> Raw Capture 0 link missing or not enabled"
log "topology: Sensor A -> Debayer A -> Scaler -> Capture, Sensor A -> Raw Capture 0, links enabled"

fmt() { mc --get-v4l2 "$1" | grep -o 'fmt:[^] ]*'; }
expect_fmt() { # PAD WANT
	got=$(fmt "$1")
	[ "$got" = "fmt:$2" ] || fail "$1: $got, want fmt:$2"
}
# Defaults, then a supported Bayer format through the sensor and debayer
# sink; the debayer source follows the sink's size.
expect_fmt '"Sensor A":0' SRGGB8_1X8/640x480
expect_fmt '"Debayer A":1' RGB888_1X24/640x480
mc -V '"Sensor A":0[fmt:SBGGR8_1X8/1920x1080]' || fail "set sensor format"
expect_fmt '"Sensor A":0' SBGGR8_1X8/1920x1080
# The debayer's format decisions print through dynamic debug: silent
# until enabled per file, then one line per decision.
ctrl=/sys/kernel/debug/dynamic_debug/control
mark "vimc format prints off"
mc -V '"Debayer A":0[fmt:SGBRG12_1X12/322x242]' || fail "set debayer sink"
! dmesg_since | grep -q "debayer: sink" || fail "format decision printed while dynamic debug is off"
echo "file debayer.rs +p" >"$ctrl" || fail "enable debayer.rs prints"
grep -q "debayer.rs:[0-9]* \[vimc_debayer\]set_fmt =p " "$ctrl" ||
	fail "debayer.rs set_fmt site not enabled: $(grep debayer.rs "$ctrl")"
mark "vimc format prints on"
mc -V '"Debayer A":0[fmt:SGBRG12_1X12/322x242]' || fail "set debayer sink"
dmesg_since | grep -q "debayer: sink 322x242 0x3010 -> 322x242 0x3010" ||
	fail "no format decision print: $(dmesg_since | tail -3)"
echo "file debayer.rs -p" >"$ctrl"
log "format decisions print only when enabled (file debayer.rs +p)"
expect_fmt '"Debayer A":1' RGB888_1X24/322x242
mc -V '"Debayer A":1[fmt:BGR888_1X24/8x8]' || fail "set debayer source"
expect_fmt '"Debayer A":1' BGR888_1X24/322x242
# Unsupported code and out-of-range sizes clamp.
mc -V '"Debayer A":0[fmt:YUYV8_2X8/1x99999]' || fail "set bad debayer sink"
expect_fmt '"Debayer A":0' SRGGB8_1X8/16x2160
mc -V '"Debayer A":1[fmt:SBGGR8_1X8/16x2160]' || fail "set bayer code on debayer source"
expect_fmt '"Debayer A":1' BGR888_1X24/16x2160
mc -V '"Sensor A":0[fmt:SRGGB10_1X10/99999x3]' || fail "set big sensor size"
expect_fmt '"Sensor A":0' SRGGB10_1X10/4096x16
log "formats: supported codes kept, others clamped, source follows sink"
# Scaler: Bayer sink accepted; crop clamps inside and to even edges for
# Bayer; the source size is free, the code follows the sink.
mc -V '"Scaler":0[fmt:SGRBG8_1X8/640x480]' || fail "set scaler sink"
mc -V '"Scaler":0[crop:(3,5)/101x99]' || fail "set scaler crop"
crop=$(mc --get-v4l2 '"Scaler":0' | grep -o 'crop:([^] ]*')
[ "$crop" = "crop:(2,4)/100x98" ] || fail "scaler crop $crop, want (2,4)/100x98"
mc -V '"Scaler":0[crop:(600,470)/100x100]' || fail "set scaler crop"
crop=$(mc --get-v4l2 '"Scaler":0' | grep -o 'crop:([^] ]*')
[ "$crop" = "crop:(540,380)/100x100" ] || fail "scaler crop $crop, want (540,380)/100x100"
mc -V '"Scaler":1[fmt:RGB888_1X24/1280x960]' || fail "set scaler source"
expect_fmt '"Scaler":1' SGRBG8_1X8/1280x960
log "scaler: Bayer sink, crop clamped to even edges inside the frame, source size free"

# The window control: odd 1..25, default 3; the control framework clamps
# and rounds to the step, so it can never hold an even size.
dsub=""
for s in /sys/class/video4linux/v4l-subdev*; do
	[ "$(cat "$s/name")" = "Debayer A" ] && dsub=/dev/$(basename "$s")
done
[ -n "$dsub" ] || fail "no subdev node for Debayer A"
win() { v4l2-ctl -d "$dsub" --get-ctrl debayer_mean_window_size | awk '{print $2}'; }
[ "$(win)" = 3 ] || fail "default window $(win)"
for pair in 5:5 4:5 2:3 30:25 0:1 25:25 1:1; do
	v4l2-ctl -d "$dsub" --set-ctrl "debayer_mean_window_size=${pair%:*}" 2>/dev/null || true
	[ "$(win)" = "${pair#*:}" ] || fail "window ${pair%:*} read back $(win), want ${pair#*:}"
done
log "window control: odd 1..25 only (even rounds up, out of range clamps)"

# v4l2-compliance on the media device: it tests every interface the media
# graph names (2 video nodes, 3 subdev nodes).
out=$(v4l2_compliance -m "$mdev" 2>&1 || true)
compliance_ok "$out" "v4l2-compliance -m $mdev"
nvid=$(echo "$out" | grep -c "^Total for vimc_debayer device /dev/video" || true)
nsub=$(echo "$out" | grep -c "^Total for vimc_debayer device /dev/v4l-subdev" || true)
[ "$nvid" = 2 ] && [ "$nsub" = 3 ] || fail "v4l2-compliance -m tested $nvid video and $nsub subdev nodes, want 2 and 3"
echo "$out" | grep -qE "^Grand Total for vimc_debayer device $mdev: " || fail "v4l2-compliance -m: no grand total"
log "v4l2-compliance -m $mdev: 2 video nodes, 3 subdevs, 0 failures, 0 warnings"
# An open node pins the module (the entities live until module exit).
for node in "$dsub" "$mdev"; do
	exec 3<"$node"
	! rmmod vimc_debayer 2>/dev/null || fail "rmmod succeeded with $node open"
	exec 3<&-
done
log "rmmod refused while a subdev or media node is open"
rmmod vimc_debayer
dmesg_since | grep -q "faux_driver vimc_debayer: pipeline released" || fail "pipeline not released"
