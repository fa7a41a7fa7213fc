# vimc_debayer's lifecycle and concurrency: /dev/media appears only with
# the whole graph built (watched through MEDIA_IOC_G_TOPOLOGY while the
# module loads); a sensor set_fmt racing stream-on never starts an
# unvalidated pipeline; rmmod with a node open or buffers still mmapped is
# refused and works once they are gone; the streaming thread is frozen
# during suspend (pm_test freezer) and frames continue after.
ctrl=/sys/kernel/debug/dynamic_debug/control
watch=$REPO/build/vm/vimc-media-watch.txt
stop=$REPO/build/vm/vimc-media-watch.stop
# A failure part-way must not leave a flipper, an mmap holder, a stream or
# the pm_test mode behind for the next test.
cleanup() {
	touch "$stop"
	[ ! -w /sys/power/pm_test ] || echo none >/sys/power/pm_test
	echo 'module vimc_debayer -p' >"$ctrl" 2>/dev/null || true
	kill $(jobs -p) 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT

# --- /dev/media during load ---------------------------------------------
# Every successful look at our media device, while it loads and just after,
# must show what the finished graph shows: the same entities, interfaces
# (device nodes), pads and links.
media_watch() { # OUT STOPFILE
	python3 - "$@" <<'PY'
import fcntl, glob, os, struct, sys
out, stop = sys.argv[1], sys.argv[2]
DEVICE_INFO, G_TOPOLOGY = 0xC1007C00, 0xC0487C04
seen, scans = {}, 0
# At least one scan: with the stop file already there, exactly one.
while scans == 0 or not os.path.exists(stop):
    scans += 1
    for path in glob.glob("/dev/media*"):
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            info = bytearray(256)
            fcntl.ioctl(fd, DEVICE_INFO, info)
            if info[:16].split(b"\0")[0] != b"vimc_debayer":
                continue
            topo = bytearray(72)
            fcntl.ioctl(fd, G_TOPOLOGY, topo)
            f = struct.unpack("<QIIQIIQIIQIIQ", topo)
            key = (f[1], f[4], f[7], f[10])
            seen[key] = seen.get(key, 0) + 1
        except OSError:
            pass
        finally:
            os.close(fd)
with open(out, "w") as o:
    print("scans", scans, file=o)
    for (e, i, p, l), n in sorted(seen.items()):
        print(f"entities={e} interfaces={i} pads={p} links={l} seen={n}", file=o)
PY
}
for cycle in 1 2; do
	rm -f "$stop" "$watch"
	media_watch "$watch" "$stop" &
	wpid=$!
	sleep 0.5
	mark "vimc load $cycle"
	insmod_ours vimc_debayer || fail "insmod"
	wait_dmesg "faux_driver vimc_debayer: pipeline ready" 30 || fail "no 'pipeline ready' line"
	sleep 0.5
	touch "$stop"
	wait $wpid || fail "media watcher"
	# The finished graph, through the same ioctl.
	media_watch "$watch.final" "$stop"
	final=$(grep -v '^scans' "$watch.final" | sed 's/ seen=.*//' | sort -u)
	[ "$(echo "$final" | wc -l)" = 1 ] && [ -n "$final" ] || fail "finished graph not seen once: $(cat "$watch.final")"
	got=$(grep -v '^scans' "$watch" | sed 's/ seen=.*//' | sort -u)
	[ -n "$got" ] || fail "cycle $cycle: the watcher never opened our media device: $(cat "$watch")"
	[ "$got" = "$final" ] || fail "cycle $cycle: a partial graph was visible: $got (finished: $final)"
	log "load $cycle: $(awk '/^scans/ {print $2}' "$watch") scans, every look saw the finished graph ($final)"
	[ $cycle = 2 ] || rmmod vimc_debayer || fail "rmmod"
done
echo "$final" | grep -q "entities=5 interfaces=5 " || fail "finished graph is not 5 entities with 5 nodes: $final"

mdev=$(media_of vimc_debayer) || fail "no vimc_debayer media device"
mc() { media-ctl -d "$mdev" "$@"; }
vid=$(mc -e Capture)
sensor=$(mc -e "Sensor A")

# --- set_fmt racing stream-on -------------------------------------------
# The sensor and the debayer's sink flip between the pipeline's size and
# another; each stream-on either fails (EPIPE, or EBUSY for a flip) or
# streams a whole frame of colour bars at the pipeline's size.
vimc_setup "$mdev" Capture SRGGB8_1X8 640 480 3 || fail "pipeline format"
debayer=$(mc -e "Debayer A")
# Frames in the guest's memory (the shared build directory is slow).
race=/tmp/vimc-race
rm -rf "$race"
mkdir -p "$race"
bars_ok() { python3 "$REPO/tests/vm/frame_bars.py" "$@" 640 480 RGB3 >/dev/null; } # FILE...
rm -f "$stop"
(
	flips=0
	while [ ! -e "$stop" ]; do
		# EBUSY while a stream runs is expected.
		for sd in "$sensor" "$debayer"; do
			v4l2-ctl -d "$sd" --set-subdev-fmt pad=0,width=320,height=240 >/dev/null 2>&1 || true
			v4l2-ctl -d "$sd" --set-subdev-fmt pad=0,width=640,height=480 >/dev/null 2>&1 || true
		done
		flips=$((flips + 1))
	done
	echo "$flips" >"$stop.flips"
) &
flipper=$!
ok=0 refused=0 frames=()
# v4l2-ctl exits 0 even when VIDIOC_STREAMON fails, so its verbose output
# tells a refused start from a streamed one.
# Up to 25 starts; enough once both outcomes were seen (refusals are the
# rarer: 4 in 22 starts in one run).  The frames are checked together
# below (a python start per frame costs more than the frame).
for i in $(seq 25); do
	[ $ok -ge 4 ] && [ $refused -ge 2 ] && break
	frame=$race/$i.raw
	out=$(v4l2-ctl -d "$vid" --verbose --stream-mmap --stream-count=1 --stream-to="$frame" 2>&1) || true
	sz=$(stat -c %s "$frame" 2>/dev/null || echo 0)
	if [ "$sz" = $((640 * 480 * 3)) ]; then
		frames+=("$frame")
		ok=$((ok + 1))
	elif [ "$sz" = 0 ] && echo "$out" | grep -qE "VIDIOC_STREAMON returned -1 \((Broken pipe|Device or resource busy)\)"; then
		refused=$((refused + 1))
	else
		fail "iteration $i: $sz bytes, not one 640x480 RGB24 frame nor a refused start: $(echo "$out" | tail -3)"
	fi
done
touch "$stop"
wait $flipper || fail "format flipper"
for sd in "$sensor" "$debayer"; do
	v4l2-ctl -d "$sd" --set-subdev-fmt pad=0,width=640,height=480 >/dev/null || fail "$sd back to 640x480"
done
[ $ok -gt 0 ] && [ $refused -gt 0 ] || fail "race not exercised: $ok streamed, $refused refused ($(cat "$stop.flips") flips)"
frame=$race/after.raw
v4l2-ctl -d "$vid" --stream-mmap --stream-count=1 --stream-to="$frame" >/dev/null || fail "stream after the race"
bars_ok "${frames[@]}" "$frame" || fail "a frame streamed during or after the race is not tpg's colour bar"
rm -rf "$race"
log "set_fmt racing stream-on ($(cat "$stop.flips") flips of two entities): $ok whole frames of colour bars, $refused refused"

# --- rmmod with a node open or buffers mmapped ---------------------------
rmmod_refused() { # WHAT
	local err
	if err=$(rmmod vimc_debayer 2>&1); then fail "rmmod succeeded with $1"; fi
	echo "$err" | grep -q "in use" || fail "rmmod with $1: $err"
}
exec 3<>"$vid"
rmmod_refused "$vid open"
exec 3>&-
exec 3<>"$(mc -e "Debayer A")"
rmmod_refused "the debayer's sub-device node open"
exec 3>&-
# Two MMAP buffers mapped, the file closed: the mapping keeps the file.
held=$REPO/build/vm/vimc-mmap.held
rm -f "$held" "$stop"
python3 - "$vid" "$held" "$stop" <<'PY' &
import fcntl, mmap, os, struct, sys, time
vid, held, stop = sys.argv[1:]
REQBUFS, QUERYBUF, CAPTURE, MMAP = 0xC0145608, 0xC0585609, 1, 1
fd = os.open(vid, os.O_RDWR)
req = bytearray(struct.pack("<IIII4x", 2, CAPTURE, MMAP, 0))
fcntl.ioctl(fd, REQBUFS, req)
maps = []
for i in range(2):
    b = bytearray(88)
    struct.pack_into("<II", b, 0, i, CAPTURE)
    struct.pack_into("<I", b, 60, MMAP)
    fcntl.ioctl(fd, QUERYBUF, b)
    off, length = struct.unpack_from("<I", b, 64)[0], struct.unpack_from("<I", b, 72)[0]
    maps.append(mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=off))
