# nvme_dbbuf as a block driver: fio write+verify (crc32c) through rnvme0n1 at
# 512 B, 4 KiB, 128 KiB, 1 MiB and a mixed bssplit, 4 jobs at QD 32, with
# libaio and io_uring.  Asserts fio's JSON: no errors, every job verified
# what it wrote, and the disk's own sector counts (/sys/block/rnvme0n1/stat,
# read before and after; fio's sampled disk_util missed a short run's reads
# once) match the bytes fio wrote and read back.
insmod_ours nvme_dbbuf
wait_dmesg "rnvme0n1: [0-9]+ sectors" 60 || fail "no rnvme0n1 disk"
for i in $(seq 50); do [ -b /dev/rnvme0n1 ] && break; sleep 0.1; done
[ -b /dev/rnvme0n1 ] || fail "/dev/rnvme0n1 missing"
log "$(dmesg_since | grep -E 'rnvme0(n1)?:' | sed 's/.*: rnvme/rnvme/')"
cd /tmp
out=/tmp/fio-json
mkdir -p "$out"
# One fio for the ten runs (a start costs seconds under TCG): one
# stonewalled section each, 4 jobs per section.  Per-job region: enough
# I/Os to keep QD 32 busy, small enough for TCG.
jobs=$out/verify.fio
{
	printf '[global]\nfilename=/dev/rnvme0n1\nallow_file_create=0\ndirect=1\niodepth=32\nnumjobs=4\n'
	printf 'rw=randwrite\nverify=crc32c\ndo_verify=1\nverify_fatal=1\ngroup_reporting=0\n'
	for engine in libaio io_uring; do
		for spec in 512:128k 4k:512k 128k:1m 1m:2m split:1m; do
			bs=${spec%:*} size=${spec#*:}
			if [ $bs = split ]; then bsarg="bssplit=512/10:4k/50:64k/30:1m/10"; else bsarg="bs=$bs"; fi
			printf '[%s-%s-%s]\nstonewall\nioengine=%s\n%s\nsize=%s\noffset_increment=%s\n' \
				"$engine" "$bs" "$size" "$engine" "$bsarg" "$size" "$size"
		done
	done
} >"$jobs"
f=$out/verify.json
read -r _ _ r0 _ _ _ w0 _ </sys/block/rnvme0n1/stat
fio --output-format=json --output="$f" "$jobs" >/dev/null 2>&1 ||
	{ tail -20 "$f" 2>/dev/null; fail "fio verify runs exited non-zero"; }
read -r _ _ r1 _ _ _ w1 _ </sys/block/rnvme0n1/stat
python3 - "$f" $((r1 - r0)) $((w1 - w0)) <<'PY' || { head -c 600 "$f"; fail "fio verify runs: JSON check failed"; }
import collections, json, sys
text = open(sys.argv[1]).read()
# fio may print notes before the JSON document.
d = json.loads(text[text.index("{"):])
per = collections.Counter()
total = 0
for j in d["jobs"]:
    name = j["jobname"]
    assert j["error"] == 0, f"{name}: job error {j['error']}"
    s = name.split("-")[-1]
    size = int(s[:-1]) << {"k": 10, "m": 20}[s[-1]]
    w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
    # Each job wrote its region and read all of it back to verify.
    assert w == size and r == w, f"{name}: wrote {w}, verified {r}, region {size}"
    per[name] += 1
    total += size
assert len(per) == 10 and set(per.values()) == {4}, f"jobs per run: {dict(per)}"
# The disk's own sector counts against the bytes fio moved: every byte
# written reached it exactly once; the reads are the verify passes, plus
# at most what udev's probe reads after fio closes the disk.
rd, wr = int(sys.argv[2]) * 512, int(sys.argv[3]) * 512
assert wr == total, f"disk wrote {wr} bytes, fio {total}"
assert total <= rd <= total + (2 << 20), f"disk read {rd} bytes, fio verified {total}"
print(f"  {len(per)} runs of 4 jobs written and verified: {', '.join(per)}")
print(f"  {wr} bytes written / {rd} read at the disk")
PY
log "10 fio verify runs passed (libaio and io_uring; 512 B, 4 KiB, 128 KiB, 1 MiB, mixed)"
# Sequential reads with big buffers: the block layer merges physically
# contiguous pages into segments beyond 64 KiB (DMA debug checks the
# device's max segment size against them; guest-run fails on its warning).
fio --allow_file_create=0 --name=seq --filename=/dev/rnvme0n1 --direct=1 --ioengine=libaio --iodepth=32 \
	--rw=read --bs=128k --size=64m --time_based --runtime=6 --output-format=json --output=$out/seq.json >/dev/null 2>&1 ||
	fail "sequential 128 KiB read failed"
dmesg_since | grep -E "nvme_dbbuf.*(timed out|stale|invalid command id|cannot describe)" && fail "driver reported command errors"
# Per-request memory: a small PDU; PRP lists and scatterlists came from the
# pools for the 128 KiB and 1 MiB I/O and all went back.
ctl=$(ctl_dfs rnvme0n1)
pools_idle "$ctl" "prp_lists sg_lists"
pdu=$(sed -n 's/^requests [0-9]* pdu_bytes \([0-9]*\)$/\1/p' "$ctl/memory")
[ -n "$pdu" ] && [ "$pdu" -le 256 ] || fail "per-request driver data is ${pdu:-?} bytes"
rmmod nvme_dbbuf
