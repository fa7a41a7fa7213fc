# shellcheck shell=bash
# Helpers for in-guest tests (sourced by tests/vm/guest-run and the tests).

REPO=${RFL_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NVME_CLASS=0x010802

log() { echo "  [$(date +%T)] $*"; }
fail() { echo "  FAILED: $*"; exit 1; }

# Kernel log lines since the last mark() (of any test or subshell), or since
# the test began.
mark() { echo "rfl-test-mark $*" >/dev/kmsg; }
dmesg_since() { dmesg | awk '/rfl-test-(mark|begin)/ {n = 0; next} {l[n++] = $0} END {for (i = 0; i < n; i++) print l[i]}'; }
# A test that provokes a splat on purpose brackets it with these.
expect_splat_begin() { echo "rfl-test-expect-splat" >/dev/kmsg; }
expect_splat_end() { echo "rfl-test-expect-splat-end" >/dev/kmsg; }
# The whole test's kernel log, less the bracketed expected splats.
dmesg_test() {
	dmesg | awk '/rfl-test-begin/ {n = 0; skip = 0; next}
		/rfl-test-expect-splat-end/ {skip = 0; next}
		/rfl-test-expect-splat/ {skip = 1; next}
		!skip {l[n++] = $0} END {for (i = 0; i < n; i++) print l[i]}'
}

# Wait up to $2 seconds (default 10) for a line matching ERE $1 since the mark.
wait_dmesg() {
	# Wall-clock seconds: one dmesg scan takes most of a second under TCG
	# on the test kernel, so counting iterations would wait ~10x longer.
	local re=$1 end=$((SECONDS + ${2:-10}))
	while :; do
		dmesg_since | grep -qE "$re" && return 0
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}

# The v4l2-compliance tools/setup unpacked (the distribution's 1.22 predates
# 6.8's VIDIOC_CREATE_BUFS fields and fails every video node on 7.3).
v4l2_compliance() {
	local c=${RFL_CACHE:-$HOME/.cache/rfl-bench}/v4l-utils/bin/v4l2-compliance
	[ -x "$c" ] || fail "no $c: run tools/setup"
	"$c" "$@"
}
# compliance_ok OUTPUT WHAT: every "Total" line of v4l2-compliance OUTPUT
# reports no failure and no warning, and no test failed.
compliance_ok() {
	local out=$1 what=$2
	echo "$out" | grep -E "^(Grand )?Total|fail:|warn:" | sed 's/^/    /'
	echo "$out" | grep -qE "^(Grand )?Total for " || fail "$what: no totals (did v4l2-compliance run?)"
	! echo "$out" | grep -E "^(Grand )?Total for " | grep -qvE "Failed: 0, Warnings: 0$" ||
		fail "$what: failures or warnings"
	! echo "$out" | grep -q "fail:" || fail "$what: $(echo "$out" | grep 'fail:' | head -5)"
}

# Splats that fail any test: oopses, warnings, KASAN, lockdep, kmemleak.
SPLAT_RE='BUG:|WARNING:|KASAN|Oops|general protection fault|Kernel panic|kernel BUG|UBSAN|possible recursive locking|possible circular locking|inconsistent lock state|suspicious RCU usage|lockdep|unreferenced object|rust_panic|panicked at|nobody cared|Disabling IRQ|blocked for more than|detected stall|deprecated workqueue'
# Prints the matching lines and the log before the first (a stack dump's
# header need not match), then fails.
check_splats() {
	local s first
	s=$(dmesg_test | grep -n -E "$SPLAT_RE" || true)
	[ -z "$s" ] && return 0
	echo "$s"
	first=${s%%:*}
	echo "--- the log around the first:"
	dmesg_test | sed -n "$((first > 25 ? first - 25 : 1)),$((first + 5))p"
	fail "kernel splat in dmesg"
}

# The debugfs directory of the controller of disk or controller $1
# (rnvme0n1, /dev/rnvme0n1 or rnvme0).
ctl_dfs() {
	[[ ${1##*/} =~ ^(rnvme[0-9]+) ]] || return 1
	echo "/sys/kernel/debug/nvme_dbbuf/${BASH_REMATCH[1]}"
}

# The I/O memory of controller debugfs dir $1 once it is idle: every block
# of each pool given back exactly once (a leak or a double free on some
# completion path shows as a difference), and with $2 set (pool names),
# those were used at all.  udev's probe after a writer closes the disk
# reads through the pools too: settle, and give in-flight reads a moment.
pools_idle() {
	local m p i ok
	udevadm settle -t 10 || true
	for i in $(seq 20); do
		m=$(cat "$1/memory") || fail "no memory file in $1"
		ok=1
		for p in prp_lists sg_lists dsm_ranges; do
			grep -qE "^$p taken ([0-9]+) given_back \1 " <<<"$m" || ok=0
		done
		[ $ok = 1 ] && break
		sleep 0.5
	done
	log "$(echo $m)"
	[ $ok = 1 ] || fail "pool blocks not given back exactly once when idle: $(echo $m)"
	for p in ${2:-}; do
		grep -qE "^$p taken [1-9]" <<<"$m" || fail "$p: never used"
	done
}

# PCI addresses of all NVMe controllers.
nvme_bdfs() {
	local d
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = "$NVME_CLASS" ] && basename "$d"
	done
	return 0
}

# Name of the driver bound to PCI device $1, or empty.
pci_driver() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || true; }

# Bind PCI device $1 to driver $2 (unbinding it first), via driver_override.
pci_bind() {
	local bdf=$1 drv=$2 cur
	cur=$(pci_driver "$bdf")
	# udev's probe of the bound driver's disk would keep it (and, in-tree,
	# its subsystem) alive past the unbind.
	[ -z "$cur" ] || { udevadm settle -t 10 || true; echo "$bdf" >"/sys/bus/pci/devices/$bdf/driver/unbind"; }
	echo "$drv" >"/sys/bus/pci/devices/$bdf/driver_override"
	echo "$bdf" >"/sys/bus/pci/drivers/$drv/bind"
}
pci_unbind() {
	local bdf=$1
	[ -z "$(pci_driver "$bdf")" ] || echo "$bdf" >"/sys/bus/pci/devices/$bdf/driver/unbind"
	echo >"/sys/bus/pci/devices/$bdf/driver_override"
}

# The namespace-1 disk (/dev/...) of PCI device $1 under whichever driver has
# it: ours hangs rnvme<C>n<NSID> off the PCI device; the in-tree driver hangs
# its disk off its nvme<C> device, named after the subsystem and a head
# instance that need not be 1 (a rebound controller joins the subsystem of
# its predecessor while udev still holds that one's disk), so it is found by
# its nsid attribute.  Waits up to 10 s for the node; prints nothing if none.
blkdev_of() {
	local d i
	for i in $(seq 100); do
		for d in /sys/bus/pci/devices/$1/block/*n1 /sys/bus/pci/devices/$1/nvme/nvme*/nvme*n*; do
			[ -e "$d/dev" ] && [ -b "/dev/$(basename "$d")" ] || continue
			case $d in */nvme/*) [ "$(cat "$d/nsid" 2>/dev/null)" = 1 ] || continue ;; esac
			echo "/dev/$(basename "$d")"
			return
		done
		sleep 0.1
	done
}

# Back to no driver on any NVMe controller and no in-tree nvme module, as
# each test expects to find them (a failed test may leave them bound).
nvme_reset_bindings() {
	local b
	for b in $(nvme_bdfs); do
		pci_unbind "$b" 2>/dev/null || true
	done
	! grep -q "^nvme " /proc/modules || rmmod nvme 2>/dev/null || echo "  (could not unload nvme)"
	# A regular file where a disk's node belongs (a program that opened the
	# name after the disk went) would keep devtmpfs from creating the node.
	for b in /dev/rnvme* /dev/nvme*; do
		[ ! -f "$b" ] || { echo "  (removed a regular file $b)"; rm -f "$b"; }
	done
}

# Runs v4l2-ctl "$@" in the background (its pid in $sp) and waits up to 60 s
# until the pipeline has produced a frame more (the driver's per-entity
# frame counters): a program's start takes seconds under TCG, longer in a
# busy guest, so no fixed sleep says that it is streaming.  False if it
# ended or the time ran out.
stream_bg() {
	local t=/sys/kernel/debug/vimc_debayer/timing i n0
	frames() { sed -n 's/.* frames=\([0-9]*\) .*/\1/p' "$t" | awk '{s += $1} END {print s + 0}'; }
	n0=$(frames)
	v4l2-ctl "$@" &
	sp=$!
	for ((i = 0; i < 600; i++)); do
		[ "$(frames)" -gt "$n0" ] && return 0
		kill -0 $sp 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Waits up to $3 s (default 120) until block device $1 has I/O in flight or
# has completed 32 more commands, while process $2 (fio) lives; false if it
# ended or the time ran out.  fio maps some 60 shared libraries before its
# first I/O: seconds under TCG, up to a minute in a busy guest, so no fixed
# sleep says that I/O is running.
io_started() {
	local st=/sys/block/${1#/dev/}/stat i n0
	n0=$(awk '{print $1 + $5}' "$st")
	for ((i = 0; i < ${3:-120} * 10; i++)); do
		kill -0 "$2" 2>/dev/null || return 1
		awk -v n0="$n0" '{exit !($9 > 0 || $1 + $5 >= n0 + 32)}' "$st" && return 0
		sleep 0.1
	done
	return 1
}

# Phase marker in QEMU's trace: appends NAME to MARKS and reads BAR0 offset
# 0x18 (reserved; no driver reads it) of PCI device BDF, which QEMU traces
# as pci_nvme_mmio_read.  tools/nvme_trace.py splits the trace at them.
trace_mark() { # MARKS BDF NAME
	echo "$3" >>"$1"
	bar0_read "$2" 0x18 4 >/dev/null
}

# Read a little-endian register of BAR0 of an unbound PCI device: bdf offset width.
bar0_read() {
	python3 - "$@" <<'PY'
import mmap, os, struct, sys
bdf, off, width = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3])
fd = os.open(f"/sys/bus/pci/devices/{bdf}/resource0", os.O_RDONLY | os.O_SYNC)
m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
print(struct.unpack_from("<Q" if width == 8 else "<I", m, off)[0])
PY
}

# Our modules, freshly built at the repo root.
# Their in-tree dependencies (videobuf2, v4l2-tpg) load first, as modprobe
# would.
insmod_ours() {
	local dep
	for dep in $(modinfo -F depends "$REPO/$1.ko" | tr , ' '); do
		modprobe "$dep" || return 1
	done
	insmod "$REPO/$1.ko" "${@:2}"
}
# The media device whose driver is $1 (/dev/mediaN), or failure.
media_of() {
	local m
	for m in /dev/media*; do
		if media-ctl -d "$m" -p 2>/dev/null | grep -q "^driver  *$1\$"; then
			echo "$m"
			return 0
		fi
	done
	return 1
}
rmmod_if_loaded() { ! grep -q "^$1 " /proc/modules || rmmod "$1"; }
# rmmod after a disk appeared: udev's probe of the new disk (blkid) holds
# it open for a moment, and an open disk pins its driver's module.
rmmod_settled() {
	local i
	udevadm settle -t 10 2>/dev/null || true
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rmmod "$1" 2>/dev/null && return 0
		sleep 1
	done
	rmmod "$1"
}

# The capture pixel format of a Bayer media bus code (raw nodes).
vimc_raw_fourcc() {
	case $1 in
	SBGGR8_1X8) echo BA81 ;; SGBRG8_1X8) echo GBRG ;; SGRBG8_1X8) echo GRBG ;; SRGGB8_1X8) echo RGGB ;;
	SBGGR10_1X10) echo BG10 ;; SGBRG10_1X10) echo GB10 ;; SGRBG10_1X10) echo BA10 ;; SRGGB10_1X10) echo RG10 ;;
	SBGGR12_1X12) echo BG12 ;; SGBRG12_1X12) echo GB12 ;; SGRBG12_1X12) echo BA12 ;; SRGGB12_1X12) echo RG12 ;;
	*) return 1 ;;
	esac
}
# A vimc-style pipeline (in-tree vimc's or ours) at one Bayer code and
# size: sensor -> debayer (window WIN) -> RGB888 -> scaler 1:1 -> the RGB
# capture node.  The sensor's raw node is part of the pipeline (it hangs
# off the sensor's pad), so it is set to match the sensor too.  One
# media-ctl call sets the pads in order (a program start costs a second
# under TCG).
vimc_setup() { # MDEV CAPTURE_ENTITY CODE W H WIN
	local m=$1 cap=$2 code=$3 w=$4 h=$5 win=$6 raw
	local bayer="[fmt:$code/${w}x$h colorspace:srgb]" rgb="[fmt:RGB888_1X24/${w}x$h colorspace:srgb]"
	media-ctl -d "$m" -V "\"Sensor A\":0$bayer, \"Debayer A\":0$bayer, \"Debayer A\":1$rgb, \"Scaler\":0$rgb, \"Scaler\":1$rgb" ||
		return 1
	v4l2-ctl -d "$(media-ctl -d "$m" -e "Debayer A")" -c debayer_mean_window_size="$win" || return 1
	v4l2-ctl -d "$(media-ctl -d "$m" -e "$cap")" --set-fmt-video="width=$w,height=$h,pixelformat=RGB3" || return 1
	raw=$(media-ctl -d "$m" -e "Raw Capture 0" 2>/dev/null || true)
	case $raw in
	/dev/*) v4l2-ctl -d "$raw" --set-fmt-video="width=$w,height=$h,pixelformat=$(vimc_raw_fourcc "$code")" || return 1 ;;
	esac
}

# Runs QMP commands (JSON, one per argument) on the host through
# tools/qmp-relay (started by tools/vm-test); prints the answers, one per
# line (device_del also waits for, and prints, DEVICE_DELETED).
qmp() {
	local d=$REPO/build/vm c i
	rm -f "$d/qmp-response"
	for c in "$@"; do echo "$c"; done >"$d/qmp-request.tmp"
	mv "$d/qmp-request.tmp" "$d/qmp-request"
	for ((i = 0; i < 900; i++)); do
		[ -f "$d/qmp-response" ] && { cat "$d/qmp-response"; return 0; }
		sleep 0.1
	done
	echo "qmp: no answer from tools/qmp-relay" >&2
	return 1
}
