# Poll queues (parameter poll_queues): interrupt-less I/O queues that blk-mq
# maps to HCTX_TYPE_POLL and reaps through ->poll.  With poll_queues=1 the
# disk offers polling (queue/io_poll), fio io_uring --hipri (IOPOLL) write +
# verify jobs at QD1 and QD32 run on the poll queue only, every completion of
# theirs counted as polled in debugfs; other I/O never reaches it; a reset
# and an unbind with polled I/O in flight end cleanly.  pvsync2 --hipri
# verifies too, but through the interrupt queues: 7.3 polls no synchronous
# direct I/O (block/fops.c's simple path ignores IOCB_HIPRI).
insmod_ours nvme_dbbuf poll_queues=1
bdf=$(nvme_bdfs | head -n 1)
dev=$(blkdev_of "$bdf")
[ -n "$dev" ] || fail "no disk"
name=$(basename "$dev")
ctl=$(ctl_dfs "$name")
[ "$(cat /sys/block/$name/queue/io_poll)" = 1 ] || fail "the disk does not offer polling"
# The poll queue is the last one.
pq=$(awk 'END {print $1}' "$ctl/stats")
nq=$(awk 'NR > 1' "$ctl/stats" | wc -l)
log "$nq I/O queues, poll queue qid $pq"
[ "$nq" -ge 2 ] || fail "no poll queue next to the interrupt queues"
out=/tmp/poll.json
# Runs fio job $1 with the rest as options; checks its JSON and the stats:
# $2 = "poll" (all of the job's I/O polled on the poll queue) or "irq" (none
# reached the poll queue).
job() {
	local what=$1 where=$2
	shift 2
	echo 1 >"$ctl/stats"
	fio --allow_file_create=0 --name="$what" --filename="$dev" --direct=1 --rw=randwrite --bs=4k --size=2m \
		--verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=json --output=$out "$@" \
		>/dev/null 2>&1 || { tail -c 600 $out; fail "fio $what failed"; }
	python3 - $out "$ctl/stats" "$pq" "$where" "$what" <<'PY' || fail "fio $what: check failed"
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
assert j["error"] == 0, j["error"]
w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
assert w == r == 2 << 20, (w, r)
ios = j["write"]["total_ios"] + j["read"]["total_ios"]
rows = {int(l.split()[0]): [int(x) for x in l.split()[1:]] for l in open(sys.argv[2]).read().splitlines()[1:]}
sub, reaped, polled = rows[int(sys.argv[3])][0], rows[int(sys.argv[3])][1], rows[int(sys.argv[3])][6]
others = sum(v[6] for q, v in rows.items() if q != int(sys.argv[3]))
assert others == 0, f"{others} completions polled on interrupt queues"
if sys.argv[4] == "poll":
    assert sub == reaped == polled == ios, f"poll queue: {sub} submitted, {reaped} reaped, {polled} polled, fio {ios}"
else:
    assert sub == 0, f"{sub} commands of a job without polling on the poll queue"
print(f"  {sys.argv[5]}: {ios} I/Os verified, {j['write']['iops']:.0f} write IOPS, "
      f"poll queue: {sub} submitted, {polled} polled")
PY
}
job io_uring-hipri-qd1 poll --ioengine=io_uring --hipri --iodepth=1
job io_uring-hipri-qd32 poll --ioengine=io_uring --hipri --iodepth=32
job pvsync2-hipri irq --ioengine=pvsync2 --hipri

# A reset with polled I/O in flight: the test hook garbles a completion
# ->poll reaps (a stale command id), the driver resets the controller, the
# command whose completion was dropped is requeued, polling goes on after
# the reset; fio's verify passes.
polled() { awk -v q="$pq" '$1 == q {print $8}' "$ctl/stats"; }
mark "poll reset"
fio --allow_file_create=0 --name=reset --filename="$dev" --direct=1 --ioengine=io_uring --hipri --iodepth=32 \
	--rw=randwrite --bs=4k --size=16m --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--output-format=json --output=$out >/dev/null 2>&1 &
fio_pid=$!
io_started "$dev" $fio_pid || fail "fio ended or did no I/O before the reset"
echo bad_cid >"$ctl/inject"
wait_dmesg "controller reset done" 120 || fail "no reset after the bad completion"
p0=$(polled)
wait $fio_pid || { tail -c 600 $out; fail "polled fio failed across a reset"; }
d=$(dmesg_since)
grep -qE "queue $pq: stale completion" <<<"$d" || fail "the bad completion was not the poll queue's"
grep -qE "controller reset done, .* [1-9][0-9]* command\(s\) requeued" <<<"$d" ||
	fail "the reset requeued no polled command"
[ "$(polled)" -gt "$p0" ] || fail "nothing polled after the reset"
log "polled write+verify passed across a reset ($(grep -oE '[0-9]+ command\(s\) requeued' <<<"$d" | tail -n1))"
pools_idle "$ctl"

# An unbind with polled I/O in flight: the unbind returns within 30 s (wall
# clock), nothing hangs or splats, and fio ends by its runtime; rebound, the
# disk works.  fio's io_uring IOPOLL job goes on to its runtime after the
# disk is gone, as it does under the in-tree driver (same VM, same job: its
# unbind returned in 2 s, fio ran its 40 s with no error reported), so only
# the runtime bounds fio.
fio --allow_file_create=0 --name=unbind --filename="$dev" --direct=1 --ioengine=io_uring --hipri --iodepth=32 \
	--rw=randread --bs=4k --time_based --runtime=10 --output-format=json --output=$out >/dev/null 2>&1 &
fio_pid=$!
io_started "$dev" $fio_pid || fail "fio ended or did no I/O before the unbind"
t0=$(date +%s)
pci_unbind "$bdf" &
unbind_pid=$!
while kill -0 $unbind_pid 2>/dev/null && [ $(($(date +%s) - t0)) -lt 30 ]; do sleep 0.2; done
kill -0 $unbind_pid 2>/dev/null && fail "unbind still running 30 s after it began"
wait $unbind_pid || fail "unbind failed"
t_unbind=$(($(date +%s) - t0))
while kill -0 $fio_pid 2>/dev/null && [ $(($(date +%s) - t0)) -lt 60 ]; do sleep 0.2; done
kill -0 $fio_pid 2>/dev/null && { kill -9 $fio_pid; fail "fio (runtime 10 s) still running 60 s after the unbind"; }
wait $fio_pid || true
log "unbind with polled I/O in flight: unbind returned after ${t_unbind} s, fio ended after $(($(date +%s) - t0)) s"
pci_bind "$bdf" nvme_dbbuf
dev=$(blkdev_of "$bdf")
[ -n "$dev" ] || fail "no disk after rebinding"
dd if="$dev" of=/dev/null bs=1M count=4 iflag=direct 2>/dev/null || fail "read after rebinding failed"
rmmod nvme_dbbuf
# Without the parameter: no poll queue, no polling.
insmod_ours nvme_dbbuf
dev=$(blkdev_of "$bdf")
[ "$(cat /sys/block/$(basename "$dev")/queue/io_poll)" = 0 ] || fail "io_poll on without poll queues"
rmmod nvme_dbbuf
