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
n=0
for engine in libaio io_uring; do
	# Per-job region: enough I/Os to keep QD 32 busy, small enough for TCG.
	for spec in 512:128k 4k:512k 128k:1m 1m:2m split:1m; do
		bs=${spec%:*} size=${spec#*:}
		if [ $bs = split ]; then bsarg="--bssplit=512/10:4k/50:64k/30:1m/10"; else bsarg="--bs=$bs"; fi
		f=$out/$engine-$bs.json
		read -r _ _ r0 _ _ _ w0 _ </sys/block/rnvme0n1/stat
		fio --allow_file_create=0 --name=verify --filename=/dev/rnvme0n1 --direct=1 --ioengine=$engine \
			--iodepth=32 --numjobs=4 --size=$size --offset_increment=$size $bsarg \
			--rw=randwrite --verify=crc32c --do_verify=1 --verify_fatal=1 \
			--group_reporting=0 --output-format=json --output="$f" >/dev/null 2>&1 ||
			{ cat "$f" 2>/dev/null | tail -20; fail "fio $engine bs=$bs exited non-zero"; }
		read -r _ _ r1 _ _ _ w1 _ </sys/block/rnvme0n1/stat
		python3 - "$f" "$size" $((r1 - r0)) $((w1 - w0)) <<'PY' || { head -c 600 "$f"; fail "fio $engine bs=$bs: JSON check failed"; }
import json, sys
text = open(sys.argv[1]).read()
# fio may print notes before the JSON document.
d = json.loads(text[text.index("{"):])
size = int(sys.argv[2][:-1]) << {"k": 10, "m": 20}[sys.argv[2][-1]]
jobs = d["jobs"]
assert len(jobs) == 4, f"{len(jobs)} jobs"
for j in jobs:
    assert j["error"] == 0, f"job error {j['error']}"
    w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
    # Each job wrote its region and read all of it back to verify.
    assert w == size and r == w, f"wrote {w}, verified {r}, region {size}"
# The disk's own sector counts against the bytes fio moved: every byte
# written reached it exactly once; the reads are the verify pass, plus at
# most what udev's probe reads after fio closes the disk.
rd, wr = int(sys.argv[3]) * 512, int(sys.argv[4]) * 512
assert wr == 4 * size, f"disk wrote {wr} bytes, fio {4 * size}"
assert 4 * size <= rd <= 4 * size + (2 << 20), f"disk read {rd} bytes, fio verified {4 * size}"
print(f"  {sys.argv[1].split('/')[-1]}: 4 jobs x {sys.argv[2]} written and verified, "
      f"{wr} bytes written / {rd} read at the disk")
PY
		n=$((n + 1))
	done
done
log "$n fio verify runs passed"
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
