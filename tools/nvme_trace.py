"""QEMU NVMe trace, split into phases (shared by tests/vm/nvme_dbbuf.host and
tools/bench-report).

The guest marks phase boundaries with trace_mark (tests/vm/lib.sh): it appends
"<name>-begin" / "<name>-end" to a marks file and reads BAR0 offset 0x18,
which QEMU logs as "pci_nvme_mmio_read addr 0x18 ...".  Inside each phase the
MMIO doorbell writes on I/O queues (qid > 0) and Doorbell Buffer Config
commands are counted.  When the trace lines carry QEMU's timestamp
("TID@SECONDS.MICROSECONDS:", tools/vm), a phase also gets the wall-clock
times of its two marker reads ("t_begin", "t_end") and of its first and
last I/O-queue doorbell ("t_first_io", "t_last_io"; all None without)."""
import re

_STAMP = re.compile(r"^\d+@(\d+\.\d+):")

_MARK = re.compile(r"pci_nvme_mmio_read addr 0x18 ")
_DB = re.compile(r"pci_nvme_mmio_doorbell_(sq|cq) (?:sq|cq)id (\d+)")
_CONFIG = re.compile(r"pci_nvme_dbbuf_config dbs_addr=(0x[0-9a-f]+) eis_addr=(0x[0-9a-f]+)")


def phases(trace_path, marks_path):
    """Returns ({phase: {"sq", "cq", "configs", "t_begin", "t_end",
    "t_first_io", "t_last_io"}},
    [(dbs_addr, eis_addr), ...])."""
    names = iter(open(marks_path).read().split())
    segs, cur, configs = {}, None, []
    for line in open(trace_path, errors="replace"):
        if _MARK.search(line):
            name = next(names, None)
            if name is None:
                raise ValueError("more marker reads in the trace than marks")
            stamp = _STAMP.match(line)
            t = float(stamp.group(1)) if stamp else None
            if name.endswith("-begin"):
                cur = segs.setdefault(name[:-6], {"sq": 0, "cq": 0, "configs": 0,
                                                  "t_begin": t, "t_end": None,
                                                  "t_first_io": None, "t_last_io": None})
            else:
                if name.endswith("-end") and name[:-4] in segs:
                    segs[name[:-4]]["t_end"] = t
                cur = None
            continue
        m = _DB.search(line)
        if m:
            if cur is not None and int(m.group(2)) > 0:
                cur[m.group(1)] += 1
                stamp = _STAMP.match(line)
                if stamp:
                    cur["t_last_io"] = float(stamp.group(1))
                    if cur["t_first_io"] is None:
                        cur["t_first_io"] = cur["t_last_io"]
            continue
        m = _CONFIG.search(line)
        if m:
            configs.append((int(m.group(1), 16), int(m.group(2), 16)))
            if cur is not None:
                cur["configs"] += 1
    if next(names, None) is not None:
        raise ValueError("marks without a marker read in the trace")
    return segs, configs
