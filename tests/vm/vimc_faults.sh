# Every failure of vimc_debayer's load unwinds cleanly (issue 19: the media
# device and its graph are freed by the V4L2 device's reference count).
# The loading task's Nth slab allocation fails (failslab through
# /proc/thread-self/fail-nth, as syzkaller injects faults; failslab's
# notice tells where it struck): a binary search finds about where the
# module's own init starts, then N steps through the rest of the load.
# Each load must fail with an error or succeed (a failed uevent or debugfs
# file does not fail it), without a splat; every media device initialised
# must be released (the V4L2 device's last reference went) before the next
# load.  The runner's kmemleak scan follows.  Then a plain load still works.
log "setting up"
fs=/sys/kernel/debug/failslab
[ -d $fs ] || fail "no $fs (CONFIG_FAILSLAB)"
# udev's v4l_id (60-persistent-v4l.rules) opens every video node a load
# makes: such an open file would hold a node past the next unload, or
# hold the module while a failed init frees its code.  Masked for the
# sweep (a stopped event queue instead leaves a backlog that slows what
# follows).
mask=/run/udev/rules.d/60-persistent-v4l.rules
devkmsg=$(cat /proc/sys/kernel/printk_devkmsg)
restore() {
	echo 0 >$fs/reject-start
	echo 0 >$fs/reject-end
	echo Y >$fs/ignore-gfp-wait
	echo "$devkmsg" >/proc/sys/kernel/printk_devkmsg
	if [ -L $mask ]; then
		rm -f $mask
		udevadm control --reload || true
	fi
}
trap restore EXIT
trap 'exit 143' TERM INT
echo N >$fs/ignore-gfp-wait # GFP_KERNEL allocations may fail too
echo 1 >$fs/verbose         # the notice, no stack
echo 0 >$fs/verbose_ratelimit_interval_ms # every notice: they tell where
for dep in $(modinfo -F depends "$REPO/vimc_debayer.ko" | tr , ' '); do
	modprobe "$dep" || fail "modprobe $dep"
done
# A kernel bug, not injected: __video_register_device ignores the failure
# of the node's media interface (media_devnode_create), and
# __v4l2_device_register_subdev_nodes then links the NULL interface (a
# null-ptr-deref in media_add_link that kills the loading task inside the
# module's init; in-tree vimc takes the same path).  No fault is injected
# with media_devnode_create on the stack: its extent is up to the next
# symbol in /proc/kallsyms (address order for the kernel's own symbols).
read -r rs re < <(awk '$3 == "media_devnode_create" {s = $1; next} s && $1 != s {print s, $1; exit}' /proc/kallsyms)
[ -n "${re:-}" ] && [ $((0x$rs)) -ne 0 ] || fail "no address for media_devnode_create or its end"
echo "0x$rs" >$fs/reject-start
echo "0x$re" >$fs/reject-end
log "no fault in media_devnode_create: $(cat $fs/reject-start)-$(cat $fs/reject-end)"
# The loads run in a small C helper (built by tools/vm-test), which disarms
# the count as soon as the load returns: no allocation of the harness
# (Python's) can meet it.
helper=$REPO/build/vm/fail_nth_load
[ -x "$helper" ] || fail "no $helper (tools/vm-test builds it)"
[ -f /usr/lib/udev/rules.d/60-persistent-v4l.rules ] || [ -f /lib/udev/rules.d/60-persistent-v4l.rules ] ||
	fail "no 60-persistent-v4l.rules to mask"
mkdir -p /run/udev/rules.d
ln -sfn /dev/null $mask
udevadm control --reload
udevadm settle -t 10 || true
# /dev/kmsg writes are rate-limited per open file (10 per 5 s): the
# brackets and the report below must all arrive.
echo on >/proc/sys/kernel/printk_devkmsg
mark vimc_faults
err=/tmp/vimc-faults.err
SPLAT_RE=$SPLAT_RE python3 - "$REPO/vimc_debayer.ko" "${VIMC_FAULT_POINTS:-16}" $helper 2>"$err" <<'PY' ||
import ctypes, errno, os, re, subprocess, sys, time

