#!/usr/bin/env python3
"""Host test of tools/bench-report on a made-up bench run: three rounds of
three jobs in three configurations, with known doorbell counts in a QEMU trace
(admin-queue doorbells and doorbells outside any run mixed in, which must not
count), known fio results, known guest /proc/stat lines around each run and
a known QEMU CPU series sampled between the runs' timestamped marks.  Checks
the per-run figures (doorbells and CPU per I/O), the medians, the
round-by-round ratios and the scaling figure in the JSON, and that a fio
error, a run without I/O and an untimestamped trace are refused.
Prints "PASS: ..." / "FAIL: ..." lines."""
import json
import os
import subprocess
import sys
import tempfile

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
report = os.path.join(repo, "tools", "bench-report")
report_vimc = os.path.join(repo, "tools", "bench-report-vimc")
summary_tool = os.path.join(repo, "tools", "bench-summary")

# (driver-dbbuf, job) -> per round (sq doorbells, cq doorbells, ios, iops)
RUNS = {
    ("nvme_dbbuf-0", "randread-4k-qd32"): [(1000, 300, 1000, 100.0), (900, 270, 900, 90.0), (1100, 330, 1100, 110.0)],
    ("nvme_dbbuf-1", "randread-4k-qd32"): [(300, 100, 1500, 150.0), (280, 120, 1000, 100.0), (500, 100, 2000, 200.0)],
    ("nvme-1", "randread-4k-qd32"): [(400, 200, 1500, 120.0), (300, 100, 1000, 125.0), (400, 100, 2000, 250.0)],
    ("nvme_dbbuf-0", "randread-4k-qd32-b16"): [(70, 60, 1000, 100.0)] * 3,
    ("nvme_dbbuf-1", "randread-4k-qd32-b16"): [(40, 30, 1000, 100.0)] * 3,
    ("nvme-1", "randread-4k-qd32-b16"): [(50, 30, 1000, 100.0)] * 3,
    ("nvme_dbbuf-0", "randread-4k-qd32-j2"): [(1000, 300, 1000, 150.0)] * 3,
    ("nvme_dbbuf-1", "randread-4k-qd32-j2"): [(300, 100, 3000, 300.0), (280, 120, 1500, 150.0),
                                              (500, 100, 3000, 300.0)],
    ("nvme-1", "randread-4k-qd32-j2"): [(400, 200, 3000, 240.0)] * 3,
    ("nvme_dbbuf-0", "randread-4k-qd1-p"): [(1000, 1000, 1000, 500.0)] * 3,
    ("nvme_dbbuf-1", "randread-4k-qd1-p"): [(900, 800, 1000, 450.0)] * 3,
    ("nvme-1", "randread-4k-qd1-p"): [(1000, 1000, 1000, 600.0)] * 3,
}
# Guest: between its two readings (2 s apart by /proc/uptime) a run spends
# 100 ticks user, 7 nice, 50 system, 20 irq, 30 softirq (busy 207 ticks =
# 1.035 CPUs at 100 Hz) and idle, iowait and steal, which must not count.
GUEST = (100, 7, 50, 500, 9, 20, 30, 5)
# QEMU, sampled every 0.5 s: a run is 4 sample intervals; the I/O (first to
# last I/O-queue doorbell, off the sample grid) lies in the middle two, where
# QEMU burns 150 ticks/s (1.5 CPUs); the first and last intervals (fio
# starting and exiting, the marks) burn 20 ticks/s and the gaps between runs
# 4 ticks/s, neither of which may count.
SLOPES = (20, 150, 150, 20)
fails = 0


def check(what, ok):
    global fails
    print(("PASS: " if ok else "FAIL: ") + what)
    fails += not ok


def must_succeed(tool, p):
    """The checks after it read the tool's output: stop if there is none."""
    check(f"{tool} exits 0", p.returncode == 0)
    if p.returncode:
        print(p.stderr)
        sys.exit(1)


