# Failure paths with the in-tree driver's guarantees (issue 17), each with
# a fault made on purpose, short I/O timeouts (2 s) to keep the test quick:
# - a command that always times out ends in EIO after max_retries (2 here)
#   requeues, well under a minute; the disk works once the fault is gone
#   (the in-tree driver is put through the same fault, for the timing);
# - a lost interrupt is reaped by the timeout handler: no Abort, no reset;
# - a controller disable that times out (CSTS.RDY stuck) cuts bus mastering
#   before the reset takes back the commands in flight; fio's verify passes;
# - an admin command that never completes (a passthrough with timeout_ms)
#   stops the controller before its buffer is freed, then a reset;
# - an I/O timeout, or an unbind, during a passthrough command interrupts
#   it instead of waiting for its timeout;
# - an I/O completion lost during probe's partition scan is recovered by the
#   timeout handler (Abort, reset): probe ends in bounded time.
# KASAN and DMA debug (test kernel) watch the buffers; the runner checks
# dmesg for splats.
bdf=$(nvme_bdfs | head -n1)
[ -n "$bdf" ] || fail "no NVMe controller"
fi_dir=/sys/kernel/debug/fail_io_timeout
[ -d $fi_dir ] || fail "no $fi_dir (CONFIG_FAIL_IO_TIMEOUT)"
resets() { sed -n 's/.*resets \([0-9]*\).*/\1/p' "$ctl/summary"; }
# fault_on DISK [TIMES]: the next TIMES completions on DISK are lost
# (default -1: every one).
fault_on() {
	echo 2000 >"/sys/block/${1#/dev/}/queue/io_timeout"
	echo 1 >"/sys/block/${1#/dev/}/io-timeout-fail"
	echo 100 >$fi_dir/probability
	echo 0 >$fi_dir/interval
	echo "${2:--1}" >$fi_dir/times
	echo 0 >$fi_dir/verbose
}
fault_off() {
	echo 0 >"/sys/block/${1#/dev/}/io-timeout-fail"
	echo 0 >$fi_dir/probability
}
# timed_read DISK: one 4 KiB direct read; prints "rc seconds".
timed_read() {
	local t0=$SECONDS rc=0
	dd if="$1" of=/dev/null bs=4k count=1 skip=$((RANDOM + 1000)) iflag=direct status=none 2>/tmp/dd.err || rc=$?
	echo "$rc $((SECONDS - t0))"
}
# lost_identify TIMEOUT_MS OUT: Identify through the passthrough with the
# next admin completion lost; nvme-cli's output goes to OUT.
lost_identify() {
	echo lost_admin >"$ctl/inject"
	nvme admin-passthru "$cdev" --opcode=0x06 --cdw10=1 --data-len=4096 --read --timeout="$1" >"$2" 2>&1
}
# Until the command lost_identify sent has had its completion dropped, so
# that the passthrough waits (nvme-cli takes seconds to start under TCG).
passthru_waiting() { wait_dmesg "test hook: admin completion 0x[0-9a-f]+ lost" 120; }
verify_job() { # DISK NAME MiB: fio write+verify, fails the test on error
	fio --allow_file_create=0 --name="$2" --filename="$1" --direct=1 --ioengine=libaio --iodepth=16 \
		--rw=randwrite --bs=4k --size="$3"m --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output-format=json --output=/tmp/$2.json >/dev/null 2>&1 ||
		{ tail -c 600 /tmp/$2.json; fail "fio $2 failed"; }
}

# --- 1. persistent timeout, in-tree driver first (its time is logged beside
# ours; both must fail the read, the disk must work after).
modprobe nvme || fail "cannot load the in-tree nvme driver"
pci_bind "$bdf" nvme
dev=$(blkdev_of "$bdf")
[ -b "$dev" ] || fail "no in-tree disk"
udevadm settle
fault_on "$dev"
read -r rc_in t_in <<<"$(timed_read "$dev")"
fault_off "$dev"
log "in-tree nvme, every completion lost: dd exit $rc_in after ${t_in}s ($(tr -d '\n' </tmp/dd.err))"
[ "$rc_in" != 0 ] || fail "the in-tree driver's read succeeded: the fault did not take"
dd if="$dev" of=/dev/null bs=64k count=4 iflag=direct status=none || fail "in-tree disk unreadable after the fault"
pci_unbind "$bdf"
rmmod nvme || fail "rmmod nvme"

