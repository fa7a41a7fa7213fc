#!/usr/bin/env python3
"""Host test of tools/bench-report on a made-up bench run: three rounds of
two jobs in three configurations, with known doorbell counts in a QEMU trace
(admin-queue doorbells and doorbells outside any run mixed in, which must not
count) and known fio results.  Checks the per-run figures, the medians and
the round-by-round ratios in the JSON, and that a fio error is refused.
Prints "PASS: ..." / "FAIL: ..." lines."""
import json
import os
import subprocess
import sys
import tempfile

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
report = os.path.join(repo, "tools", "bench-report")

# (driver-dbbuf, job) -> per round (sq doorbells, cq doorbells, ios, iops)
RUNS = {
    ("nvme_dbbuf-0", "randread-4k-qd32"): [(1000, 300, 1000, 100.0), (900, 270, 900, 90.0), (1100, 330, 1100, 110.0)],
    ("nvme_dbbuf-1", "randread-4k-qd32"): [(300, 100, 1500, 150.0), (280, 120, 1000, 100.0), (500, 100, 2000, 200.0)],
    ("nvme-1", "randread-4k-qd32"): [(400, 200, 1500, 120.0), (300, 100, 1000, 125.0), (400, 100, 2000, 250.0)],
    ("nvme_dbbuf-0", "randread-4k-qd32-b16"): [(70, 60, 1000, 100.0)] * 3,
    ("nvme_dbbuf-1", "randread-4k-qd32-b16"): [(40, 30, 1000, 100.0)] * 3,
    ("nvme-1", "randread-4k-qd32-b16"): [(50, 30, 1000, 100.0)] * 3,
}
fails = 0


def check(what, ok):
    global fails
    print(("PASS: " if ok else "FAIL: ") + what)
    fails += not ok


def make_raw(d, fio_error_in=None):
    marks, trace = [], ["pci_nvme_mmio_doorbell_sq sqid 1 new_tail 3"]  # before any run
    for rnd in range(3):
        for (cfg, job), per in RUNS.items():
            sq, cq, ios, iops = per[rnd]
            name = f"{cfg}-{job}-r{rnd + 1}"
            marks.append(name + "-begin")
            trace.append("pci_nvme_mmio_read addr 0x18 size 4")
            trace += ["pci_nvme_mmio_doorbell_sq sqid 1 new_tail 7"] * sq
            trace += ["pci_nvme_mmio_doorbell_cq cqid 2 new_head 9"] * cq
            trace += ["pci_nvme_mmio_doorbell_sq sqid 0 new_tail 1"] * 5  # admin: not counted
            marks.append(name + "-end")
            trace.append("pci_nvme_mmio_read addr 0x18 size 4")
            trace.append("pci_nvme_mmio_doorbell_cq cqid 1 new_head 2")  # between runs
            err = 5 if name == fio_error_in else 0
            with open(f"{d}/{name}.json", "w") as f:
                f.write("note: a line fio prints before its JSON\n")
                json.dump({"jobs": [{"error": err, "read": {"total_ios": ios, "iops": iops}}]}, f)
    with open(f"{d}/marks.txt", "w") as f:
        f.write("\n".join(marks) + "\n")
    with open(f"{d}/qemu-trace.log", "w") as f:
        f.write("\n".join(trace) + "\n")


with tempfile.TemporaryDirectory() as d:
    make_raw(d)
    p = subprocess.run([sys.executable, report, d, f"{d}/nvme.json", f"{d}/nvme.png"],
                       capture_output=True, text=True)
    check("bench-report exits 0", p.returncode == 0)
    if p.returncode:
        print(p.stderr)
        sys.exit(1)
    out = json.load(open(f"{d}/nvme.json"))
    runs = {(r["driver"], r["dbbuf"], r["batch"], r["round"]): r for r in out["runs"]}
    check("18 runs", len(out["runs"]) == 18)
    r = runs[("nvme_dbbuf", True, None, 3)]
    check("per-run counts: I/O-queue doorbells inside the run only",
          (r["mmio_sq_doorbells"], r["mmio_cq_doorbells"], r["mmio_doorbells_per_io"]) == (500, 100, 0.3))
    check("batch parsed", runs[("nvme", True, 16, 2)]["mmio_sq_doorbells"] == 50)
    s = {(x["job"], x["configuration"]): x for x in out["summary"]}
    on = s[("randread 4k QD32", "nvme_dbbuf dbbuf=on")]
    # mmio/IO by round: 400/1500, 400/1000, 600/2000 -> median 0.3
    check("median MMIO/IO over rounds", on["mmio_doorbells_per_io"]["median"] == 0.3)
    check("min/max MMIO/IO", (on["mmio_doorbells_per_io"]["min"], on["mmio_doorbells_per_io"]["max"])
          == (0.2667, 0.4))
    check("median IOPS", on["iops"]["median"] == 150.0)
    check("median SQ and CQ per I/O", (on["mmio_sq_per_io"], on["mmio_cq_per_io"]) == (0.25, 0.0667))
    ratio = {x["job"]: x for x in out["ratios"]}["randread 4k QD32"]
    # ours/in-tree MMIO/IO by round: (400/1500)/(600/1500), 0.4/0.4, 0.3/0.25
    check("MMIO/IO ratio taken round by round",
          ratio["mmio_per_io_ours_on_vs_in_tree"]["rounds"] == [0.6667, 1.0, 1.2]
          and ratio["mmio_per_io_ours_on_vs_in_tree"]["median"] == 1.0)
    # IOPS ours/in-tree by round: 1.25, 0.8, 0.8 -> median 0.8 (a ratio of
    # medians would say 150/125 = 1.2)
    check("IOPS ratio is the median of round ratios, not a ratio of medians",
          ratio["iops_ours_on_vs_in_tree"]["median"] == 0.8)
    check("IOPS on/off", ratio["iops_dbbuf_on_vs_off"]["rounds"] == [1.5, 1.1111, 1.8182])
    check("batched job reported", ("randread 4k QD32 batch 16", "nvme (in-tree)") in s)
    check("table printed", "MMIO/IO ours/in-tree 1.00 [0.67-1.20]" in p.stdout)
    check("PNG written", "no matplotlib" in p.stdout
          or os.path.getsize(f"{d}/nvme.png") > 10000)

with tempfile.TemporaryDirectory() as d:
    for name in ("marks.txt", "qemu-trace.log"):
        open(f"{d}/{name}", "w").close()
    p = subprocess.run([sys.executable, report, d, f"{d}/nvme.json", f"{d}/nvme.png"],
                       capture_output=True, text=True)
    check("no runs is an error, not an empty report", p.returncode != 0 and "no runs" in p.stderr)

with tempfile.TemporaryDirectory() as d:
    make_raw(d, fio_error_in="nvme-1-randread-4k-qd32-r2")
    p = subprocess.run([sys.executable, report, d, f"{d}/nvme.json", f"{d}/nvme.png"],
                       capture_output=True, text=True)
    check("a fio error is refused, naming the run",
          p.returncode != 0 and "nvme-1-randread-4k-qd32-r2: fio error 5" in p.stderr)

sys.exit(1 if fails else 0)