def make_raw(d, fio_error_in=None, no_io_in=None, stamps=True):
    marks, trace = [], ["pci_nvme_mmio_doorbell_sq sqid 1 new_tail 3"]  # before any run
    t, ticks, up = 1000.0, 5000, 100.0
    samples = [(t, ticks)]
    cpu = [0] * 10

    def at(when, event):
        trace.append((f"4242@{when:.6f}:" if stamps else "") + event)

    for rnd in range(3):
        for (cfg, job), per in RUNS.items():
            sq, cq, ios, iops = per[rnd]
            name = f"{cfg}-{job}-r{rnd + 1}"
            s0 = t
            for slope in SLOPES:
                t += 0.5
                ticks += int(slope * 0.5)
                samples.append((t, ticks))
            marks.append(name + "-begin")
            at(s0 + 0.1, "pci_nvme_mmio_read addr 0x18 size 4")
            # first I/O doorbell 0.1 s into the I/O, last 0.1 s before its end
            trace += [f"4242@{s0 + 0.6:.6f}:" * stamps + "pci_nvme_mmio_doorbell_sq sqid 1 new_tail 7"] * sq
            trace += [f"4242@{s0 + 1.4:.6f}:" * stamps + "pci_nvme_mmio_doorbell_cq cqid 2 new_head 9"] * cq
            # admin: not counted, and not the last I/O doorbell either
            trace += [f"4242@{s0 + 1.8:.6f}:" * stamps + "pci_nvme_mmio_doorbell_sq sqid 0 new_tail 1"] * 5
            marks.append(name + "-end")
            at(t - 0.1, "pci_nvme_mmio_read addr 0x18 size 4")
            at(t + 0.2, "pci_nvme_mmio_doorbell_cq cqid 1 new_head 2")  # between runs
            stat = [" ".join(["cpu "] + [str(v) for v in cpu]), f"uptime {up:.2f}"]
            cpu = [v + g for v, g in zip(cpu, GUEST + (0, 0))]
            up += 2.0
            stat += [" ".join(["cpu "] + [str(v) for v in cpu]), f"uptime {up:.2f}"]
            with open(f"{d}/{name}.stat", "w") as f:
                f.write("\n".join(stat) + "\n")
            t += 0.5  # the gap to the next run
            ticks += 2
            samples.append((t, ticks))
            up += 3.0
            cpu[3] += 77  # idle between runs
            cpu[0] += 13  # and a little user time, not counted either
            err = 5 if name == fio_error_in else 0
            if name == no_io_in:
                ios = iops = 0
            with open(f"{d}/{name}.json", "w") as f:
                f.write("note: a line fio prints before its JSON\n")
                json.dump({"jobs": [{"error": err, "read": {"total_ios": ios, "iops": iops}}]}, f)
    with open(f"{d}/marks.txt", "w") as f:
        f.write("\n".join(marks) + "\n")
    with open(f"{d}/qemu-trace.log", "w") as f:
        f.write("\n".join(trace) + "\n")
    with open(f"{d}/clk_tck", "w") as f:
        f.write("100\n")
    with open(f"{d}/qemu-cpu.txt", "w") as f:
        f.write("# clk_tck 100\n")
        for st, tk in samples:  # utime and stime split 3:1
            f.write(f"{st:.6f} {tk - tk // 4} {tk // 4}\n")


def run_report(d):
    return subprocess.run([sys.executable, report, d, f"{d}/nvme.json", f"{d}/nvme.png"],
                          capture_output=True, text=True)