# Two retries (default 5): the bound is the parameter, in a third of the time.
insmod_ours nvme_dbbuf dyndbg=+p max_retries=2
pci_bind "$bdf" nvme_dbbuf
dev=$(blkdev_of "$bdf")
[ -b "$dev" ] || fail "no disk"
ctl=$(ctl_dfs "$dev")
# Nothing but dd does I/O on the disk from here (udev's probe of the new
# disk would add timeouts and resets of its own).
udevadm settle
r0=$(resets)
mark persistent
fault_on "$dev"
read -r rc t <<<"$(timed_read "$dev")"
fault_off "$dev"
r1=$(resets)
log "nvme_dbbuf, every completion lost: dd exit $rc after ${t}s ($(tr -d '\n' </tmp/dd.err)), resets $r0 -> $r1"
[ "$rc" != 0 ] || fail "the read succeeded although every completion was lost"
grep -q "Input/output error" /tmp/dd.err || fail "not EIO: $(cat /tmp/dd.err)"
[ "$t" -lt 60 ] || fail "EIO took ${t}s"
# One reset per try: the first try and max_retries (2) requeues.
[ $((r1 - r0)) -eq 3 ] || fail "$((r1 - r0)) resets, want 3 (1 + max_retries)"
dd if="$dev" of=/dev/null bs=64k count=4 iflag=direct status=none || fail "disk unreadable after the fault"
verify_job "$dev" after-persistent 4

# --- 2. a lost interrupt: reaped by the timeout handler.
echo 2000 >"/sys/block/${dev#/dev/}/queue/io_timeout"
r0=$(resets)
mark lost_irq
echo lost_irq >"$ctl/inject"
read -r rc t <<<"$(timed_read "$dev")"
echo none >"$ctl/inject"
d=$(dmesg_since)
log "lost interrupt: dd exit $rc after ${t}s; $(grep -o 'tag [0-9]* timed out, completion polled' <<<"$d" | head -n1)"
[ "$rc" = 0 ] || fail "read failed after a lost interrupt"
grep -q "completion polled" <<<"$d" || fail "no 'completion polled'"
grep -qE "sending Abort|resetting" <<<"$d" && fail "a lost interrupt led to an Abort or a reset"
[ "$(resets)" = "$r0" ] || fail "reset counter moved"

# --- 3. the controller will not stop (CSTS.RDY stuck at 1) during a reset
# under fio: bus mastering off before anything is taken back, then the
# reset succeeds (the second disable works) and fio's verify passes.
mark stuck_rdy
fio --allow_file_create=0 --name=stuck --filename="$dev" --direct=1 --ioengine=libaio --iodepth=16 \
	--rw=randwrite --bs=4k --size=16m --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--output-format=json --output=/tmp/stuck.json >/dev/null 2>&1 &
fio_pid=$!
io_started "$dev" $fio_pid || fail "fio ended or did no I/O before the stuck disable"
echo stuck_rdy >"$ctl/inject"
echo 1 >"$ctl/reset" || fail "reset after a stuck disable failed"
wait $fio_pid || { tail -c 600 /tmp/stuck.json; fail "fio failed across the stuck disable"; }
d=$(dmesg_since)
grep -E "stuck|bus mastering|requeued|reset done" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /'
order=$(grep -nE "CSTS.RDY reported stuck|bus mastering off|command\(s\) in flight requeued" <<<"$d" | cut -d: -f1 | tr '\n' ' ')
grep -q "bus mastering off" <<<"$d" || fail "bus mastering not cleared after the stuck disable"
# The device itself reports Bus Master Enable (PCI_COMMAND bit 2) clear.
cmdreg=$(sed -n 's/.*bus mastering off (PCI_COMMAND \(0x[0-9a-f]*\)).*/\1/p' <<<"$d" | head -n1)
[ -n "$cmdreg" ] && [ $((cmdreg & 4)) = 0 ] || fail "PCI_COMMAND after clearing bus mastering: '$cmdreg'"
python3 - "$d" <<'PY' || fail "bus mastering was not cleared before the commands were taken back"
import sys
lines = sys.argv[1].splitlines()
at = lambda s: next(i for i, l in enumerate(lines) if s in l)
assert at("CSTS.RDY reported stuck") < at("bus mastering off") < at("in flight requeued")
PY
grep -q "controller reset done" <<<"$d" || fail "no recovery after the stuck disable"

