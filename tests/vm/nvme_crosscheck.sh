# The on-disk format is the standard one: data written through nvme_dbbuf
# reads back identically through the in-tree nvme driver after rebinding the
# controller, and the other way round.  Uses the first controller.
bdf=$(nvme_bdfs | head -n1)
[ -n "$bdf" ] || fail "no NVMe controller"
modprobe nvme || fail "cannot load the in-tree nvme driver"
head -c $((3 << 20)) /dev/urandom >/tmp/a
head -c $((3 << 20)) /dev/urandom >/tmp/b
insmod_ours nvme_dbbuf
pci_bind "$bdf" nvme_dbbuf
ours=$(blkdev_of "$bdf")
[ "${ours#/dev/rnvme}" != "$ours" ] || fail "no rnvme disk for $bdf (got '$ours')"
dd if=/tmp/a of="$ours" bs=64k seek=16 oflag=direct status=none || fail "write via $ours"
pci_bind "$bdf" nvme
theirs=$(blkdev_of "$bdf")
[ "${theirs#/dev/nvme}" != "$theirs" ] || fail "no in-tree nvme disk for $bdf (got '$theirs')"
cmp <(dd if="$theirs" bs=64k skip=16 count=48 iflag=direct status=none) /tmp/a || fail "in-tree nvme reads back different data"
log "written by nvme_dbbuf ($ours), read back identically by nvme ($theirs)"
dd if=/tmp/b of="$theirs" bs=64k seek=64 oflag=direct status=none || fail "write via $theirs"
pci_bind "$bdf" nvme_dbbuf
ours=$(blkdev_of "$bdf")
cmp <(dd if="$ours" bs=64k skip=64 count=48 iflag=direct status=none) /tmp/b || fail "nvme_dbbuf reads back different data"
log "written by nvme ($theirs), read back identically by nvme_dbbuf ($ours)"
echo "$bdf" >/sys/bus/pci/devices/$bdf/driver/unbind
rmmod nvme_dbbuf
rmmod nvme 2>/dev/null || true
