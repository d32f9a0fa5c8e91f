"""Boot time, classic vs UKL: boot both prebuilt kernels N times, alternating, in one run.

    .venv/bin/python tests/bench/bench_boot.py REPORT_JSON [REPORT_JSON ...] [--runs 7]

REPORT_JSON is the report of a passing `patchbot check` (`--json PATH`, or
report.json in its --out directory); its reproduce commands name both kernel
images and the classic initramfs. Give two reports (before and after a
change) to compare them in the same run. Each round boots every variant of
every report (the order reverses between rounds, so drift and the
neighbours' load hit all alike) with the QEMU command line the check uses
(plus ``printk.time=1`` and any ``--append``), and records at the probe's
start line:

  marker   seconds from QEMU start (host clock): what `patchbot check`
           reports as "marker after"
  console  seconds from QEMU start to the first console line: QEMU, firmware,
           loading and decompressing the image and the kernel's early setup
           (the console prints nothing before it is registered)
  cpu      QEMU's CPU time (user + system) so far: the same work, less the
           time other processes took the CPU from QEMU (the machine is shared);
           also printed at the first console line
  guest    the probe's CLOCK_MONOTONIC at its start line (`up=` in the
           marker): time inside the running kernel before main(). The
           guest clock loses time when QEMU is starved of CPU, so compare
           it only between boots of one run

then prints the medians and the UKL/classic ratios. The printk timestamps
of the kernel's milestones on the way to the probe are printed as medians
too, to show where the time goes.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench_syscall import find_artifacts  # a sibling script: tests/bench is on sys.path

from ukl_patchbot.check import boot

VARIANTS = ("classic", "ukl")
MARKER = "ukl-probe: start "
_UP_RE = re.compile(r"ukl-probe: start .* up=(\d+\.\d+)")
_STAMP_RE = re.compile(r"^\[\s*(\d+\.\d+)\]\s?(.*)")
# Kernel lines on the way to the probe, in boot order (both variants).
MILESTONES = ("Calibrating delay loop", "APIC timer", "clocksource: Switched",
              "Unpacking initramfs", "Freeing initrd memory", "Freeing unused kernel image (initmem)",
              "Run /init as init process", "ukl: starting the application")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    marker: float  # host seconds from QEMU start
    console: float  # host seconds from QEMU start to the first console line
    console_cpu: float  # QEMU's CPU seconds at the first console line
    cpu: float  # QEMU user + system seconds at the marker
    guest: float | None  # the probe's CLOCK_MONOTONIC at its start
    stamps: dict[str, float] = field(default_factory=dict)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def boot_to_marker(kernel: Path, initrd: Path | None, append: tuple[str, ...],
                   log: Path, timeout: float = 60.0) -> Sample | None:
    """One boot with the check's QEMU command line, until the probe's start line."""
    argv = boot.qemu_argv(kernel, initrd, accel=boot.detect_accel(),
                          append=("printk.time=1", *append))
    stamps: dict[str, float] = {}
    first: float | None = None
    first_cpu = 0.0
    start = time.monotonic()
    with open(log, "w") as out, subprocess.Popen(argv, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True,
                                                 errors="replace") as qemu:
        assert qemu.stdout is not None
        try:
            for line in qemu.stdout:
                out.write(line)
                if first is None and not line.startswith("qemu"):
                    first, first_cpu = time.monotonic() - start, _cpu_seconds(qemu.pid)
                if MARKER in line:
                    at, cpu = time.monotonic() - start, _cpu_seconds(qemu.pid)
                    up = _UP_RE.search(line)
                    return Sample(at, first or at, first_cpu, cpu,
                                  float(up.group(1)) if up else None, stamps)
                if (m := _STAMP_RE.match(line)) is not None:
                    for name in MILESTONES:
                        if m.group(2).startswith(name) and name not in stamps:
                            stamps[name] = float(m.group(1))
                if time.monotonic() - start > timeout:
                    break
            return None
        finally:
            qemu.kill()


def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _summary(label: str, samples: dict[str, list[Sample]]) -> dict[str, float]:
    """Print the medians of one report's variants; returns the UKL/classic ratios."""
    med: dict[str, dict[str, float]] = {}
    for v in VARIANTS:
        ss = samples[v]
        med[v] = {"marker": _med([s.marker for s in ss]), "cpu": _med([s.cpu for s in ss]),
                  "console": _med([s.console for s in ss]),
                  "console_cpu": _med([s.console_cpu for s in ss]),
                  "guest": _med([s.guest for s in ss if s.guest is not None])}
        m = med[v]
        print(f"{label} {v:7} median marker {m['marker']:5.2f} s (min "
              f"{min(s.marker for s in ss):.2f}, max {max(s.marker for s in ss):.2f}, "
              f"n={len(ss)}), console {m['console']:5.2f} s (cpu {m['console_cpu']:4.2f} s), "
              f"cpu {m['cpu']:5.2f} s, guest {m['guest']:5.2f} s")
        stamps: dict[str, list[float]] = defaultdict(list)
        for s in ss:
            for k, t in s.stamps.items():
                stamps[k].append(t)
        print("  printk: " + ", ".join(f"{k} {_med(t):.3f}" for k, t in stamps.items()))
    ratios = {what: med["ukl"][what] / med["classic"][what] for what in ("marker", "cpu")}
    print(f"{label} ratio UKL/classic boot to marker (medians): wall {ratios['marker']:.2f}, "
          f"QEMU cpu {ratios['cpu']:.2f}")
    return ratios


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report_json", type=Path, nargs="+",
                    help="one or more reports (e.g. before and after a change), booted in turn")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--append", action="append", default=[], help="extra kernel argument")
    ap.add_argument("--logs", type=Path, default=Path("/tmp"), help="console logs go here")
    args = ap.parse_args()
    sets = {f"[{i + 1}]": find_artifacts(r) for i, r in enumerate(args.report_json)}
    for label, r in zip(sets, args.report_json, strict=True):
        print(f"{label} {r}")
    samples: dict[str, dict[str, list[Sample]]] = {label: {v: [] for v in VARIANTS}
                                                   for label in sets}
    args.logs.mkdir(parents=True, exist_ok=True)
    print(f"accel {boot.detect_accel()}, load before {os.getloadavg()[0]:.1f}")
    for n in range(args.runs):
        order = [(label, v) for label in sets for v in VARIANTS]
        for label, variant in (order if n % 2 == 0 else order[::-1]):
            kernel, initrd = sets[label][variant]
            log = args.logs / f"bench-boot-{label[1:-1]}-{variant}-{n + 1}.log"
            s = boot_to_marker(kernel, initrd, tuple(args.append), log)
            if s is None:
                print(f"{label} {variant:7} run {n + 1}: no marker, see {log}")
                continue
            samples[label][variant].append(s)
            guest = "  –  " if s.guest is None else f"{s.guest:5.2f}"
            print(f"{label} {variant:7} run {n + 1}: marker {s.marker:5.2f} s  console "
                  f"{s.console:5.2f} s  cpu {s.cpu:5.2f} s  guest {guest} s  "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"load after {os.getloadavg()[0]:.1f}")
    for label in sets:
        if not all(samples[label].values()):
            print(f"{label}: not enough samples")
            return 1
        _summary(label, samples[label])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
