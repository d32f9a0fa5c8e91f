"""What kconfigs/net.config costs a kernel build: cold builds with and without it, in one run.

    .venv/bin/python tests/bench/bench_net_fragment.py LINUX_TREE WORK_DIR [--rounds 1] [--jobs 2]

For each round, builds LINUX_TREE (out of tree, under WORK_DIR, no ccache)
for the classic variant twice, alternating the order between rounds: its own
fragments (tinyconfig + base.config + classic.config), then the same plus
net.config. Each build starts from an empty build directory, so both are
cold. Prints wall times, the CPU time of the build's processes (user +
system: on a shared machine the wall time mostly measures the neighbours),
the number of objects compiled, the bzImage sizes and the ratios
with/without: the bare build measured in the same run is the reference.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ukl_patchbot.check import kbuild, variants
from ukl_patchbot.check.kbuild import BuildEnv

NET = REPO / "kconfigs" / "net.config"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _one(tree: Path, out: Path, frags: tuple[Path, ...], jobs: int
         ) -> tuple[float, float, float, int, int]:
    """(config s, build s, CPU s, objects compiled, bzImage bytes) of one cold build."""
    shutil.rmtree(out, ignore_errors=True)
    benv = BuildEnv(jobs=jobs)
    cpu0 = _cpu()
    cfg = kbuild.configure(tree, out, frags, benv=benv, log_path=out.with_suffix(".config.log"))
    if not cfg.ok:
        raise SystemExit(f"config failed: {cfg.dropped or cfg.error_lines}")
    log = out.with_suffix(".build.log")
    b = kbuild.build(tree, out, benv=benv, log_path=log)
    if not b.ok or b.image_size is None:
        raise SystemExit(f"build failed: {b.first_errors}")
    compiled = sum(1 for line in log.read_text().splitlines() if line.startswith("  CC "))
    return cfg.duration, b.duration, _cpu() - cpu0, compiled, b.image_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tree", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    base = variants.fragments_for(REPO / "kconfigs", "classic")
    kinds = {"classic": base, "classic+net": (*base, NET)}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        order = list(kinds) if r % 2 == 0 else list(reversed(kinds))
        for kind in order:
            c, b, used, n, size = _one(args.tree, args.work / kind.replace("+", "-"), kinds[kind],
                                       args.jobs)
            times[kind].append(c + b)
            cpu[kind].append(used)
            print(f"round {r + 1} {kind:12s} config {c:6.1f} s  build {b:6.1f} s  "
                  f"cpu {used:7.1f} s  {n} objects compiled  bzImage {size} bytes", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    for k in kinds:
        print(f"median {k:12s} wall {med[k]:6.1f} s  cpu {mcpu[k]:7.1f} s")
    print(f"net.config adds {mcpu['classic+net'] - mcpu['classic']:.1f} s of CPU "
          f"(x{mcpu['classic+net'] / mcpu['classic']:.2f} of the bare classic build), "
          f"{med['classic+net'] - med['classic']:.1f} s of wall time "
          f"(x{med['classic+net'] / med['classic']:.2f})")


if __name__ == "__main__":
    main()
