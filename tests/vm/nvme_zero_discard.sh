# WRITE ZEROES and DISCARD (Dataset Management, deallocate) through
# nvme_dbbuf: the queue limits advertise both (QEMU sets ONCS bits 2 and 3),
# blkdiscard -z zeroes exactly its range through the offload, a discard
# completes and counts at the disk, and data outside the ranges survives.
insmod_ours nvme_dbbuf
dev=$(blkdev_of "$(nvme_bdfs | head -n 1)")
[ -n "$dev" ] || fail "no disk"
sys=/sys/block/${dev#/dev/}
q=$sys/queue
wz=$(cat $q/write_zeroes_max_bytes) dmax=$(cat $q/discard_max_hw_bytes)
log "write_zeroes_max_bytes $wz, discard_max_hw_bytes $dmax, discard_granularity $(cat $q/discard_granularity)"
[ "$wz" -gt 0 ] || fail "no Write Zeroes limit"
[ "$dmax" -gt 0 ] || fail "no discard limit"
M=$((1 << 20))
head -c $((4 * M)) /dev/urandom >/tmp/pat
dd if=/tmp/pat of=$dev bs=1M seek=1 oflag=direct status=none || fail "pattern write"
read -r _ _ _ _ w_before _ <<<"$(cat $sys/stat)"
blkdiscard -z -o $((1 * M)) -l $((2 * M)) $dev || fail "blkdiscard -z"
dd if=$dev of=/tmp/back bs=1M skip=1 count=4 iflag=direct status=none || fail "read back"
cmp -n $((2 * M)) /tmp/back /dev/zero || fail "zeroed range is not zero"
cmp -i $((2 * M)) -n $((2 * M)) /tmp/back /tmp/pat || fail "data after the zeroed range changed"
# The zeroing went out as Write Zeroes, not as written zero pages: the
# disk's write sector count grew by far less than 2 MiB of data would.
read -r _ _ _ _ w_after _ <<<"$(cat $sys/stat)"
log "write I/Os at the disk for the 2 MiB zeroing: $((w_after - w_before))"
[ $((w_after - w_before)) -le 2 ] || fail "zeroing took $((w_after - w_before)) write I/Os: no offload"
ctl=$(ctl_dfs "$dev")
taken() { sed -n "s/^$1 taken \([0-9]*\) .*/\1/p" "$ctl/memory"; }
set -- $(cat $sys/stat)
d_before=${12} r_before=$(taken dsm_ranges)
blkdiscard -o $((3 * M)) -l $((1 * M)) $dev || fail "blkdiscard"
set -- $(cat $sys/stat)
[ "${12}" -gt "$d_before" ] || fail "discard not counted at the disk"
# Each discard's range is a 16-byte block from the range pool (not a
# page-sized PRP list block).
[ "$(taken dsm_ranges)" -ge $((r_before + ${12} - d_before)) ] ||
	fail "$((${12} - d_before)) discards took $(($(taken dsm_ranges) - r_before)) range blocks"
dd if=$dev of=/tmp/back2 bs=1M skip=4 count=1 iflag=direct status=none || fail "read back 2"
cmp -i $((3 * M)):0 -n $M /tmp/back /tmp/back2 || fail "data after the discarded range changed"
log "write zeroes and discard passed"
# Every block went back.
pools_idle "$ctl" dsm_ranges
rmmod nvme_dbbuf