ko, points, helper = sys.argv[1], int(sys.argv[2]), sys.argv[3]
splat = re.compile(os.environ["SPLAT_RE"])
libc = ctypes.CDLL(None, use_errno=True)
SYS_delete_module = 176
kmsg = os.open("/dev/kmsg", os.O_RDWR | os.O_NONBLOCK)
os.lseek(kmsg, 0, os.SEEK_END)
INIT, NOTICE = "registering the faux device", "FAULT_INJECTION: forcing a failure"


def messages():
    out = []
    while True:
        try:
            rec = os.read(kmsg, 8192).decode(errors="replace")
        except BlockingIOError:
            return out
        except OSError as e:  # EPIPE: records overwritten; go on
            if e.errno != errno.EPIPE:
                raise
            continue
        out.append(rec.split(";", 1)[-1].strip())


def has(log, s):
    return any(s in m for m in log)


def unload():
    for _ in range(100):
        if libc.syscall(SYS_delete_module, b"vimc_debayer", os.O_NONBLOCK) == 0:
            return None
        if ctypes.get_errno() == errno.ENOENT:
            return None
        time.sleep(0.1)
    return os.strerror(ctypes.get_errno())


def load(n):
    """Loads with the nth fault point failing; (ok, errno, log, in_init, left)."""
    # The kernel's dynamic debug WARNs when its table for a module cannot
    # be allocated (before our init): expected, bracketed for the runner,
    # and every other splat is refused here.
    os.write(kmsg, b"rfl-test-expect-splat")
    out = subprocess.run([helper, ko, "dyndbg=+p", str(n)], capture_output=True, text=True)
    fields = out.stdout.split()
    stuck = unload() if fields[:1] == ["0"] else None  # whatever else it said
    if len(fields) != 3 or out.returncode == 2:
        time.sleep(1)
        log = messages()
        i = next((i for i, m in enumerate(log) if NOTICE in m), 0)
        raise RuntimeError(f"n={n}: {helper}: exit {out.returncode} [{out.stdout.strip()}]"
                           f" [{out.stderr.strip()}] {state()}: " + " | ".join(log[i:i + 30]))
    # "?": the count struck the helper's own read of it (n just past the
    # load's allocations); nothing left then.
    r, err, left = int(fields[0]), int(fields[1]), int(fields[2].replace("?", "0"))
    os.write(kmsg, b"rfl-test-expect-splat-end")
    log = messages()
    if stuck:
        i = next((i for i, m in enumerate(log) if NOTICE in m), 0)
        raise RuntimeError(f"n={n}: loaded, cannot be unloaded ({stuck}, {state()}): "
                           + " | ".join(log[i:i + 40]))
    expected = False  # inside the kernel's own dyndbg WARN, up to its end
    for m in log:
        if re.search(r"WARNING: lib/dynamic_debug.c:\d+ at ddebug_module_notify", m):
            expected = True
        elif expected and "---[ end trace" in m:
            expected = False
        elif not expected and splat.search(m):
            raise RuntimeError(f"n={n}: splat: {m}")
    # Whether the load reached our init: INIT is its first statement.  Not
    # from failslab's notice: an allocation made with __GFP_NOWARN fails
    # without one.
    in_init = has(log, INIT)
    return r == 0, err, log, in_init, left


def holders():
    """Processes with a media, video or sub-device node open."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            comm = open(f"/proc/{pid}/comm").read().strip()
        except OSError:
            continue
        for fd in fds:
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if re.match(r"/dev/(media|video|v4l-subdev)", t):
                out.append(f"{comm}[{pid}]:{t}")
    return out


def state():
    """The module's state and references, and who holds its nodes open."""
    m = "/sys/module/vimc_debayer"
    try:
        st = open(f"{m}/initstate").read().strip()
        refs = open(f"{m}/refcnt").read().strip()
    except OSError:
        return "module not loaded"
    return f"module {st}, refcnt {refs}, nodes open by {holders()}"




