#!/usr/bin/env python3
"""An admin passthrough ioctl whose user buffer faults for as long as
userspace likes (userfaultfd, never answered) must not hold up unbind: the
driver copies user data before it borrows the controller.

usage: nvme_uffd.py /dev/rnvmeC BDF
Prints the unbind time; exits non-zero if unbind took 10 s or more or the
ioctl did not end with an error once the fault was let go."""
import ctypes, errno, fcntl, mmap, os, select, struct, subprocess, sys, threading, time


def die(msg):
    print(f"  {msg}", flush=True)
    sys.exit(1)


node, bdf = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
SYS_USERFAULTFD = 323  # x86_64
UFFDIO_API = 0xC018AA3F
UFFDIO_REGISTER = 0xC020AA00
UFFDIO_REGISTER_MODE_MISSING = 1
ADMIN = 0xC0484E41

# No UFFD_USER_MODE_ONLY: the fault to catch is the kernel's copy_from_user.
uffd = libc.syscall(SYS_USERFAULTFD, os.O_CLOEXEC)
if uffd < 0:
    e = ctypes.get_errno()
    die(f"userfaultfd: {os.strerror(e)}" + (" (kernel without CONFIG_USERFAULTFD)" if e == errno.ENOSYS else ""))
api = bytearray(struct.pack("<QQQ", 0xAA, 0, 0))
fcntl.ioctl(uffd, UFFDIO_API, api, True)
area = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
addr = ctypes.addressof(ctypes.c_char.from_buffer(area))
reg = bytearray(struct.pack("<QQQQ", addr, 4096, UFFDIO_REGISTER_MODE_MISSING, 0))
fcntl.ioctl(uffd, UFFDIO_REGISTER, reg, True)

# Identify Controller into the registered page: the driver reads the
# caller's buffer first, which faults and waits on the userfaultfd.
cmd = bytearray(72)
struct.pack_into("<BBHIIIQQII6II", cmd, 0, 0x06, 0, 0, 0, 0, 0, 0, addr, 0, 4096,
                 1, 0, 0, 0, 0, 0, 0)
fd = os.open(node, os.O_RDONLY)
result = {}


def passthrough():
    try:
        result["ret"] = fcntl.ioctl(fd, ADMIN, cmd, True)
    except OSError as e:
        result["ret"] = -e.errno


t = threading.Thread(target=passthrough, daemon=True)
t.start()
# The page fault, reported on the userfaultfd: a struct uffd_msg with event
# UFFD_EVENT_PAGEFAULT (0x12) and the faulting address at offset 16.
if not select.select([uffd], [], [], 5)[0]:
    die(f"no page fault reported within 5 s: {result}")
msg = os.read(uffd, 32)
event, fault = msg[0], struct.unpack_from("<Q", msg, 16)[0]
if event != 0x12 or fault & ~0xFFF != addr:
    die(f"unexpected userfaultfd message: event {event:#x} address {fault:#x}")
if not t.is_alive():
    die(f"the ioctl did not block on the fault: {result}")
print("  ioctl blocked on a user fault in its data buffer")
start = time.monotonic()
unbind = subprocess.Popen(["sh", "-c", f"echo {bdf} > /sys/bus/pci/drivers/nvme_dbbuf/unbind"])
while unbind.poll() is None and time.monotonic() - start < 10:
    time.sleep(0.05)
took = time.monotonic() - start
done = unbind.poll() is not None
# Let the fault go: closing the userfaultfd wakes the faulting copy, which
# then finds an ordinary zero page.
os.close(uffd)
try:
    unbind.wait(60)
except subprocess.TimeoutExpired:
    die("unbind still running 60 s after the fault was let go")
t.join(10)
print(f"  unbind with the ioctl blocked: {took:.2f} s")
if not done:
    die("unbind waited for the ioctl's user fault")
if t.is_alive():
    die("the ioctl did not end after the fault was let go")
# The copy goes on once the fault is let go (ENODEV: the controller is
# gone), or fails (EFAULT) if the kernel did not retry the fault.
ret = result.get("ret")
if ret not in (-errno.ENODEV, -errno.EFAULT):
    die(f"ioctl after unbind returned {ret}, want ENODEV or EFAULT")
print(f"  the ioctl then failed with {errno.errorcode[-ret]}")
