# Lifecycle: unbind while fio runs; rmmod while fio runs (refused while the
# disk is open, then clean); the controller vanishing under fio (no MMIO, no
# DMA); surprise removal (QMP device_del from the host while fio runs) and
# hot-add of the controller again.  No oops, no hang.  (20 bind/unbind
# cycles with a leak scan: nvme_bindloop.sh.)
bdf=$(nvme_bdfs | head -n1)
[ -n "$bdf" ] || fail "no NVMe controller"
insmod_ours nvme_dbbuf
# fio in the background on $1 for $2 s (time based); its JSON in /tmp/$3.json;
# fd 7 is the disk, opened before any removal.
fio_bg() {
	fio --allow_file_create=0 --name="$3" --filename="$1" --direct=1 --ioengine=libaio --iodepth=32 \
		--rw=randrw --bs=4k --size=64m --time_based --runtime="$2" \
		--output-format=json --output="/tmp/$3.json" >/dev/null 2>&1 &
	fio_pid=$!
	exec 7<"$1"
	io_started "$1" $fio_pid || fail "fio ($3) ended or did no I/O in 120 s: $(tail -c 300 /tmp/$3.json)"
	# A few commands more, so that a removal finds a full queue.
	sleep 1
	inflight=$(awk '{print $1 + $2}' "/sys/block/${1#/dev/}/inflight")
}
# Waits up to $1 s for fio; its exit status in $fio_rc.
fio_wait() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		kill -0 $fio_pid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $fio_pid 2>/dev/null; then
		ps -eo pid,stat,wchan:32,comm | grep -E " D|fio"
		fail "fio still running $1 s after its end (hang)"
	fi
	fio_rc=0
	wait $fio_pid || fio_rc=$?
}
# After a removal the disk is dead: the block layer sets its capacity to 0,
# so I/O through a file opened before it reads nothing (or fails); nothing
# may come from the controller any more.
dead_disk_check() {
	local n
	n=$(python3 -c 'import os, sys
try:
    print(len(os.pread(7, 4096, 1 << 20)))
except OSError as e:
    print(e.strerror)' 2>&1)
	[ "$n" != 4096 ] || fail "read through an fd opened before the removal still returned data"
	echo "$n"
}
fio_err() { python3 -c 'import json,sys; t=open(sys.argv[1]).read(); print(json.loads(t[t.index("{"):])["jobs"][0]["error"])' "$1" 2>/dev/null || echo "no-json"; }

# --- unbind while fio runs: the disk goes away, fio gets errors, no hang.
pci_bind "$bdf" nvme_dbbuf
dev=$(blkdev_of "$bdf")
mark unbind
fio_bg "$dev" 15 unbind
t0=$(date +%s)
echo "$bdf" >/sys/bus/pci/drivers/nvme_dbbuf/unbind || fail "unbind failed"
took=$(($(date +%s) - t0))
# In-flight I/O completes on its own: seconds, far below the 30 s I/O
# timeout a wait per request would cost.
[ "$took" -lt 10 ] || fail "unbind with fio running took ${took}s"
r=$(dead_disk_check)
exec 7<&- # the old fd pins the module
fio_wait 60
log "unbind during fio ($inflight in flight): took ${took}s; read via an old fd afterwards: $r; fio ended (exit $fio_rc, error $(fio_err /tmp/unbind.json))"
dmesg_since | grep -q "nvme_dbbuf $bdf: unbound" || fail "no unbound line"
[ ! -b "$dev" ] || fail "$dev still present after unbind"
pci_bind "$bdf" nvme_dbbuf
dev=$(blkdev_of "$bdf")
dd if="$dev" of=/dev/null bs=64k count=16 iflag=direct status=none || fail "read after rebind"

# --- rmmod while fio runs: the open disk pins the module, fio is unharmed.
fio_bg "$dev" 20 rmmod
if rmmod nvme_dbbuf 2>/tmp/rmmod.err; then
	fail "rmmod succeeded while fio had the disk open"
fi
grep -q "^nvme_dbbuf " /proc/modules || fail "module gone"
log "rmmod during fio refused: $(cat /tmp/rmmod.err)"
exec 7<&-
fio_wait 120
[ "$fio_rc" = 0 ] || fail "fio failed (exit $fio_rc, error $(fio_err /tmp/rmmod.json)) after a refused rmmod"
# An open controller node pins it too.
exec {fd}<"${dev%n1}"
rmmod nvme_dbbuf 2>/dev/null && fail "rmmod succeeded with /dev/rnvme open"
exec {fd}<&-
rmmod nvme_dbbuf || fail "rmmod after fio ended"
log "rmmod after fio ended: clean"

# --- the controller vanishes under fio: memory decoding and bus mastering
# off (setpci), which is what a surprise removal looks like to the driver --
# no MMIO, no DMA, no interrupts.  Requests time out, Abort and the reset
# fail fast, the queues are failed: fio gets I/O errors, nothing hangs, and
# unbind and rmmod are still clean.
insmod_ours nvme_dbbuf
dev=$(blkdev_of "$bdf")
[ -b "$dev" ] || fail "no disk on $bdf"
echo 2000 >"/sys/block/${dev#/dev/}/queue/io_timeout"
mark vanish
fio_bg "$dev" 60 vanish
cmd0=$(setpci -s "$bdf" COMMAND)
setpci -s "$bdf" COMMAND=0000:0006
fio_wait 120
[ "$fio_rc" != 0 ] || fail "fio saw no error although the controller was gone"
exec 7<&-
d=$(dmesg_since)
grep -E "timed out|Abort|reset" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /' | head -n 8
grep -q "controller reset failed" <<<"$d" || fail "no failed reset after the controller vanished"
log "controller vanished under fio: fio exit $fio_rc, error $(fio_err /tmp/vanish.json)"
t0=$(date +%s)
echo "$bdf" >/sys/bus/pci/drivers/nvme_dbbuf/unbind || fail "unbind of the vanished controller"
log "unbind of the vanished controller: $(($(date +%s) - t0))s"
setpci -s "$bdf" COMMAND="$cmd0"
rmmod nvme_dbbuf || fail "rmmod after the controller vanished"

# --- the controller vanishes under fio and is unbound at once, with the
# default 30 s I/O timeout: unbind sees the controller down (CSTS reads 0
# with memory decoding off under QEMU, all-ones after a real surprise
# removal), fails the commands in flight and returns in seconds, not after
# a timeout.
insmod_ours nvme_dbbuf
dev=$(blkdev_of "$bdf")
[ -b "$dev" ] || fail "no disk on $bdf"
mark gone
fio_bg "$dev" 60 gone
cmd0=$(setpci -s "$bdf" COMMAND)
setpci -s "$bdf" COMMAND=0000:0006
t0=$(date +%s)
echo "$bdf" >/sys/bus/pci/drivers/nvme_dbbuf/unbind || fail "unbind of the vanished controller"
took=$(($(date +%s) - t0))
exec 7<&-
fio_wait 60
setpci -s "$bdf" COMMAND="$cmd0"
d=$(dmesg_since)
grep -E "command\(s\) failed|unbound" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /'
log "unbind right after the controller vanished under fio: ${took}s, fio exit $fio_rc"
grep -qE "controller Deleting: [1-9][0-9]* command\(s\) failed" <<<"$d" || fail "in-flight commands not failed at unbind"
[ "$took" -lt 10 ] || fail "unbind of a vanished controller took ${took}s"
[ "$fio_rc" != 0 ] || fail "fio saw no error although the controller was gone"
rmmod nvme_dbbuf || fail "rmmod after the vanished unbind"

# --- surprise removal: QMP device_del from the host while fio runs.
id=nvme1
victim=$(qmp '{"execute":"query-pci"}' | python3 -c '
import json, sys
def walk(devs):
    for d in devs:
        yield d
        yield from walk(d.get("pci_bridge", {}).get("devices", []))
r = json.loads(sys.stdin.readline())
d = next(d for b in r["return"] for d in walk(b["devices"]) if d.get("qdev_id") == sys.argv[1])
print("0000:%02x:%02x.%x" % (d["bus"], d["slot"], d["function"]))' $id) ||
	fail "query-pci: no $id"
[ -e /sys/bus/pci/devices/$victim ] || fail "$id is not $victim in the guest"
insmod_ours nvme_dbbuf
pci_bind "$victim" nvme_dbbuf
dev=$(blkdev_of "$victim")
[ -b "$dev" ] || fail "no disk on $victim"
mark device_del
fio_bg "$dev" 15 surprise
ans=$(qmp "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"$id\"}}") || fail "device_del: no answer"
grep -q DEVICE_DELETED <<<"$ans" || fail "device_del: $ans"
r=$(dead_disk_check)
exec 7<&- # the old fd pins the module
fio_wait 60
# fio's error may be 0 (pciehp's graceful removal lets in-flight I/O
# complete), EIO, or 28 (ENOSPC): once del_gendisk has zeroed the capacity,
# blkdev_write_iter refuses a write at or past it with -ENOSPC before it
# reaches any driver (block/fops.c), and this job writes.
log "device_del $id ($victim) during fio: DEVICE_DELETED; read via an old fd afterwards: $r; fio ended (exit $fio_rc, error $(fio_err /tmp/surprise.json))"
[ ! -e /sys/bus/pci/devices/$victim ] || fail "$victim still present"
[ ! -b "$dev" ] || fail "$dev still present after device_del"
dmesg_since | grep -q "nvme_dbbuf $victim: unbound" || fail "no unbound line for $victim"
rmmod nvme_dbbuf || fail "rmmod after the surprise removal"
# Hot-add it again (the other tests want two controllers); the guest sees it.
img=$REPO/build/vm/${id}.img
ans=$(qmp "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"raw\",\"node-name\":\"${id}r\",\"file\":{\"driver\":\"file\",\"filename\":\"$img\",\"locking\":\"off\"}}}" \
	"{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"nvme\",\"drive\":\"${id}r\",\"serial\":\"rfl1\",\"id\":\"$id\",\"bus\":\"rp1\"}}")
grep -q error <<<"$ans" && fail "hot-add: $ans"
for i in $(seq 100); do [ -e /sys/bus/pci/devices/$victim ] && break; sleep 0.2; done
[ "$(nvme_bdfs | wc -l)" = "${RFL_VM_NVME:-2}" ] || fail "hot-added controller not seen ($(nvme_bdfs | tr '\n' ' '))"
insmod_ours nvme_dbbuf
d=$(blkdev_of "$victim")
[ -b "$d" ] || fail "no disk on the hot-added controller"
dd if="$d" of=/dev/null bs=64k count=16 iflag=direct status=none || fail "read on the hot-added controller"
log "hot-added $id again at $victim: bound, readable"
pci_unbind "$victim"
rmmod nvme_dbbuf
