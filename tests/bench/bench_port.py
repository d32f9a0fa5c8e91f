"""Benchmark: the port of the real 6.1 UKL series onto the newest 6.12 tag apt offers.

Run: PATCHBOT_TEST_CACHE=DIR .venv/bin/python tests/bench/bench_port.py [--rounds N]

Needs the series base (v6.1.170) and the 6.12 tag in DIR's Linux mirror (it
imports the 6.12 tag if missing: ~153 MB download, 1-2 min). Reports, for
the jump: patches and hunks per result, the hunks the bot carried without
help, and the wall time of `rebase_series` (dry run, the 6.12 line treated as
empty so it starts from line 6.1) against the bare tool measured in the same
run: ``git worktree add`` + ``git am -3`` of the same patches, which stops at
the first conflict and says nothing about the others. Goal: under 10 s.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers import realtrees
from ukl_patchbot.core import config
from ukl_patchbot.rebase import engine
from ukl_patchbot.upstream import mirror as upstream


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cache = realtrees.test_cache_dir()
    cfg0 = dataclasses.replace(config.load(ROOT / "patchbot.toml"), cache_dir=cache)
    tag = realtrees.linux_next_tag()
    upstream.sync(cfg0, "linux", versions=[tag], log_dir=cache / "logs")
    series_dir = realtrees.SERIES_DIRS["linux"]
    patches = [str(series_dir / n) for n in (series_dir / "series").read_text().split()]
    mirror = cfg0.mirror_dir("linux")
    with tempfile.TemporaryDirectory() as tmp:
        linux = cfg0.component("linux")
        lines = tuple(dataclasses.replace(ln, series_dir=Path(tmp) / "empty")
                      if ln.name != "6.1" else ln for ln in linux.lines)
        cfg = dataclasses.replace(cfg0, components={
            **cfg0.components, "linux": dataclasses.replace(linux, lines=lines)})
        bot, bare = [], []
        for i in range(args.rounds):
            t = time.perf_counter()
            report = engine.rebase_series(cfg, "linux", tag, dry_run=True)
            bot.append(time.perf_counter() - t)
            wt = Path(tmp) / f"wt{i}"
            t = time.perf_counter()
            subprocess.run(["git", "-C", str(mirror), "worktree", "add", "-q", "--detach",
                            str(wt), tag], check=True, capture_output=True)
            subprocess.run(["git", "-C", str(wt), "am", "-3", "-q", *patches],
                           capture_output=True, check=False)
            bare.append(time.perf_counter() - t)
            subprocess.run(["git", "-C", str(mirror), "worktree", "remove", "--force", str(wt)],
                           check=True, capture_output=True)
    pstat = collections.Counter(str(p.status) for p in report.patches)
    hstat = collections.Counter(str(h.status) for p in report.patches for h in p.hunks)
    explained = sum(1 for p in report.patches for h in p.hunks if h.upstream_diff)
    print(f"6.1 series ({report.old_base}) -> {tag}: {len(report.patches)} patches")
    print("  patches: " + ", ".join(f"{k} {v}" for k, v in sorted(pstat.items())))
    print("  hunks:   " + ", ".join(f"{k} {v}" for k, v in sorted(hstat.items())))
    print(f"  hunks not found with the upstream change shown: {explained}")
    b, g = statistics.median(bot), statistics.median(bare)
    print(f"  rebase_series (dry run): median {b:.2f} s of {args.rounds}")
    print(f"  git worktree add + git am -3 (stops at the first conflict): median {g:.2f} s")
    print(f"  ratio bot / bare tool: {b / g:.3f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    sys.exit(main())
