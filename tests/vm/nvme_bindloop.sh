# 10 bind/unbind cycles of one controller, then a kmemleak scan: every
# probe's allocations (queues, doorbell buffers, tag set, disk, character
# device, debugfs, interrupts) are given back on unbind.
bdf=$(nvme_bdfs | head -n1)
[ -n "$bdf" ] || fail "no NVMe controller"
insmod_ours nvme_dbbuf
pci_unbind "$bdf"
# --- 10 x bind/unbind, each with its disk and character device registered
# (probe adds both before it returns); I/O through the first and the last.
for i in $(seq 10); do
	pci_bind "$bdf" nvme_dbbuf
	disk=$(ls -d /sys/bus/pci/devices/$bdf/block/rnvme*n1 2>/dev/null | head -n1)
	[ -n "$disk" ] && [ -e "/sys/class/misc/$(basename "${disk%n1}")" ] ||
		fail "cycle $i: no disk/character device"
	if [ "$i" = 1 ] || [ "$i" = 10 ]; then
		d=$(blkdev_of "$bdf")
		dd if="$d" of=/dev/null bs=4k count=16 iflag=direct status=none || fail "cycle $i: read"
	fi
	pci_unbind "$bdf"
done
[ -z "$(pci_driver "$bdf")" ] || fail "still bound after the cycles"
log "10 bind/unbind cycles: disk and /dev/rnvme node each time"
if [ -w /sys/kernel/debug/kmemleak ] && ! grep -qw kmemleak=off /proc/cmdline; then
	sleep 6 # kmemleak reports objects older than 5 s
	echo scan >/sys/kernel/debug/kmemleak
	leaks=$(grep -A12 unreferenced /sys/kernel/debug/kmemleak | head -n 60)
	[ -z "$leaks" ] || { echo "$leaks"; fail "kmemleak after 10 bind/unbind cycles"; }
	log "kmemleak scan after the cycles: clean"
fi

rmmod nvme_dbbuf