os.close(fd)
maps[0][0] = 0x5a
open(held, "w").close()
while not os.path.exists(stop):
    time.sleep(0.05)
for m in maps:
    m.close()
PY
mapper=$!
for i in $(seq 100); do [ -e "$held" ] && break; sleep 0.1; done
[ -e "$held" ] || fail "buffers not mapped"
rmmod_refused "buffers mmapped after close"
touch "$stop"
wait $mapper || fail "mmap helper"
log "rmmod refused with the video node, a sub-device node or an mmap held"

# --- freezing while streaming ---------------------------------------------
[ -w /sys/power/pm_test ] || fail "no /sys/power/pm_test (CONFIG_PM_DEBUG)"
echo 2 >/sys/module/suspend/parameters/pm_test_delay || fail "no suspend.pm_test_delay"
echo 'module vimc_debayer format "frame tick" +p' >"$ctrl" || fail "enable frame ticks"
mark "vimc freeze"
v4l2-ctl -d "$vid" --stream-mmap --stream-count=120 --stream-to=/dev/null >/dev/null &
streamer=$!
wait_dmesg "frame tick" 30 || fail "stream did not start"
sleep 0.5
echo freezer >/sys/power/pm_test
echo freeze >/sys/power/state || { echo none >/sys/power/pm_test; fail "freeze (pm_test freezer) failed"; }
echo none >/sys/power/pm_test
wait $streamer || fail "stream across the freeze"
echo 'module vimc_debayer format "frame tick" -p' >"$ctrl"
dmesg_since | awk 'BEGIN {phase = 0}
	/Freezing remaining freezable tasks completed/ {phase = 1; next}
	/Restarting tasks/ && phase == 1 {phase = 2; next}
	/frame tick/ {n[phase]++}
	END {
		printf "    ticks: %d before the freeze, %d frozen, %d after\n", n[0], n[1], n[2]
		exit !(phase == 2 && n[0] >= 5 && n[1] == 0 && n[2] >= 5)
	}' || fail "streaming thread not frozen and resumed: $(dmesg_since | grep -E 'Freezing|Restarting|PM:' | head)"
log "thread frozen during pm_test freezer, frames before and after"

rmmod vimc_debayer || fail "rmmod"
check_splats
