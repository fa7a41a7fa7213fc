# Oracle: in-tree vimc and vimc_debayer stream the same sensor pattern
# (v4l2-tpg's 75% colour bar, vimc's on-screen text off) through sensor ->
# debayer -> scaler (1:1) -> capture at the same format, size and window;
# the RGB frames must be byte-identical, and so must the raw nodes' Bayer
# frames.  For 10- and 12-bit input vimc
# keeps the low byte of the mean where we keep its top 8 bits (on purpose,
# Documentation/vimc-debayer.rst); as tpg stores those samples as the 8-bit
# value shifted up, our 10/12-bit frame must equal vimc's 8-bit frame of the
# same Bayer order, except at colour bar edges where tpg's deeper samples
# carry more precision: there a few bytes may differ by 1, and that is
# all that is allowed for them.

modprobe vimc || fail "cannot load in-tree vimc"
insmod_ours vimc_debayer || fail "insmod"
wait_dmesg "faux_driver vimc_debayer: pipeline ready" 30 || fail "no 'pipeline ready' line"
theirs=$(media_of vimc) || fail "no media device of in-tree vimc"
ours=$(media_of vimc_debayer) || fail "no vimc_debayer media device"
subdev_of() { media-ctl -d "$1" -e "$2"; }
v4l2-ctl -d "$(subdev_of "$theirs" "Sensor A")" -c show_information=2 || fail "vimc OSD off (Show Information: None)"

grab() { # MDEV CAPTURE_ENTITY FILE
	v4l2-ctl -d "$(media-ctl -d "$1" -e "$2")" --stream-mmap --stream-count=2 --stream-to="$3"
}
d=$REPO/build/vm
n=0 nraw=0
for pair in SRGGB8_1X8 SBGGR8_1X8 SGBRG8_1X8 SGRBG8_1X8 SBGGR10_1X10:SBGGR8_1X8 SGRBG12_1X12:SGRBG8_1X8; do
	code=${pair%:*} vcode=${pair#*:}
	# Each combination is two streams under TCG with KASAN (~30 s with the
	# tools' start-up); the host tests cover every window and size against
	# a reference loop.
	for win in 3; do
		w=160 h=120
		vimc_setup "$theirs" "RGB/YUV Capture" $vcode $w $h $win || fail "vimc setup $vcode window $win"
		vimc_setup "$ours" "Capture" $code $w $h $win || fail "vimc_debayer setup $code window $win"
		rm -f "$d/oracle-vimc.raw" "$d/oracle-ours.raw"
		grab "$theirs" "RGB/YUV Capture" "$d/oracle-vimc.raw" || fail "vimc stream"
		grab "$ours" "Capture" "$d/oracle-ours.raw" || fail "vimc_debayer stream"
		size=$((w * h * 3))
		tail -c $size "$d/oracle-vimc.raw" >"$d/oracle-vimc.frame"
		tail -c $size "$d/oracle-ours.raw" >"$d/oracle-ours.frame"
		[ "$(stat -c %s "$d/oracle-ours.frame")" = $size ] || fail "short frame from ours"
		# Same code: byte-identical.  10/12-bit against vimc's 8-bit frame:
		# identical except where tpg's deeper samples carry precision the
		# 8-bit ones do not (colour bar edges), there by at most 1.
		tol=0
		[ "$code" = "$vcode" ] || tol=1
		# cmp for the byte-identical case; python says how they differ.
		[ $tol = 0 ] && cmp -s "$d/oracle-vimc.frame" "$d/oracle-ours.frame" && res=identical ||
		res=$(python3 - "$d/oracle-vimc.frame" "$d/oracle-ours.frame" $tol <<'PY'
import sys
a, b = (open(f, "rb").read() for f in sys.argv[1:3])
tol = int(sys.argv[3])
diff = [abs(x - y) for x, y in zip(a, b) if x != y]
ok = len(a) == len(b) and (not diff or (max(diff) <= tol and len(diff) <= len(a) // 100))
print(f"{len(diff)} bytes differ, max {max(diff, default=0)}")
sys.exit(0 if ok else 1)
PY
		) || fail "$code (vimc $vcode) ${w}x$h window $win: $res"
		[ "$code" = "$vcode" ] || log "$code window $win against vimc $vcode: $res"
		n=$((n + 1))
		# The raw nodes: the sensors' Bayer frames, byte for byte.
		if [ "$code" = "$vcode" ]; then
			rm -f "$d/oracle-vimc-raw.raw" "$d/oracle-ours-raw.raw"
			grab "$theirs" "Raw Capture 0" "$d/oracle-vimc-raw.raw" || fail "vimc raw stream"
			grab "$ours" "Raw Capture 0" "$d/oracle-ours-raw.raw" || fail "vimc_debayer raw stream"
			[ "$(stat -c %s "$d/oracle-ours-raw.raw")" = $((2 * w * h)) ] || fail "raw $code: short stream from ours"
			cmp <(tail -c $((w * h)) "$d/oracle-vimc-raw.raw") <(tail -c $((w * h)) "$d/oracle-ours-raw.raw") ||
				fail "raw $code ${w}x$h: Bayer frames differ from vimc's"
			nraw=$((nraw + 1))
		fi
	done
done
log "$n code/window combinations compared with in-tree vimc (8-bit: byte-identical)"
log "$nraw raw Bayer streams byte-identical to vimc's Raw Capture 0"
# The sensor controls: every static test pattern, the flips, brightness,
# contrast, saturation and hue at a few values, byte-identical to vimc on
# the raw and the RGB node, and a change while streaming reaching the frames.
vimc_setup "$theirs" "RGB/YUV Capture" SRGGB8_1X8 160 120 3 || fail "vimc setup for the controls"
vimc_setup "$ours" "Capture" SRGGB8_1X8 160 120 3 || fail "vimc_debayer setup for the controls"
ctl_oracle() { # VIMC_NODE OUR_NODE FRAME_BYTES WHAT
	python3 "$REPO/tests/vm/vimc_controls.py" "$(subdev_of "$ours" "Sensor A")" "$(subdev_of "$theirs" "Sensor A")" \
		"$(subdev_of "$ours" "$2")" "$(subdev_of "$theirs" "$1")" "$3" "$4"
}
out=$(ctl_oracle "Raw Capture 0" "Raw Capture 0" $((160 * 120)) raw 2>&1) || { echo "$out"; fail "sensor controls, raw node"; }
echo "$out" | tail -3
out=$(ctl_oracle "RGB/YUV Capture" "Capture" $((160 * 120 * 3)) RGB 2>&1) || { echo "$out"; fail "sensor controls, RGB node"; }
echo "$out" | tail -3
log "sensor controls byte-identical to vimc's on both nodes"
# The anchor for the compliance tests: in-tree vimc streams with 0 failures
# under the same v4l2-compliance (so a failure of ours is ours, not the tool's).
vimc_setup "$theirs" "RGB/YUV Capture" SRGGB8_1X8 64 48 3 || fail "vimc setup 64x48"
vout=$(v4l2_compliance -d "$(media-ctl -d "$theirs" -e "RGB/YUV Capture")" -s 2>&1 || true)
compliance_ok "$vout" "in-tree vimc, v4l2-compliance -s"
log "in-tree vimc: v4l2-compliance -s with 0 failures (the tool is the one ours must pass)"
rmmod vimc_debayer
rmmod vimc