with tempfile.TemporaryDirectory() as d:
    make_raw(d)
    p = run_report(d)
    must_succeed("bench-report", p)
    out = json.load(open(f"{d}/nvme.json"))
    runs = {(r["driver"], r["dbbuf"], r["batch"], r["numjobs"], r["round"]): r
            for r in out["runs"] if not r["polled"]}
    check("36 runs", len(out["runs"]) == 36)
    check("polled job parsed and reported apart",
          sum(r["polled"] for r in out["runs"]) == 9
          and ("randread 4k QD1 polled", "nvme (in-tree)") in {(x["job"], x["configuration"]) for x in out["summary"]})
    r = runs[("nvme_dbbuf", True, None, 1, 3)]
    check("per-run counts: I/O-queue doorbells inside the run only",
          (r["mmio_sq_doorbells"], r["mmio_cq_doorbells"], r["mmio_doorbells_per_io"]) == (500, 100, 0.3))
    check("batch parsed", runs[("nvme", True, 16, 1, 2)]["mmio_sq_doorbells"] == 50)
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
    # CPU at 200 IOPS: the guest 1.035 CPUs busy, QEMU 1.5 CPUs.
    check("guest CPUs busy between its readings, busy kinds only", r["guest_cpus_busy"] == 1.035)
    check("QEMU CPUs busy between the first and last I/O doorbell (interpolated, off the samples)",
          r["qemu_cpus_busy"] == 1.5)
    check("guest CPU per I/O", r["guest_cpu_us_per_io"] == 5175.0)
    check("guest CPU split", r["guest_cpu_split_us_per_io"]
          == {"user": 2675.0, "system": 1250.0, "irq": 500.0, "softirq": 750.0})
    check("QEMU CPU per I/O", r["qemu_cpu_us_per_io"] == 7500.0)
    check("run length from the trace stamps", r["seconds"] == 1.8)
    # ours/in-tree CPU per I/O by round: the inverse IOPS ratios 120/150,
    # 125/100, 250/200 (the same CPUs busy everywhere)
    check("CPU ratios round by round",
          ratio["guest_cpu_per_io_ours_on_vs_in_tree"]["rounds"] == [0.8, 1.25, 1.25]
          and ratio["qemu_cpu_per_io_ours_on_vs_in_tree"]["median"] == 1.25)
    # dbbuf off at 100, 90, 110 IOPS against on's 150, 100, 200
    check("CPU per I/O on/off", ratio["guest_cpu_per_io_dbbuf_on_vs_off"]["rounds"]
          == [0.6667, 0.9, 0.55])
    # 1.035 CPUs over 150, 100, 200 IOPS; 1.5 CPUs over 200 IOPS
    check("CPU median over rounds", on["guest_cpu_us_per_io"]["median"] == 6900.0
          and on["qemu_cpu_us_per_io"]["min"] == 7500.0)
    sc = {(x["configuration"], x["numjobs"]): x for x in out["scaling"]}
    # two jobs on: 300, 150, 300 against one job's 150, 100, 200
    check("scaling: IOPS of 2 jobs / 1 job round by round",
          sc[("nvme_dbbuf dbbuf=on", 2)]["iops_vs_one_job"]["rounds"] == [2.0, 1.5, 1.5]
          and sc[("nvme (in-tree)", 2)]["iops_vs_one_job"]["median"] == 1.92)
    check("scaling job named", sc[("nvme (in-tree)", 2)]["job"] == "randread 4k QD32")
    check("scaling printed", "randread 4k QD32 x2: nvme_dbbuf dbbuf=on: 1.50 [1.50-2.00]" in p.stdout)
    check("PNG written", "no matplotlib" in p.stdout
          or os.path.getsize(f"{d}/nvme.png") > 10000)

with tempfile.TemporaryDirectory() as d:
    make_raw(d)
    for name in ("marks.txt", "qemu-trace.log"):
        open(f"{d}/{name}", "w").close()
    p = run_report(d)
    check("no runs is an error, not an empty report", p.returncode != 0 and "no runs" in p.stderr)

with tempfile.TemporaryDirectory() as d:
    make_raw(d, fio_error_in="nvme-1-randread-4k-qd32-r2")
    p = run_report(d)
    check("a fio error is refused, naming the run",
          p.returncode != 0 and "nvme-1-randread-4k-qd32-r2: fio error 5" in p.stderr)

