# Error recovery: a lost completion times out, the driver sends Abort, and
# on the second timeout resets the controller, which requeues the command;
# fio's write+verify sees no error.  The completion is lost on purpose with
# the block layer's fault injection (io-timeout-fail + fail_io_timeout), the
# same hook C drivers honour through blk_should_fake_timeout().
# fio JSON $1 wrote and verified $2 MiB, without error, across $3.
verified() {
	python3 - "$@" <<'PY' || fail "fio JSON"
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
n = int(sys.argv[2]) << 20
assert j["error"] == 0 and j["write"]["io_bytes"] == n and j["read"]["io_bytes"] == n, j["error"]
print(f"  {sys.argv[2]} MiB written and verified across {sys.argv[3]}")
PY
}
insmod_ours nvme_dbbuf dyndbg=+p
dev=$(blkdev_of "$(nvme_bdfs | head -n 1)")
[ -n "$dev" ] || fail "no disk"
sys=/sys/block/${dev#/dev/}
fi_dir=/sys/kernel/debug/fail_io_timeout
[ -d $fi_dir ] || fail "no $fi_dir (CONFIG_FAIL_IO_TIMEOUT)"
echo 2000 >$sys/queue/io_timeout
echo 1 >$sys/io-timeout-fail
echo 100 >$fi_dir/probability
echo 0 >$fi_dir/interval
echo 1 >$fi_dir/times
echo 0 >$fi_dir/verbose
mark recovery
out=/tmp/reset.json
fio --allow_file_create=0 --name=rec --filename=$dev --direct=1 --ioengine=libaio --iodepth=16 \
	--rw=randwrite --bs=4k --size=8m --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--output-format=json --output=$out >/dev/null 2>&1 ||
	{ tail -c 600 $out; fail "fio failed across the recovery"; }
echo 0 >$sys/io-timeout-fail
echo 0 >$fi_dir/probability
verified $out 8 "the recovery"
d=$(dmesg_since)
grep -E "timed out|Abort|abort of|reset|requeued" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /'
grep -q "timed out, sending Abort" <<<"$d" || fail "no Abort after the first timeout"
grep -q "timed out after Abort: resetting" <<<"$d" || fail "no reset after the second timeout"
grep -qE "controller reset done, .* [1-9][0-9]* command\(s\) requeued" <<<"$d" || fail "reset requeued nothing"
grep -qE "stale completion|invalid command id" <<<"$d" && fail "bad completions after the reset"
# The disk still works after the reset.
dd if=$dev of=/dev/null bs=1M count=4 iflag=direct 2>/dev/null || fail "read after reset failed"

# Bad completions, made by the debugfs test hook, under a fio write+verify:
# - bad_cid: a command id that names no request in flight (a stale
#   generation).  The driver drops it, logs it, and resets the controller from
#   a work item; the command it belonged to is requeued.
# - dup_cid: one entry handled twice, as from a controller that posts a
#   completion twice.  The second copy names a request already completed; it
#   must be refused as stale (a double completion would oops or splat), then
#   the same reset.
# Either way fio's verify passes.
ctl=$(ctl_dfs "$dev")
for what in bad_cid dup_cid; do
	resets0=$(sed -n 's/.*resets \([0-9]*\).*/\1/p' "$ctl/summary")
	mark "$what"
	fio --allow_file_create=0 --name="$what" --filename=$dev --direct=1 --ioengine=libaio --iodepth=16 \
		--rw=randwrite --bs=4k --size=16m --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output-format=json --output=$out >/dev/null 2>&1 &
	fio_pid=$!
	io_started "$dev" $fio_pid || fail "$what: fio ended or did no I/O"
	echo "$what" >"$ctl/inject"
	wait_dmesg "controller reset done" 120 || fail "$what: no reset after the bad completion"
	wait $fio_pid || { tail -c 600 $out; fail "fio failed across the $what reset"; }
	verified $out 16 "the $what reset"
	d=$(dmesg_since)
	grep -E "stale completion|invalid command id|bad command id|reset done" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /'
	grep -qE "stale completion for command id 0x[0-9a-f]+: resetting" <<<"$d" || fail "$what: not logged as stale"
	grep -q "resetting the controller after a completion with a bad command id" <<<"$d" ||
		fail "$what: reset not from the bad completion"
	# bad_cid drops a command's only completion, so the reset must requeue
	# it; after dup_cid the command has ended and only others may be left.
	if [ "$what" = bad_cid ]; then
		grep -qE "controller reset done, .* [1-9][0-9]* command\(s\) requeued" <<<"$d" ||
			fail "the dropped command was not requeued"
	fi
	resets1=$(sed -n 's/.*resets \([0-9]*\).*/\1/p' "$ctl/summary")
	[ "$resets1" -gt "$resets0" ] || fail "$what: reset counter did not move ($resets0 -> $resets1)"
	log "$what: resets $resets0 -> $resets1"
done
# Requests taken back by the resets gave back their pool blocks.
pools_idle "$ctl"
rmmod nvme_dbbuf
