# In-guest half of make bench's vimc part: in-tree vimc and vimc_debayer,
# one boot, 1920x1080 SBGGR8 -> RGB888 through sensor -> debayer -> scaler
# (1:1) -> capture, debayer windows 3 and 11.  Per run: fps from the
# capture buffers' timestamps (the first frame left out), the debayer's
# time per frame — ours from debugfs `timing`, vimc's from the ftrace
# function profiler on vimc_debayer_process_frame — and whether the last
# frames of both drivers are byte-identical.
# Environment: BENCH_OUT (results dir), BENCH_KO (where vimc_debayer.ko is),
# BENCH_JSON (file to write), BENCH_SUMMARY (the printed table, also as a
# file), BENCH_VIMC_FRAMES (frames timed per run),
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
	} | tee "${BENCH_SUMMARY:?}"
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
w=1920 h=1080 code=SBGGR8_1X8
: >"$out/runs.txt"
: >"$out/identical.txt"
for win in 3 11; do
	for drv in vimc vimc_debayer; do
		if [ $drv = vimc ]; then m=$theirs cap="RGB/YUV Capture"; else m=$ours cap=Capture; fi
		vimc_setup "$m" "$cap" $code $w $h "$win" || fail "$drv setup window $win"
		dev=$(media-ctl -d "$m" -e "$cap")
		if [ $drv = vimc ]; then
			echo vimc_debayer_process_frame >"$tr/set_ftrace_filter"
			echo 0 >"$tr/function_profile_enabled"
			echo 1 >"$tr/function_profile_enabled" # starts from zero
		else
			echo 0 >"$timing"
		fi
		log "$drv window $win: $((frames + 1)) frames of ${w}x$h"
		v4l2-ctl -d "$dev" --stream-mmap --stream-count=$((frames + 1)) --verbose \
			--stream-to="/tmp/bench-$drv.raw" >"$out/stream-$drv-$win.log" 2>&1 || fail "$drv stream"
		if [ $drv = vimc ]; then
			echo 0 >"$tr/function_profile_enabled"
			cat "$tr"/trace_stat/function* >"$out/profile-$drv-$win.txt"
		else
			cp "$timing" "$out/profile-$drv-$win.txt"
		fi
		tail -c $((w * h * 3)) "/tmp/bench-$drv.raw" >"/tmp/frame-$drv"
		rm -f "/tmp/bench-$drv.raw"
		echo "$drv $win" >>"$out/runs.txt"
	done
	if cmp -s /tmp/frame-vimc /tmp/frame-vimc_debayer; then echo "$win 1"; else echo "$win 0"; fi >>"$out/identical.txt"
done
check_splats
python3 - "$out" "${BENCH_JSON:?}" $w $h $code "$frames" <<'PY' | tee "${BENCH_SUMMARY:?}"
import json, re, sys
out, dest, w, h, code, frames = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
same = dict(l.split() for l in open(f"{out}/identical.txt"))
runs = []
for line in open(f"{out}/runs.txt"):
    drv, win = line.split()
    ts = [float(t) for t in re.findall(r"\bts: (\d+\.\d+)", open(f"{out}/stream-{drv}-{win}.log").read())]
    assert len(ts) == frames + 1, f"{drv} window {win}: {len(ts)} buffer timestamps, want {frames + 1}"
    fps = (len(ts) - 2) / (ts[-1] - ts[1])  # the first frame includes stream start
    prof = open(f"{out}/profile-{drv}-{win}.txt").read()
    if drv == "vimc":
        # trace_stat/functionN: name, hits, total time "N.NNN us", ... per CPU
        hits = total_us = 0
        for m in re.finditer(r"^\s*vimc_debayer_process_frame\s+(\d+)\s+([\d.]+) us", prof, re.M):
            hits += int(m.group(1))
            total_us += float(m.group(2))
        ms = total_us / hits / 1000 if hits else None
    else:
        m = re.search(r"^Debayer A: frames=(\d+) .* avg_ns=(\d+)", prof, re.M)
        ms = int(m.group(2)) / 1e6 if m and int(m.group(1)) else None
    runs.append({"driver": drv, "width": w, "height": h, "code": code, "window": int(win),
                 "frames": frames, "fps": round(fps, 3),
                 "debayer_ms_per_frame": None if ms is None else round(ms, 3),
                 "identical_to_vimc": same[win] == "1"})
json.dump(runs, open(dest, "w"), indent=1)
print(f"{'driver':<14}{'window':>7}{'fps':>9}{'debayer ms/frame':>18}{'identical':>11}")
for r in runs:
    ms = r["debayer_ms_per_frame"]
    print(f"{r['driver']:<14}{r['window']:>7}{r['fps']:>9.2f}{'n/a' if ms is None else f'{ms:.1f}':>18}{str(r['identical_to_vimc']):>11}")
for win in sorted({r["window"] for r in runs}):
    a = {r["driver"]: r for r in runs if r["window"] == win}
    v, o = a["vimc"]["debayer_ms_per_frame"], a["vimc_debayer"]["debayer_ms_per_frame"]
    if v and o:
        print(f"window {win}: debayer throughput ours/vimc = {v / o:.1f}x, fps ours/vimc = {a['vimc_debayer']['fps'] / a['vimc']['fps']:.2f}x")
PY