# --- 4. an admin command that never completes: a passthrough with
# timeout_ms 2000.  The controller is disabled and its bus mastering cut
# before the buffer is freed; a reset brings it back.
cdev=${dev%n1}
mark lost_admin
t0=$SECONDS
lost_identify 2000 /tmp/pt.out && fail "the passthrough succeeded although its completion was lost"
t=$((SECONDS - t0))
d=$(dmesg_since)
grep -E "lost|failed to complete|bus mastering|reset done" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /'
log "passthrough with its completion lost: failed after ${t}s ($(head -c 120 /tmp/pt.out | tr '\n' ' '))"
[ "$t" -lt 15 ] || fail "timeout_ms 2000 not honoured (${t}s)"
python3 - "$d" <<'PY' || fail "controller not stopped before the reset"
import sys
lines = sys.argv[1].splitlines()
at = lambda s: next(i for i, l in enumerate(lines) if s in l)
assert at("admin completion") < at("failed to complete") < at("bus mastering off") < at("controller reset done")
PY
nvme id-ctrl "$cdev" >/dev/null || fail "identify after the admin timeout"
verify_job "$dev" after-admin 4

# --- 4b. an I/O timeout while a passthrough command waits on a lost
# completion (timeout_ms 30000): the timeout handler does not wait for the
# passthrough's own timeout; it interrupts the command (EINTR, as in-tree
# for a cancelled passthrough), whose reset takes the request back, and
# the read completes.
mark interrupt
lost_identify 30000 /tmp/pt2.out &
pt=$!
passthru_waiting || fail "the passthrough's command never went out"
t0=$SECONDS
fault_on "$dev" 1
read -r rc t <<<"$(timed_read "$dev")"
fault_off "$dev"
wait $pt && fail "the passthrough succeeded although its completion was lost"
tp=$((SECONDS - t0))
d=$(dmesg_since)
grep -E "interrupted|timed out|reset done" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /'
log "I/O timeout during a 30 s passthrough: dd exit $rc after ${t}s, passthrough failed after ${tp}s ($(head -c 80 /tmp/pt2.out | tr '\n' ' '))"
[ "$rc" = 0 ] || fail "read failed: $(cat /tmp/dd.err)"
[ "$t" -lt 15 ] || fail "the read waited ${t}s: the passthrough held up the recovery"
[ "$tp" -lt 15 ] || fail "the passthrough returned after ${tp}s"
grep -q "interrupted by an I/O timeout or unbind" <<<"$d" || fail "the passthrough was not interrupted"
grep -q "controller reset done" <<<"$d" || fail "no reset"
nvme id-ctrl "$cdev" >/dev/null || fail "identify after the interrupted passthrough"
# --- 4c. unbind while a passthrough command waits on a lost completion
# (timeout_ms 30000): the command is interrupted, unbind takes seconds.
mark unbind_passthru
lost_identify 30000 /tmp/pt3.out &
pt=$!
passthru_waiting || fail "the passthrough's command never went out"
t0=$SECONDS
echo "$bdf" >"/sys/bus/pci/devices/$bdf/driver/unbind"
t=$((SECONDS - t0))
pci_unbind "$bdf"
wait $pt && fail "the passthrough succeeded although its completion was lost"
log "unbind during a 30 s passthrough: ${t}s ($(head -c 80 /tmp/pt3.out | tr '\n' ' '))"
[ "$t" -lt 10 ] || fail "unbind waited ${t}s for the passthrough"
dmesg_since | grep -q "interrupted by an I/O timeout or unbind" || fail "the passthrough was not interrupted"
rmmod nvme_dbbuf

# --- 5. the first I/O completion is lost during probe (the partition
# scan): the timeout handler is live already, so probe ends after an Abort
# and a reset instead of re-arming the timer for ever.
mark probe
t0=$SECONDS
# In the background: a probe that hangs leaves insmod unkillable in the
# kernel, so the deadline is ours.
insmod "$REPO/nvme_dbbuf.ko" fault_lose_io=1 io_timeout=2 &
ins=$!
while kill -0 $ins 2>/dev/null && [ $((SECONDS - t0)) -lt 60 ]; do sleep 0.5; done
kill -0 $ins 2>/dev/null && fail "probe with a lost completion still running after 60 s"
wait $ins || fail "insmod with a lost completion during probe failed after $((SECONDS - t0))s"
t=$((SECONDS - t0))
d=$(dmesg_since)
grep -E "lost|timed out|reset done" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /' | head -n 6
log "probe with its first I/O completion lost: insmod returned after ${t}s"
grep -q "test hook: completion .* lost" <<<"$d" || fail "the hook lost no completion"
grep -q "controller reset done" <<<"$d" || fail "no reset during probe"
[ "$t" -lt 60 ] || fail "probe took ${t}s"
for b in $(nvme_bdfs); do
	d1=$(blkdev_of "$b")
	[ -b "$d1" ] || fail "no disk on $b after probe"
	dd if="$d1" of=/dev/null bs=64k count=4 iflag=direct status=none || fail "$d1 unreadable"
done
rmmod nvme_dbbuf || fail "rmmod after the probe-time recovery"
