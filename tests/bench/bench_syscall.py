"""System call costs, classic vs UKL: boot both kernels N times each, same QEMU, same run.

    .venv/bin/python tests/bench/bench_syscall.py REPORT_JSON [--runs 5]

REPORT_JSON is the report of a passing `patchbot check` (`--json PATH`, or
report.json in its --out directory): its reproduce commands name both kernel
images and their initramfs. Each boot runs the probe's microbenchmarks,
timed with clock_gettime inside the guest: getppid() (the bare call
path), a file read loop (pread of 4 KiB from an initramfs file) and a
loopback request/response loop (1 byte each way over TCP on 127.0.0.1,
both ends in the probe). The boots alternate classic/UKL so drift hits
both alike. Prints every sample, the medians and ranges, and the
UKL/classic ratio (< 1 means UKL is cheaper).

What TCG means for the figures: both variants are emulated, so the
ratios compare emulated instruction paths. The privilege switch the
classic kernel pays (syscall/sysret, swapgs, speculation barriers) is a
few emulated instructions under TCG, and TLB and cache effects are not
modelled at all: the figures do not predict hardware costs, only which
path executes less.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ukl_patchbot.check import boot

# ukl-probe: bench syscall=getppid calls=N ns_per_call=X (the probe's lines)
_BENCH_RE = re.compile(r"ukl-probe: bench (?:syscall|loop)=(\S+) .*ns_per_(?:call|op)=([0-9.]+)")


def find_artifacts(report_json: Path) -> dict[str, tuple[Path, Path | None]]:
    """(kernel, initrd) per variant, from the QEMU command lines a check report records."""
    report = json.loads(report_json.read_text())
    found: dict[str, tuple[Path, Path | None]] = {}
    for v in report["variants"]:
        argv = shlex.split(v["boot"]["reproduce"] or "")
        if "-kernel" not in argv:
            raise SystemExit(f"{report_json}: no kernel for {v['variant']} (did it build?)")
        initrd = Path(argv[argv.index("-initrd") + 1]) if "-initrd" in argv else None
        found[v["variant"]] = (Path(argv[argv.index("-kernel") + 1]), initrd)
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report_json", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    art = find_artifacts(args.report_json)
    samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.runs):
            for variant in ("classic", "ukl") if n % 2 == 0 else ("ukl", "classic"):
                kernel, initrd = art[variant]
                log = Path(tmp) / f"{variant}-{n}.log"
                a = boot.boot_once(kernel, initrd, variant, log_path=log)
                found = _BENCH_RE.findall(log.read_text(errors="replace"))
                if not found:
                    print(f"{variant} run {n + 1}: no bench line ({a.status})")
                for name, value in found:
                    samples.setdefault((name, variant), []).append(float(value))
                print(f"{variant:7} run {n + 1}: " + ", ".join(f"{k} {float(v):.0f} ns"
                                                              for k, v in found))
    names = sorted({name for name, _ in samples})
    if not names:
        print("not enough samples")
        return 1
    for name in names:
        med = {}
        for v in ("classic", "ukl"):
            s = samples.get((name, v), [])
            if s:
                med[v] = statistics.median(s)
                print(f"{name:10} {v:7} median {med[v]:10.1f} ns  range {min(s):10.1f} .. "
                      f"{max(s):10.1f}  n={len(s)}")
        if len(med) == 2:
            print(f"{name:10} ratio UKL/classic (median): {med['ukl'] / med['classic']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
