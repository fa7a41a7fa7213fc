# Everything at once for 45 s, under lockdep (test kernel): on controller A
# a fio write+verify runs while debugfs resets, dbbuf switches and admin
# passthrough commands take turns; controller B is unbound and bound again
# in a loop.  fio's verify must pass, every operation must succeed, and the
# runner checks dmesg for lockdep, KASAN and other splats.
mapfile -t bdfs < <(nvme_bdfs)
[ ${#bdfs[@]} -ge 2 ] || fail "need two controllers (${#bdfs[*]})"
a=${bdfs[0]} b=${bdfs[1]}
insmod_ours nvme_dbbuf
pci_bind "$a" nvme_dbbuf
pci_bind "$b" nvme_dbbuf
dev=$(blkdev_of "$a")
[ -b "$dev" ] || fail "no disk on $a"
cdev=${dev%n1}
ctl=$(ctl_dfs "$dev")
[ -d "$ctl" ] || fail "no $ctl"
runtime=45
mark stress
fio --allow_file_create=0 --name=stress --filename="$dev" --direct=1 --ioengine=libaio --iodepth=16 \
	--rw=randwrite --bs=4k --size=32m --verify=crc32c --verify_backlog=256 --verify_fatal=1 \
	--time_based --runtime=$runtime --output-format=json --output=/tmp/stress.json >/dev/null 2>&1 &
fio_pid=$!
# Controller B: unbind/bind until fio ends.
(
	n=0
	while kill -0 $fio_pid 2>/dev/null; do
		echo "$b" >/sys/bus/pci/drivers/nvme_dbbuf/unbind || exit 1
		echo "$b" >/sys/bus/pci/drivers/nvme_dbbuf/bind || exit 1
		n=$((n + 1))
	done
	echo "$n" >/tmp/stress-binds
) &
binder=$!
ops=0 i=0
while kill -0 $fio_pid 2>/dev/null; do
	case $((i % 5)) in
	0) echo 1 >"$ctl/reset" ;;
	1) echo 0 >"$ctl/dbbuf" ;;
	2) nvme id-ctrl "$cdev" >/dev/null ;;
	3) echo 1 >"$ctl/dbbuf" ;;
	4) nvme smart-log "$cdev" >/dev/null ;;
	esac || fail "operation $((i % 5)) failed (round $i)"
	ops=$((ops + 1)) i=$((i + 1))
	sleep 1
done
wait $fio_pid || { tail -c 800 /tmp/stress.json; fail "fio verify failed under stress"; }
wait $binder || fail "unbind/bind loop on $b failed"
python3 - /tmp/stress.json <<'PY' || fail "fio JSON"
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
assert j["error"] == 0, j["error"]
w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
assert w > 0 and r > 0, (w, r)
print(f"  fio: {w >> 20} MiB written, {r >> 20} MiB verified")
PY
log "$ops resets/switches/passthrough commands on $a, $(cat /tmp/stress-binds) unbind/bind cycles on $b in ${runtime}s"
# Each of the five operations twice at least while fio ran: one that hung
# would leave fewer (a count per second would only measure the machine).
[ "$ops" -ge 10 ] || fail "only $ops operations in ${runtime}s"
[ "$(cat /tmp/stress-binds)" -ge 3 ] || fail "only $(cat /tmp/stress-binds) bind cycles"
pci_unbind "$a"
pci_unbind "$b"
rmmod nvme_dbbuf