with tempfile.TemporaryDirectory() as d:
    make_raw(d, no_io_in="nvme_dbbuf-1-randread-4k-qd32-j2-r3")
    p = run_report(d)
    check("a run without I/O is an error naming it, not a division by zero",
          p.returncode != 0 and "nvme_dbbuf-1-randread-4k-qd32-j2-r3: no I/O" in p.stderr
          and "ZeroDivisionError" not in p.stderr)

with tempfile.TemporaryDirectory() as d:
    make_raw(d, stamps=False)
    p = run_report(d)
    check("a trace without timestamps is refused (no QEMU CPU per run)",
          p.returncode != 0 and "without timestamps" in p.stderr)

# vimc: made-up profiles of both drivers, 8- and 12-bit, windows 3 and 25.
VIMC_PROFILE = """  Function                               Hit    Time            Avg             s^2
  --------                               ---    ----            ---             ---
  vimc_debayer_process_frame                {dh}    {dt:.3f} us     0 us         0 us
  vimc_capture_process_frame                {ch}    {ct:.3f} us     0 us         0 us
"""
OURS_TIMING = """Sensor A: frames=1 last_ns=5 avg_ns=5 max_ns=5
Debayer A: frames={f} last_ns=1 avg_ns={d} max_ns=1
Scaler: frames={f} last_ns=1 avg_ns=1 max_ns=1
Capture: frames={f} last_ns=1 avg_ns={c} max_ns=1
Raw Capture 0: frames=0 last_ns=0 avg_ns=0 max_ns=0
"""


def make_vimc_raw(d, ours_copy_ns=4_000_000):
    runs, ident = [], []
    for win in (3, 25):
        for code in ("SBGGR8_1X8", "SBGGR12_1X12"):
            for drv in ("vimc", "vimc_debayer"):
                runs.append(f"{drv} {code} {win}")
                name = f"{drv}-{code}-{win}"
                if drv == "vimc":
                    # split over two CPUs' files: 3 + 1 hits
                    per = 600.0 * 1000 * (win / 3) ** 2  # us per frame
                    prof = VIMC_PROFILE.format(dh=3, dt=3 * per, ch=3, ct=3 * 5000.0) \
                        + VIMC_PROFILE.format(dh=1, dt=per, ch=1, ct=7000.0)
                else:
                    prof = OURS_TIMING.format(f=4, d=60_000_000, c=ours_copy_ns)
                open(f"{d}/profile-{name}.txt", "w").write(prof)
                ts = [10.0, 10.5, 11.0, 11.5, 12.0] if drv == "vimc_debayer" else [10, 12, 14, 16, 18]
                open(f"{d}/stream-{name}.log", "w").write(
                    "".join(f"cap dqbuf: {k} seq: {k} bytesused: 6220800 ts: {t:.6f} delta: 1\n"
                            for k, t in enumerate(ts)))
            ref = "SBGGR8_1X8"
            ident.append(f"{code} {win} {ref} {0 if code == ref else 119} {0 if code == ref else 1}")
    open(f"{d}/runs.txt", "w").write("\n".join(runs) + "\n")
    open(f"{d}/identical.txt", "w").write("\n".join(ident) + "\n")


def run_vimc(d):
    return subprocess.run([sys.executable, report_vimc, d, f"{d}/vimc.json", "1920", "1080", "4"],
                          capture_output=True, text=True, env=dict(os.environ, BENCH_QEMU_DESC="QEMU 7.2.22"))


