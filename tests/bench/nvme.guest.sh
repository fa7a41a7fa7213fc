# In-guest half of tools/bench: the same fio jobs through nvme_dbbuf with
# shadow doorbells off, on, and through the in-tree nvme driver, on two
# identical emulated controllers, one configuration active at a time.  Each
# run is bracketed in QEMU's trace by reads of BAR0 offset 0x18 (a reserved
# register no driver reads); the host half counts the doorbells in between.
# Environment: BENCH_OUT (results dir), BENCH_KO (where nvme_dbbuf.ko is),
# BENCH_RUNTIME (s per run), BENCH_ROUNDS (how many times each job runs in
# every configuration; the configurations take turns, so a ratio between two
# of them is taken from runs a few seconds apart),
# BENCH_JOBS (RW-BS-qdN[-bM][-jK]; -bM: fio submits and reaps M I/Os at a
# time, iodepth_batch_submit = iodepth_batch_complete_min = M, the submission
# batching that blk-mq hands the driver as one doorbell update; -jK: K fio
# jobs of that depth, one per CPU when pinned, so one per CPU queue; -p:
# polled, io_uring --hipri, on the poll queue each driver is loaded with),
# BENCH_CPU (the CPU fio is pinned to, default 1; empty: not pinned.  Pinned,
# every configuration submits on one queue whose interrupt is on that CPU;
# unpinned, the scheduler moved fio between the CPUs mid-run, which split
# the I/O over two queues and changed MMIO/IO by a third),
# Each run's guest CPU time comes from /proc/stat's "cpu" line and
# /proc/uptime, read 1 s into the run and 1 s before its end ($name.stat),
# so that fio's start and exit do not count.
# BENCH_SWAP (1: our driver takes the second controller, the in-tree one the
# first, to tell a driver's effect from the controller's).
set -euo pipefail
. "$RFL_REPO/tests/vm/lib.sh"
out=${BENCH_OUT:?}
runtime=${BENCH_RUNTIME:-8}
cpu=${BENCH_CPU-1}
rounds=${BENCH_ROUNDS:-3}
jobs=${BENCH_JOBS:-randread-4k-qd32 randread-4k-qd1 read-128k-qd32 randread-4k-qd32-b16 randread-4k-qd1-j2 randread-4k-qd32-j2 randread-4k-qd1-p}
mkdir -p "$out"
: >"$out/marks.txt"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
echo "rfl-test-begin bench" >/dev/kmsg

read -r a b _ < <(nvme_bdfs | tr '\n' ' ') || true
[ -n "${a:-}" ] && [ -n "${b:-}" ] || fail "need two NVMe controllers"
[ "${BENCH_SWAP:-0}" = 0 ] || { t=$a a=$b b=$t; }
getconf CLK_TCK >"$out/clk_tck"
[ "$runtime" -ge 3 ] || fail "BENCH_RUNTIME must be at least 3 s (CPU time is read 1 s inside each end)"
for job in $jobs; do
	[[ $job =~ ^[a-z]+-[0-9]+[kKmM]?-qd[0-9]+(-b[0-9]+)?(-j[0-9]+)?(-p)?$ ]] ||
		fail "bench job '$job' is not RW-BS-qdN[-bM][-jK][-p]"
done
cpu_stat() { # the "cpu" line of /proc/stat and the uptime, together
	grep -m1 '^cpu ' /proc/stat
	echo "uptime $(cut -d' ' -f1 /proc/uptime)"
}
mark_phase() { trace_mark "$out/marks.txt" "$a" "$1"; }

# $b belongs to the in-tree driver, $a to ours; each with one poll queue
# (only polled I/O goes there: the other jobs keep one queue per CPU).
echo nvme >"/sys/bus/pci/devices/$b/driver_override"
insmod "${BENCH_KO:-$REPO}/nvme_dbbuf.ko" poll_queues=1
modprobe nvme poll_queues=1
[ "$(pci_driver "$b")" = nvme ] || echo "$b" >/sys/bus/pci/drivers/nvme/bind
[ "$(pci_driver "$a")" = nvme_dbbuf ] || fail "$a not bound to nvme_dbbuf"
ours=$(blkdev_of "$a") theirs=$(blkdev_of "$b")
[ -n "$ours" ] && [ -n "$theirs" ] || fail "disks missing: '$ours' '$theirs'"
ours=${ours#/dev/} theirs=${theirs#/dev/}
dfs=/sys/kernel/debug/nvme_dbbuf/${ours%n*}
echo "bench: nvme_dbbuf $a -> /dev/$ours, nvme $b -> /dev/$theirs, ${runtime}s per run, fio on CPU ${cpu:-any}"
dmesg | grep -E "nvme_dbbuf $a: (shadow doorbells|Doorbell Buffer)" | tail -n 1

for job in $jobs; do
	engine=(--ioengine=libaio)
	case $job in *-p) engine=(--ioengine=io_uring --hipri) ;; esac
	IFS=- read -r rw bs qd batch njobs <<<"${job%-p}"
	case $batch in j*) njobs=$batch batch= ;; esac
	qd=${qd#qd} batch=${batch#b} njobs=${njobs#j}
	njobs=${njobs:-1}
	batching=()
	[ -z "$batch" ] || batching=(--iodepth_batch_submit="$batch" --iodepth_batch_complete_min="$batch")
	pin=()
	if [ -n "$cpu" ] && [ "$njobs" = 1 ]; then
		pin=(--cpus_allowed="$cpu")
	elif [ -n "$cpu" ]; then
		pin=(--cpus_allowed="0-$((njobs - 1))" --cpus_allowed_policy=split)
	fi
	cfgs=(nvme_dbbuf:0 nvme_dbbuf:1 nvme:1)
	for round in $(seq "$rounds"); do
		# Each round starts one configuration later, so that none is always
		# the one run first (or right after a controller reset).
		for ((k = 0; k < ${#cfgs[@]}; k++)); do
			cfg=${cfgs[(k + round - 1) % ${#cfgs[@]}]}
			drv=${cfg%:*} on=${cfg#*:}
			if [ "$drv" = nvme_dbbuf ]; then
				[ "$(cat "$dfs/dbbuf")" = "$([ "$on" = 1 ] && echo on || echo off)" ] || echo "$on" >"$dfs/dbbuf"
				dev=/dev/$ours
			else
				dev=/dev/$theirs
			fi
			name=$drv-$on-$job-r$round
			mark_phase "$name-begin"
			(sleep 1 && cpu_stat && sleep $((runtime - 2)) && cpu_stat) >"$out/$name.stat" &
			stat_pid=$!
			fio --name="$job" --filename="$dev" --direct=1 "${engine[@]}" --numjobs="$njobs" --group_reporting \
				--rw="$rw" --bs="$bs" --iodepth="$qd" "${batching[@]}" "${pin[@]}" --time_based --runtime="$runtime" \
				--norandommap --randrepeat=0 --output-format=json --output="$out/$name.json" \
				>/dev/null 2>&1 || fail "fio $name"
			wait "$stat_pid" || fail "CPU time of $name"
			mark_phase "$name-end"
			echo "  $name done"
		done
	done
done
rmmod nvme_dbbuf
check_splats
