#!/usr/bin/env python3
"""Bad input to the NVMe admin passthrough ioctl: each case must end with a
clean error code (and the controller must still answer afterwards).

usage: nvme_passthru.py [--safe-only] /dev/NODE
--safe-only skips the cases that would run a destructive command on a driver
that accepts it (the in-tree driver accepts Format NVM) and only reports."""
import ctypes, errno, fcntl, os, struct, sys

ADMIN = 0xc0484e41
ADMIN64 = 0xc0504e47
args = [a for a in sys.argv[1:] if not a.startswith("--")]
safe_only = "--safe-only" in sys.argv
node = args[0]


def cmd(opcode=0x06, flags=0, nsid=0, addr=0, data_len=0, cdw10=0, metadata=0, metadata_len=0, size=72):
    b = bytearray(size)
    struct.pack_into("<BBHIIIQQII6II", b, 0, opcode, flags, 0, nsid, 0, 0, metadata, addr,
                     metadata_len, data_len, cdw10, 0, 0, 0, 0, 0, 0)
    return b


buf = ctypes.create_string_buffer(1 << 20)
addr = ctypes.addressof(buf)
fd = os.open(node, os.O_RDONLY)


def call(req, arg):
    try:
        return fcntl.ioctl(fd, req, arg, True) if isinstance(arg, bytearray) else fcntl.ioctl(fd, req, arg)
    except OSError as e:
        return -e.errno


failures = 0


def expect(name, got, want):
    global failures
    ok = got == want
    if not safe_only and not ok:
        failures += 1
    show = lambda v: errno.errorcode.get(-v, v) if isinstance(v, int) and v < 0 else v
    print(f"{'ok ' if ok else 'BAD'} {name}: got {show(got)}, want {show(want)}")


# A good Identify Controller first: returns 0 and fills the buffer.
expect("identify controller", call(ADMIN, cmd(addr=addr, data_len=4096, cdw10=1)), 0)
vid = struct.unpack_from("<H", buf.raw, 0)[0]
expect("identify data (PCI vendor id non-zero)", vid != 0, True)
c64 = cmd(addr=addr, data_len=4096, cdw10=1, size=80)
struct.pack_into("<Q", c64, 72, 0xdeadbeefdeadbeef)
expect("identify via ADMIN64", call(ADMIN64, c64), 0)
expect("ADMIN64 result written", struct.unpack_from("<Q", c64, 72)[0], 0)
# An NVMe error status comes back as a positive return value (Invalid Field
# in Command, 0x2, for a CNS nobody implements).
ctypes.memset(addr, 0xa5, 4096)
expect("identify CNS 0xfe: NVMe status", call(ADMIN, cmd(addr=addr, data_len=4096, cdw10=0xfe)), 0x2 | 0x4000)
# A command that fails leaves the caller's buffer as it was.
expect("buffer untouched by the failed command", buf.raw[:4096] == b"\xa5" * 4096, True)
# Unknown ioctl number, and the right number with the wrong size.
expect("unknown ioctl", call(0xc0484e99, cmd()), -errno.ENOTTY)
expect("wrong size in ioctl number", call((ADMIN & ~(0x3fff << 16)) | (64 << 16), bytearray(64)), -errno.ENOTTY)
# Bad user pointers: the argument itself, and the data buffer.
expect("bad argument pointer", call(ADMIN, 16), -errno.EFAULT)
expect("bad data pointer", call(ADMIN, cmd(addr=16, data_len=4096, cdw10=1)), -errno.EFAULT)
# Oversized data length, metadata, fused/SGL flags.
expect("oversized data length", call(ADMIN, cmd(addr=addr, data_len=1 << 20, cdw10=1)), -errno.EINVAL)
expect("data length 4 GiB - 1", call(ADMIN, cmd(addr=addr, data_len=0xffffffff, cdw10=1)), -errno.EINVAL)
expect("metadata buffer", call(ADMIN, cmd(addr=addr, data_len=4096, cdw10=1, metadata=addr, metadata_len=64)), -errno.EINVAL)
expect("flags (SGL)", call(ADMIN, cmd(addr=addr, data_len=4096, cdw10=1, flags=0x40)), -errno.EINVAL)
# SMART log (512 bytes: NUMDL 127, 0's based dwords) into a 512-byte buffer.
smart = lambda numdl, n: cmd(opcode=0x02, nsid=0xffffffff, addr=addr, data_len=n, cdw10=0x02 | numdl << 16)
expect("SMART log, buffer of its size", call(ADMIN, smart(127, 512)), 0)
if not safe_only:
    # A command whose own fields ask for more than the buffer: the
    # controller would DMA past it (the in-tree driver sends these, to bus
    # address 0 beyond the first page, so they are not tried there).
    expect("Get Log Page longer than its buffer", call(ADMIN, smart(2047, 512)), -errno.EINVAL)
    expect("Identify without a buffer", call(ADMIN, cmd(cdw10=1)), -errno.EINVAL)
    expect("Identify into 512 bytes", call(ADMIN, cmd(addr=addr, data_len=512, cdw10=1)), -errno.EINVAL)
    # Commands that would change what the driver owns.
    expect("Format NVM refused", call(ADMIN, cmd(opcode=0x80, nsid=1)), -errno.EPERM)
    expect("Delete I/O SQ refused", call(ADMIN, cmd(opcode=0x00, cdw10=1)), -errno.EPERM)
    expect("Doorbell Buffer Config refused", call(ADMIN, cmd(opcode=0x7c)), -errno.EPERM)
    # Commands that would reconfigure the controller behind the driver.
    for name, op, cdw10 in [("Set Features Host Memory Buffer", 0x09, 0x0d),
                            ("Set Features Number of Queues", 0x09, 0x07),
                            ("Set Features Interrupt Coalescing", 0x09, 0x08),
                            ("Set Features Volatile Write Cache", 0x09, 0x06),
                            ("Firmware Commit", 0x10, 0x08),
                            ("Sanitize", 0x84, 0x01),
                            ("Namespace Management", 0x0d, 0),
                            ("Namespace Attachment", 0x15, 0),
                            ("Security Send", 0x81, 0),
                            ("Virtualization Management", 0x1c, 0),
                            ("vendor opcode 0xc0", 0xc0, 0),
                            ("vendor opcode 0xff", 0xff, 0),
                            ("Get Features vendor feature 0xc0", 0x0a, 0xc0)]:
        expect(f"{name} refused", call(ADMIN, cmd(opcode=op, cdw10=cdw10)), -errno.EPERM)
    # An allowed Set Features (Timestamp, 8 bytes of data) passes the check
    # and reaches the controller (which may not implement it).
    got = call(ADMIN, cmd(opcode=0x09, addr=addr, data_len=8, cdw10=0x0e))
    expect("Set Features Timestamp reaches the controller", got >= 0, True)
# Unprivileged caller (the file stays open; the capability is what counts).
pid = os.fork()
if pid == 0:
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    os._exit(-call(ADMIN, cmd(addr=addr, data_len=4096, cdw10=1)) & 0xff)
_, st = os.waitpid(pid, 0)
expect("unprivileged caller", -os.waitstatus_to_exitcode(st), -errno.EACCES)
# The controller still answers.
expect("identify after all that", call(ADMIN, cmd(addr=addr, data_len=4096, cdw10=1)), 0)
print(f"{failures} unexpected result(s)")
sys.exit(1 if failures else 0)
