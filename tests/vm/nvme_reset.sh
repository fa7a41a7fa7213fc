# Error recovery: a lost completion times out, the driver sends Abort, and
# on the second timeout resets the controller, which requeues the command;
# fio's write+verify sees no error.  The completion is lost on purpose with
# the block layer's fault injection (io-timeout-fail + fail_io_timeout), the
# same hook C drivers honour through blk_should_fake_timeout().
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
fio --name=rec --filename=$dev --direct=1 --ioengine=libaio --iodepth=16 \
	--rw=randwrite --bs=4k --size=8m --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--output-format=json --output=$out >/dev/null 2>&1 ||
	{ tail -c 600 $out; fail "fio failed across the recovery"; }
echo 0 >$sys/io-timeout-fail
echo 0 >$fi_dir/probability
python3 - $out <<'PY' || fail "fio JSON"
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
assert j["error"] == 0 and j["write"]["io_bytes"] == 8 << 20 and j["read"]["io_bytes"] == 8 << 20, j["error"]
print("  8 MiB written and verified across the recovery")
PY
d=$(dmesg_since)
grep -E "timed out|Abort|abort of|reset|requeued" <<<"$d" | sed 's/^\[[ 0-9.]*\] /  /'
grep -q "timed out, sending Abort" <<<"$d" || fail "no Abort after the first timeout"
grep -q "timed out after Abort: resetting" <<<"$d" || fail "no reset after the second timeout"
grep -qE "controller reset done, .* [1-9][0-9]* command\(s\) requeued" <<<"$d" || fail "reset requeued nothing"
grep -qE "stale completion|invalid command id" <<<"$d" && fail "bad completions after the reset"
# The disk still works after the reset.
dd if=$dev of=/dev/null bs=1M count=4 iflag=direct 2>/dev/null || fail "read after reset failed"
rmmod nvme_dbbuf
