"""Syscall cost, classic vs UKL: boot both kernels N times each, same QEMU, same run.

    .venv/bin/python tests/bench/bench_syscall.py REPORT_JSON [--runs 5]

REPORT_JSON is the report of a passing `patchbot check` (`--json PATH`, or
report.json in its --out directory): its reproduce commands name both kernel
images and the classic initramfs. Each boot runs the probe's
microbenchmark (N getppid() calls timed with clock_gettime inside the
guest); the boots alternate classic/UKL so drift hits both alike. Prints
every sample, the medians and the UKL/classic ratio (< 1 means UKL is
cheaper). Under TCG both variants are emulated, so the ratio measures
emulated instruction paths, not hardware mode switches.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ukl_patchbot.check import boot


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
    samples: dict[str, list[float]] = {"classic": [], "ukl": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.runs):
            for variant in ("classic", "ukl"):
                kernel, initrd = art[variant]
                a = boot.boot_once(kernel, initrd, variant, log_path=Path(tmp) / f"{variant}-{n}.log")
                if a.markers.ns_per_call is None:
                    print(f"{variant} run {n + 1}: no bench line ({a.status})")
                    continue
                samples[variant].append(a.markers.ns_per_call)
                print(f"{variant:7} run {n + 1}: {a.markers.ns_per_call:8.1f} ns/call "
                      f"(boot {a.duration:.2f} s, accel {a.accel})")
    if not samples["classic"] or not samples["ukl"]:
        print("not enough samples")
        return 1
    med = {v: statistics.median(s) for v, s in samples.items()}
    for v, s in samples.items():
        print(f"{v:7} median {med[v]:8.1f} ns/call  min {min(s):8.1f}  max {max(s):8.1f}  n={len(s)}")
    print(f"ratio UKL/classic (median): {med['ukl'] / med['classic']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