with tempfile.TemporaryDirectory() as d:
    make_vimc_raw(d)
    p = run_vimc(d)
    must_succeed("bench-report-vimc", p)
    v = {(r["driver"], r["code"], r["window"]): r for r in json.load(open(f"{d}/vimc.json"))}
    o8, v8 = v[("vimc_debayer", "SBGGR8_1X8", 3)], v[("vimc", "SBGGR8_1X8", 3)]
    check("ours: debayer and copy from debugfs timing",
          (o8["debayer_ms_per_frame"], o8["copy_ms_per_frame"]) == (60.0, 4.0))
    check("limit ratio debayer / copy", o8["debayer_vs_copy"] == 15.0)
    # vimc: (3 x 600 + 600) ms over 4 hits; copy (15000 + 7000) us over 4 hits
    check("vimc: profiler hits summed over CPUs",
          (v8["debayer_ms_per_frame"], v8["copy_ms_per_frame"]) == (600.0, 5.5))
    check("vimc limit ratio", v8["debayer_vs_copy"] == 109.09)
    check("fps leaves out the first frame", o8["fps"] == 2.0 and v8["fps"] == 0.5)
    o12 = v[("vimc_debayer", "SBGGR12_1X12", 25)]
    check("12-bit compared with vimc's 8-bit frame, differences kept",
          (o12["bits"], o12["compared_with"], o12["bytes_differing_from_vimc"],
           o12["identical_to_vimc"]) == (12, "SBGGR8_1X8", 119, False) and o8["identical_to_vimc"])
    check("existing fields kept", all(k in o8 for k in (
        "driver", "width", "height", "code", "window", "frames", "fps", "debayer_ms_per_frame",
        "identical_to_vimc")))
    check("speed-up printed", "SBGGR8_1X8 window 25: debayer ours/vimc = 694.4x faster" in p.stdout)

with tempfile.TemporaryDirectory() as d:
    make_vimc_raw(d, ours_copy_ns=0)
    os.remove(f"{d}/profile-vimc-SBGGR8_1X8-3.txt")
    open(f"{d}/profile-vimc-SBGGR8_1X8-3.txt", "w").write("no hits\n")
    p = run_vimc(d)
    r = {(x["driver"], x["code"], x["window"]): x for x in json.load(open(f"{d}/vimc.json"))}
    check("no copy time or no profile hit: n/a, not a division by zero",
          p.returncode == 0 and r[("vimc_debayer", "SBGGR8_1X8", 3)]["debayer_vs_copy"] is None
          and r[("vimc", "SBGGR8_1X8", 3)]["debayer_ms_per_frame"] is None)

with tempfile.TemporaryDirectory() as d:
    make_vimc_raw(d)
    open(f"{d}/stream-vimc-SBGGR8_1X8-3.log", "w").write("ts: 1.000000\n")
    p = run_vimc(d)
    check("a run with missing frames is refused, naming it",
          p.returncode != 0 and "vimc SBGGR8_1X8 window 3: 1 buffer timestamps, want 5" in p.stderr)

# summary.md from both parts' JSON
with tempfile.TemporaryDirectory() as d:
    make_raw(d)
    run_report(d)
    make_vimc_raw(d)
    run_vimc(d)
    p = subprocess.run([sys.executable, summary_tool, d], capture_output=True, text=True)
    md = open(f"{d}/summary.md").read() if p.returncode == 0 else ""
    check("summary.md: nvme medians with ranges",
          "| randread 4k QD32 | nvme_dbbuf dbbuf=on | 150 [100–200] | 0.300 [0.267–0.400] |" in md)
    check("summary.md: ratios and scaling",
          "| randread 4k QD32 | 0.80 [0.80–1.25] | 1.00 [0.67–1.20] |" in md
          and "| randread 4k QD32 | 2 | nvme_dbbuf dbbuf=on | 1.50 [1.50–2.00] |" in md)
    check("summary.md: vimc table with the limit ratio",
          "| SBGGR8_1X8 | 3 | 600.0 | 60.0 | 10.0× | 4.00 | 15.0 | 5.50 | 109.1 | identical |" in md)
    check("summary.md: QEMU version named", "QEMU 7.2.22" in md)

with tempfile.TemporaryDirectory() as d:
    p = subprocess.run([sys.executable, summary_tool, d], capture_output=True, text=True)
    check("summary without any JSON is an error", p.returncode != 0)

sys.exit(1 if fails else 0)
