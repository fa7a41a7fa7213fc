# Not in make check yet (wip_): some runs end with a module that loaded
# after a tolerated fault and then cannot be unloaded; not explained.
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
fs=/sys/kernel/debug/failslab
[ -d $fs ] || fail "no $fs (CONFIG_FAILSLAB)"
echo N >$fs/ignore-gfp-wait # GFP_KERNEL allocations may fail too
echo 1 >$fs/verbose         # the notice, no stack
echo 0 >$fs/verbose_ratelimit_interval_ms # every notice: they tell where
for dep in $(modinfo -F depends "$REPO/vimc_debayer.ko" | tr , ' '); do
	modprobe "$dep" || fail "modprobe $dep"
done
# udev's probes of the nodes each load makes would hold them open past the
# next unload; they run again once the sweep is over.
udevadm control --stop-exec-queue
mark vimc_faults
err=/tmp/vimc-faults.err
SPLAT_RE=$SPLAT_RE python3 - "$REPO/vimc_debayer.ko" "${VIMC_FAULT_POINTS:-40}" 2>"$err" <<'PY' ||
import ctypes, errno, os, re, sys, time

ko, points = sys.argv[1], int(sys.argv[2])
splat = re.compile(os.environ["SPLAT_RE"])
libc = ctypes.CDLL(None, use_errno=True)
SYS_finit_module, SYS_delete_module = 313, 176
nth = os.open("/proc/thread-self/fail-nth", os.O_WRONLY)
kmsg = os.open("/dev/kmsg", os.O_RDWR | os.O_NONBLOCK)
os.lseek(kmsg, 0, os.SEEK_END)
INIT, NOTICE = "registering the faux device", "FAULT_INJECTION: forcing a failure"
PARAMS, BUF = ctypes.c_char_p(b"dyndbg=+p"), ctypes.create_string_buffer(32)


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


def set_nth(n):
    os.write(nth, str(n).encode())  # the file has no offset to seek


def unload():
    for _ in range(100):
        if libc.syscall(SYS_delete_module, b"vimc_debayer", os.O_NONBLOCK) == 0:
            return None
        if ctypes.get_errno() == errno.ENOENT:
            return None
        time.sleep(0.1)
    return os.strerror(ctypes.get_errno())


def load(n):
    """Loads with the nth allocation failing; (ok, errno, log, in_init, left)."""
    fd = os.open(ko, os.O_RDONLY)
    # Opened before the count starts (an open allocates), read after.
    rd = os.open("/proc/thread-self/fail-nth", os.O_RDONLY)
    # The kernel's dynamic debug WARNs when its table for a module cannot
    # be allocated (before our init): expected, bracketed for the runner,
    # and every other splat is refused here.
    os.write(kmsg, b"rfl-test-expect-splat")
    ctypes.memset(BUF, 0, len(BUF))
    set_nth(n)
    # Until the count is reset, no Python allocation may reach the kernel
    # (an mmap would fail in its place): plain libc calls on ready buffers.
    r = libc.syscall(SYS_finit_module, fd, PARAMS, 0)
    err = ctypes.get_errno()
    libc.read(rd, BUF, 31)
    libc.write(nth, b"0", 1)
    left = int(BUF.value.split()[0] if BUF.value.strip() else b"0")
    os.close(rd)
    os.close(fd)
    stuck = unload() if r == 0 else None
    os.write(kmsg, b"rfl-test-expect-splat-end")
    log = messages()
    if stuck:
        i = next((i for i, m in enumerate(log) if NOTICE in m), 0)
        refs = open("/sys/module/vimc_debayer/refcnt").read().strip()
        raise RuntimeError(f"n={n}: loaded, cannot be unloaded ({stuck}, refcnt {refs}): " + " | ".join(log[i:i + 12]))
    expected = False  # inside the kernel's own dyndbg WARN, up to its end
    for m in log:
        if re.search(r"WARNING: lib/dynamic_debug.c:\d+ at ddebug_module_notify", m):
            expected = True
        elif expected and "---[ end trace" in m:
            expected = False
        elif not expected and splat.search(m):
            raise RuntimeError(f"n={n}: splat: {m}")
    idx = lambda s: next((i for i, m in enumerate(log) if s in m), None)
    i, f = idx(INIT), idx(NOTICE)
    # Where the failure struck: in our init, or before it (or nowhere:
    # n past the load's allocations, `left` > 0).
    in_init = i is not None and (f is None and left > 0 or f is not None and f > i)
    return r == 0, err, log, in_init, left


def has(log, s):
    return any(s in m for m in log)


def report(kind, value, tb):
    # The kernel log is the channel the runner shows for a failed test.
    os.write(kmsg, b"rfl-test-expect-splat-end")
    os.write(kmsg, f"vimc_faults: {kind.__name__}: {value}"[:900].encode())
    sys.__excepthook__(kind, value, tb)


sys.excepthook = report


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
lo, hi = 1, used
while lo < hi:
    mid = (lo + hi) // 2
    if load(mid)[3]:
        hi = mid
    else:
        lo = mid + 1
start = lo
step = max(1, (used - start) // points)
stats = dict(tries=0, in_init=0, failed=0, media=0, nodes=0, loaded=0)
errs = {}
t0 = time.monotonic()
for n in range(start, used + 1, step):
    ok, err, log, in_init, _ = load(n)
    stats["tries"] += 1
    stats["in_init"] += in_init
    if ok:
        stats["loaded"] += 1
    else:
        stats["failed"] += 1
        e = errno.errorcode.get(err, str(err))
        errs[e] = errs.get(e, 0) + 1
    if has(log, "media device initialised"):
        stats["media"] += 1
        assert has(log, "media device released"), f"n={n}: media device not released: {log[-5:]}"
    if not ok and has(log, "registering its nodes"):
        stats["nodes"] += 1
secs = time.monotonic() - t0
print(f"    {used} allocations per load, init's from #{start}; every {step}th failed: {stats},"
      f" errors {errs}, {secs / stats['tries']:.1f} s per load")
# Many allocations may fail without failing the load (uevents, debugfs);
# enough of them must have made it fail.
assert stats["failed"] >= points // 5, stats
assert stats["nodes"] >= 2, f"too few failures after the nodes were registered: {stats}"
PY
	{
		udevadm control --start-exec-queue
		tail -n 2 "$err" | cut -c1-400 | while read -r l; do echo "vimc_faults: $l" >/dev/kmsg; done
		fail "fault sweep (the reason is in the kernel log)"
	}
udevadm control --start-exec-queue
udevadm settle -t 30 || true
echo Y >$fs/ignore-gfp-wait
# Still loads, streams a frame of colour bars, unloads.
insmod_ours vimc_debayer
mdev=$(media_of vimc_debayer) || fail "no media device after the fault sweep"
vimc_setup "$mdev" Capture SRGGB8_1X8 640 480 3 || fail "pipeline after the fault sweep"
vid=$(media-ctl -d "$mdev" -e Capture) || fail "no capture node"
v4l2-ctl -d "$vid" --stream-mmap --stream-count=1 --stream-to=/tmp/faults.raw >/dev/null || fail "stream"
[ "$(stat -c %s /tmp/faults.raw)" = $((640 * 480 * 3)) ] || fail "frame size"
rmmod_settled vimc_debayer
log "load after the sweep: pipeline set up, one frame streamed, unloaded"
