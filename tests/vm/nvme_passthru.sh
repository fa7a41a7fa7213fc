# /dev/rnvme<C>: nvme-cli's admin passthrough through our character device
# gives what it gives through the in-tree driver's /dev/nvme<C> for the same
# controller; bad ioctl input gets a clean error code.
bdf=$(nvme_bdfs | head -n1)
[ -n "$bdf" ] || fail "no NVMe controller"
modprobe nvme || fail "cannot load the in-tree nvme driver"
insmod_ours nvme_dbbuf
pci_bind "$bdf" nvme_dbbuf
# The controller node is the disk's name less its namespace: rnvme<C>.
ours=$(blkdev_of "$bdf")
ours=${ours%n1}
[ -c "$ours" ] || fail "no rnvme character device for $bdf (${ours:-no disk})"
out=$REPO/build/vm/passthru
mkdir -p "$out"
nvme id-ctrl "$ours" -o json >"$out/ours-id-ctrl.json" || fail "nvme id-ctrl $ours"
nvme id-ns "$ours" -n 1 -o json >"$out/ours-id-ns.json" || fail "nvme id-ns $ours -n 1"
nvme smart-log "$ours" -o json >"$out/ours-smart.json" || fail "nvme smart-log $ours"
nvme id-ctrl "$ours" -H >/dev/null || fail "nvme id-ctrl -H $ours"
log "nvme-cli on $ours: id-ctrl, id-ns, smart-log"

# The ioctl's error handling, on our node while bound to us.
python3 "$REPO/tests/vm/nvme_passthru.py" "$ours" >"$out/ours-bad.txt" 2>&1 ||
	{ cat "$out/ours-bad.txt"; fail "bad-input checks on $ours"; }
sed 's/^/  /' "$out/ours-bad.txt"

# A user fault in the ioctl's buffer (userfaultfd, never answered) does not
# hold up unbind.
python3 "$REPO/tests/vm/nvme_uffd.py" "$ours" "$bdf" ||
	fail "unbind behind a passthrough ioctl blocked on a user fault"
pci_bind "$bdf" nvme_dbbuf
ours=$(blkdev_of "$bdf")
ours=${ours%n1}
[ -c "$ours" ] || fail "no rnvme character device after rebinding $bdf"

# An open file across unbind: later ioctls fail cleanly.
exec {fd}<"$ours"
pci_bind "$bdf" nvme
python3 - "$fd" <<'PY' || fail "ioctl on a stale open file"
import errno, fcntl, struct, sys
fd = int(sys.argv[1])
cmd = bytearray(72); cmd[0] = 0x18  # Keep Alive: valid, no data
try:
    fcntl.ioctl(fd, 0xc0484e41, cmd, True)
except OSError as e:
    assert e.errno == errno.ENODEV, e
    print("  ioctl on a file opened before unbind: ENODEV")
else:
    raise SystemExit("ioctl after unbind succeeded")
PY
exec {fd}<&-

theirs=$(ls -d /sys/bus/pci/devices/$bdf/nvme/nvme* 2>/dev/null | head -n1)
theirs=/dev/$(basename "$theirs")
[ -c "$theirs" ] || fail "no in-tree nvme character device for $bdf"
nvme id-ctrl "$theirs" -o json >"$out/theirs-id-ctrl.json" || fail "nvme id-ctrl $theirs"
nvme id-ns "$theirs" -n 1 -o json >"$out/theirs-id-ns.json" || fail "nvme id-ns $theirs -n 1"
nvme smart-log "$theirs" -o json >"$out/theirs-smart.json" || fail "nvme smart-log $theirs"
python3 - "$out" <<'PY' || fail "nvme-cli output differs between the drivers"
import json, sys
d = sys.argv[1]
load = lambda n: json.load(open(f"{d}/{n}.json"))
for what in ("id-ctrl", "id-ns"):
    a, b = load("ours-" + what), load("theirs-" + what)
    assert a == b, (what, {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)})
    print(f"  {what}: {len(a)} fields identical")
a, b = load("ours-smart"), load("theirs-smart")
# Counters move with the I/O in between; the rest is the device's state.
moving = {"data_units_read", "data_units_written", "host_read_commands", "host_write_commands",
          "controller_busy_time", "power_on_hours", "unsafe_shutdowns", "power_cycles"}
assert set(a) == set(b), set(a) ^ set(b)
for k in a:
    if k in moving:
        assert int(a[k]) <= int(b[k]), (k, a[k], b[k])
    else:
        assert a[k] == b[k], (k, a[k], b[k])
print(f"  smart-log: {len(a)} fields agree ({len(moving & set(a))} counters non-decreasing)")
PY
assert_sn=$(python3 -c "import json,sys; print(json.load(open('$out/ours-id-ctrl.json'))['sn'].strip())")
log "serial $assert_sn through both drivers"
# The in-tree driver's answers to the same bad input, for comparison.
python3 "$REPO/tests/vm/nvme_passthru.py" --safe-only "$theirs" 2>&1 | sed 's/^/  in-tree: /' || true
pci_unbind "$bdf"
rmmod nvme_dbbuf
rmmod nvme 2>/dev/null || true