def report(kind, value, tb):
    # The kernel log is the channel the runner shows for a failed test.
    os.write(kmsg, b"rfl-test-expect-splat-end")
    msg = f"{kind.__name__}: {value}"[:4000]
    for k in range(0, len(msg), 400):
        os.write(kmsg, f"vimc_faults: {msg[k:k + 400]}".encode())
    sys.__excepthook__(kind, value, tb)


sys.excepthook = report


t_begin = time.monotonic()
BIG = 10**6
# How many allocations a load makes: the count left after one (the first
# load makes more, creating what later loads find).
used = BIG
for _ in range(3):
    ok, err, log, _, left = load(BIG)
    assert ok, f"plain load failed: {os.strerror(err)}"
    assert has(log, "media device released"), "no release at rmmod"
    used = min(used, BIG - left)
# The first allocation of our init (a later n strikes later in the load;
# roughly: the count varies from load to load, kmemleak's own included).
# Fault points come in pairs under kmemleak: each tracked allocation is
# followed by kmemleak's own (__GFP_NOWARN, and a failure there is absorbed
# by its emergency pool), so one of any two consecutive points is a real
# allocation.  A single point could hit kmemleak's every time (an even
# step: CI once saw 16 of 17 loads succeed), and a pre-init point that did
# looked like init to the search.  So every point is tried with the next.
def load2(n):
    return load(n), load(n + 1)


lo, hi = 1, used
while lo < hi:
    mid = (lo + hi) // 2
    if all(r[3] for r in load2(mid)):
        hi = mid
    else:
        lo = mid + 1
start = lo
t_search = time.monotonic() - t_begin
step = max(1, (used - start) // points)
stats = dict(tries=0, in_init=0, failed=0, media=0, nodes=0, loaded=0)
errs = {}
t0 = time.monotonic()
for n in (m for k in range(start, used + 1, step) for m in (k, k + 1)):
    ok, err, log, in_init, _ = load(n)
    stats["tries"] += 1
    stats["in_init"] += in_init
    if ok:
        stats["loaded"] += 1
    elif in_init:
        # Failures before our init (none, unless the search landed early)
        # do not count towards the bound below.
        stats["failed"] += 1
        e = errno.errorcode.get(err, str(err))
        errs[e] = errs.get(e, 0) + 1
    if has(log, "media device initialised"):
        stats["media"] += 1
        assert has(log, "media device released"), f"n={n}: media device not released: {log[-5:]}"
    if not ok and has(log, "registering its nodes"):
        stats["nodes"] += 1
secs = time.monotonic() - t0
print(f"    {used} allocations per load, init's from #{start} (found in {t_search:.0f} s);"
      f" every {step}th and the next failed: {stats}, errors {errs}, {secs / stats['tries']:.1f} s per load")
# Many allocations may fail without failing the load (uevents, debugfs);
# enough of them must have made it fail.
assert stats["failed"] >= points // 5, stats
assert stats["nodes"] >= 2, f"too few failures after the nodes were registered: {stats}"
PY
	{
		tail -n 2 "$err" | cut -c1-400 | while read -r l; do echo "vimc_faults: $l" >/dev/kmsg; done
		fail "fault sweep (the reason is in the kernel log)"
	}
log "fault sweep done"
restore
# Still loads, streams a frame of colour bars, unloads.
insmod_ours vimc_debayer
mdev=$(media_of vimc_debayer) || fail "no media device after the fault sweep"
vimc_setup "$mdev" Capture SRGGB8_1X8 640 480 3 || fail "pipeline after the fault sweep"
vid=$(media-ctl -d "$mdev" -e Capture) || fail "no capture node"
v4l2-ctl -d "$vid" --stream-mmap --stream-count=1 --stream-to=/tmp/faults.raw >/dev/null || fail "stream"
[ "$(stat -c %s /tmp/faults.raw)" = $((640 * 480 * 3)) ] || fail "frame size"
rmmod_settled vimc_debayer
log "load after the sweep: pipeline set up, one frame streamed, unloaded"
