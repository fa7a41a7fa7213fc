# In-guest half of make bench's vimc part: in-tree vimc and vimc_debayer,
# one boot, 1920x1080 SBGGR8 and SBGGR12 -> RGB888 through sensor ->
# debayer -> scaler (1:1) -> capture, debayer windows 1, 3, 11 and 25.  Per
# run: fps from the capture buffers' timestamps (the first frame left out),
# the debayer's time per frame and the capture's copy of the frame into the
# buffer (the machine's limit: a memcpy of the output frame) — ours from
# debugfs `timing`, vimc's from the ftrace function profiler on
# vimc_debayer_process_frame and vimc_capture_process_frame — and whether
# the last frames of both drivers are byte-identical.
# tools/bench-report-vimc turns the results into the JSON and the table.
# Environment: BENCH_OUT (results dir), BENCH_KO (where vimc_debayer.ko is),
# BENCH_JSON (file to write), BENCH_SUMMARY (the table, a file the host
# prints: the end of a guest's console output can be lost at power-off), BENCH_VIMC_FRAMES (frames timed per run), BENCH_VIMC_WINDOWS,
# BENCH_VIMC_CODES (what to run), BENCH_KERNEL_DESC and BENCH_QEMU_DESC
# (recorded in each run),
# BENCH_VIMC_DEMO=1: instead, capture one 640x480 frame through ours as
# $BENCH_OUT/vimc.png.
set -euo pipefail
. "$RFL_REPO/tests/vm/lib.sh"
out=${BENCH_OUT:?} ko=${BENCH_KO:?}
frames=${BENCH_VIMC_FRAMES:-4}
[ "$frames" -ge 2 ] || fail "BENCH_VIMC_FRAMES must be at least 2 (fps needs two intervals)"
mkdir -p "$out"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
echo "rfl-test-begin bench-vimc" >/dev/kmsg
REPO=$ko insmod_ours vimc_debayer || fail "insmod vimc_debayer"
wait_dmesg "faux_driver vimc_debayer: pipeline ready" 5 || fail "vimc_debayer not ready"
ours=$(media_of vimc_debayer) || fail "no vimc_debayer media device"
timing=/sys/kernel/debug/vimc_debayer/timing

if [ "${BENCH_VIMC_DEMO:-0}" = 1 ]; then
	vimc_setup "$ours" Capture SRGGB8_1X8 640 480 3 || fail "pipeline setup"
	"$RFL_REPO/tools/vimc-png" -d "$(media-ctl -d "$ours" -e Capture)" -o "$out/vimc.png" || fail "tools/vimc-png"
	{
		echo "vimc_debayer: 640x480 SRGGB8 -> RGB24, window 3; per-entity times (debugfs timing):"
		sed 's/^/  /' "$timing"
	} >"${BENCH_SUMMARY:?}"
	check_splats
	exit 0
fi

tr=/sys/kernel/tracing
mountpoint -q "$tr" || mount -t tracefs none "$tr"
[ -w "$tr/function_profile_enabled" ] || fail "no ftrace function profiler (the bench kernel has one)"
modprobe vimc || fail "modprobe vimc"
theirs=$(media_of vimc) || fail "no vimc media device"
# vimc's on-screen text off, so that its frames can equal ours.
v4l2-ctl -d "$(media-ctl -d "$theirs" -e "Sensor A")" -c show_information=2 || fail "vimc OSD off"
w=1920 h=1080
windows=${BENCH_VIMC_WINDOWS:-1 3 11 25}
codes=${BENCH_VIMC_CODES:-SBGGR8_1X8 SBGGR12_1X12}
: >"$out/runs.txt"
: >"$out/identical.txt"
for win in $windows; do
	for code in $codes; do
		for drv in vimc vimc_debayer; do
			if [ $drv = vimc ]; then m=$theirs cap="RGB/YUV Capture"; else m=$ours cap=Capture; fi
			vimc_setup "$m" "$cap" "$code" $w $h "$win" || fail "$drv $code setup window $win"
			dev=$(media-ctl -d "$m" -e "$cap")
			if [ $drv = vimc ]; then
				# The debayer and the capture's copy into the buffer (a memcpy
				# of the frame), both timed by the function profiler.
				printf '%s\n' vimc_debayer_process_frame vimc_capture_process_frame >"$tr/set_ftrace_filter"
				echo 0 >"$tr/function_profile_enabled"
				echo 1 >"$tr/function_profile_enabled" # starts from zero
			else
				echo 0 >"$timing"
			fi
			log "$drv $code window $win: $((frames + 1)) frames of ${w}x$h"
			v4l2-ctl -d "$dev" --stream-mmap --stream-count=$((frames + 1)) --verbose \
				--stream-to="/tmp/bench-$drv.raw" >"$out/stream-$drv-$code-$win.log" 2>&1 || fail "$drv stream"
			if [ $drv = vimc ]; then
				echo 0 >"$tr/function_profile_enabled"
				cat "$tr"/trace_stat/function* >"$out/profile-$drv-$code-$win.txt"
			else
				cp "$timing" "$out/profile-$drv-$code-$win.txt"
			fi
			tail -c $((w * h * 3)) "/tmp/bench-$drv.raw" >"/tmp/frame-$drv-$code"
			rm -f "/tmp/bench-$drv.raw"
			echo "$drv $code $win" >>"$out/runs.txt"
		done
	done
	# Ours against vimc: the same code byte for byte; a deeper code against
	# vimc's 8-bit frame of the same order (vimc keeps the low byte of a
	# deeper mean, we keep its top 8 bits; Documentation/vimc-debayer.rst).
	for code in $codes; do
		ref=${code%%[0-9]*}8_1X8
		[ -f "/tmp/frame-vimc-$ref" ] || ref=$code
		python3 - "/tmp/frame-vimc-$ref" "/tmp/frame-vimc_debayer-$code" "$code" "$ref" "$win" <<'PY' >>"$out/identical.txt"
import sys
a, b = (open(f, "rb").read() for f in sys.argv[1:3])
diff = [abs(x - y) for x, y in zip(a, b) if x != y] if len(a) == len(b) else [256]
print(sys.argv[3], sys.argv[5], sys.argv[4], len(diff), max(diff, default=0))
PY
	done
	rm -f /tmp/frame-*
done
check_splats
BENCH_KERNEL_DESC=${BENCH_KERNEL_DESC:-$(uname -r)} \
	python3 "$RFL_REPO/tools/bench-report-vimc" "$out" "${BENCH_JSON:?}" $w $h "$frames" >"${BENCH_SUMMARY:?}"
