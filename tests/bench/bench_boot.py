"""Boot time, classic vs UKL: boot both prebuilt kernels N times, alternating, in one run.

    .venv/bin/python tests/bench/bench_boot.py REPORT_JSON [--runs 7] [--append ARG ...]

REPORT_JSON is the report of a passing `patchbot check` (`--json PATH`, or
report.json in its --out directory); its reproduce commands name both kernel
images and the classic initramfs. Each round boots both variants (the order
alternates between rounds, so drift and the neighbours' load hit both alike)
with the QEMU command line the check uses, and records at the probe's start
line:

  marker   seconds from QEMU start (host clock): what `patchbot check`
           reports as "marker after"
  console  seconds from QEMU start to the first console line: QEMU, firmware,
           loading and decompressing the image and the kernel's early setup
           (the console prints nothing before it is registered)
  cpu      QEMU's CPU time (user + system) so far: the same work, less the
           time other processes took the CPU from QEMU (the machine is shared)
  guest    the probe's CLOCK_MONOTONIC at its start line (`up=` in the
           marker): time inside the running kernel before main()
  before   marker - guest: QEMU start-up, firmware, loading and
           decompressing the image, until the kernel's clock starts

then prints the medians and the UKL/classic ratios. The printk timestamps
(``printk.time=1`` is always added) of the kernel's milestones on the way to
the probe are printed as medians too, to show where the time goes.
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

from bench_syscall import find_artifacts  # noqa: E402  (sibling script)

from ukl_patchbot.check import boot  # noqa: E402

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
    start = time.monotonic()
    with open(log, "w") as out, subprocess.Popen(argv, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True,
                                                 errors="replace") as qemu:
        assert qemu.stdout is not None
        try:
            for line in qemu.stdout:
                out.write(line)
                if first is None and not line.startswith("qemu"):
                    first = time.monotonic() - start
                if MARKER in line:
                    at, cpu = time.monotonic() - start, _cpu_seconds(qemu.pid)
                    up = _UP_RE.search(line)
                    return Sample(at, first or at, cpu, float(up.group(1)) if up else None,
                                  stamps)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report_json", type=Path)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--append", action="append", default=[], help="extra kernel argument")
    ap.add_argument("--logs", type=Path, default=Path("/tmp"), help="console logs go here")
    args = ap.parse_args()
    art = find_artifacts(args.report_json)
    samples: dict[str, list[Sample]] = {v: [] for v in VARIANTS}
    args.logs.mkdir(parents=True, exist_ok=True)
    print(f"accel {boot.detect_accel()}, load before {os.getloadavg()[0]:.1f}")
    for n in range(args.runs):
        for variant in (VARIANTS if n % 2 == 0 else VARIANTS[::-1]):
            kernel, initrd = art[variant]
            log = args.logs / f"bench-boot-{variant}-{n + 1}.log"
            s = boot_to_marker(kernel, initrd, tuple(args.append), log)
            if s is None:
                print(f"{variant:7} run {n + 1}: no marker, see {log}")
                continue
            samples[variant].append(s)
            guest = "  –  " if s.guest is None else f"{s.guest:5.2f}"
            print(f"{variant:7} run {n + 1}: marker {s.marker:5.2f} s  console {s.console:5.2f} s  "
                  f"cpu {s.cpu:5.2f} s  guest {guest} s  load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"load after {os.getloadavg()[0]:.1f}")
    if not samples["classic"] or not samples["ukl"]:
        print("not enough samples")
        return 1
    med: dict[str, dict[str, float]] = {}
    for v in VARIANTS:
        ss = samples[v]
        med[v] = {"marker": _med([s.marker for s in ss]), "cpu": _med([s.cpu for s in ss]),
                  "console": _med([s.console for s in ss]),
                  "guest": _med([s.guest for s in ss if s.guest is not None])}
        m = med[v]
        print(f"{v:7} median marker {m['marker']:5.2f} s (min {min(s.marker for s in ss):.2f}, "
              f"max {max(s.marker for s in ss):.2f}, n={len(ss)}), console {m['console']:5.2f} s, "
              f"cpu {m['cpu']:5.2f} s, "
              f"guest {m['guest']:5.2f} s, before {m['marker'] - m['guest']:5.2f} s")
        stamps: dict[str, list[float]] = defaultdict(list)
        for s in ss:
            for k, t in s.stamps.items():
                stamps[k].append(t)
        print("  printk: " + ", ".join(f"{k} {_med(t):.3f}" for k, t in stamps.items()))
    for what in ("marker", "cpu"):
        print(f"ratio UKL/classic boot to marker, {what} (median): "
              f"{med['ukl'][what] / med['classic'][what]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
