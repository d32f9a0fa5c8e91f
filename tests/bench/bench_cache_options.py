"""Measure the build-cache options for the step from one stable tag to the next, in one run.

    nice -n 10 .venv/bin/python tests/bench/bench_cache_options.py --cache DIR [--from A] [--to B]

The classic variant only (plain upstream trees: the series does not change how
objects are cached). For each ccache mode: a cold build of A with an empty
ccache, then B in the kept build directory (the source tree updated in place,
only changed files rewritten, as `patchbot check` does) and, from a copy of
the ccache taken after A, B in a fresh build directory. Last, the bare build of
B (plain make, no ccache) at the same paths, whose vmlinux every cached build
of B must equal byte for byte. DIR is a patchbot cache dir whose linux mirror
holds both tags. Prints one table; the figures go to DIR/cache-options.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ukl_patchbot.check import kbuild, variants, workspace
from ukl_patchbot.core import config
from ukl_patchbot.upstream import gitops


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--from", dest="a", default="v6.1.190")
    ap.add_argument("--to", dest="b", default="v6.1.192")
    ap.add_argument("--modes", default="preprocessor,depend")
    args = ap.parse_args()
    cfg = dataclasses.replace(config.load(REPO / "patchbot.toml"), cache_dir=args.cache)
    exp = args.cache / "options"
    src = exp / "src" / "linux"
    out = exp / "build" / "kernel"
    frags = variants.fragments_for(REPO / "kconfigs", "classic")
    mirror = cfg.mirror_dir("linux")
    tree = {t: gitops.git(mirror, "rev-parse", f"refs/tags/{t}^{{tree}}").stdout.strip()
            for t in (args.a, args.b)}
    rows: list[dict] = []
    results = exp / "cache-options.json"

    def build(label: str, benv: kbuild.BuildEnv) -> dict:
        before = kbuild.ccache_stats(benv.ccache_dir) if benv.ccache_dir else {}
        load = loadavg()
        c = kbuild.configure(src, out, frags, benv=benv, log_path=exp / f"{label}.config.log")
        assert c.ok, c
        b = kbuild.build(src, out, benv=benv, log_path=exp / f"{label}.log")
        assert b.ok, b.first_errors
        after = kbuild.ccache_stats(benv.ccache_dir) if benv.ccache_dir else {}
        d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        row = {"label": label, "seconds": round(c.duration + b.duration, 1), "load_before": load,
               "load_after": loadavg(), "calls": d.get("direct_cache_hit", 0)
               + d.get("preprocessed_cache_hit", 0) + d.get("cache_miss", 0),
               "direct_hits": d.get("direct_cache_hit", 0),
               "pp_hits": d.get("preprocessed_cache_hit", 0), "misses": d.get("cache_miss", 0),
               "vmlinux": sha(out / "vmlinux")}
        rows.append(row)
        print(json.dumps(row), flush=True)
        results.write_text(json.dumps(rows, indent=1))
        return row

    def fresh_out() -> None:
        if out.exists():
            shutil.rmtree(out)

    for mode in args.modes.split(","):
        cc = exp / f"ccache-{mode}"
        snap = exp / f"ccache-{mode}-after-A"
        for d in (cc, snap):
            if d.exists():
                shutil.rmtree(d)
        benv = dataclasses.replace(kbuild.BuildEnv(jobs=2, ccache_dir=cc, ccache_basedir=exp),
                                   ccache_mode=kbuild.CcacheMode(mode))
        fresh_out()
        workspace.export_tree_once(mirror, f"refs/tags/{args.a}", tree[args.a], src)
        build(f"{mode}-A-cold", benv)
        shutil.copytree(cc, snap, symlinks=True)
        workspace.export_tree_once(mirror, f"refs/tags/{args.b}", tree[args.b], src)
        build(f"{mode}-B-kept-dir", benv)
        fresh_out()
        build(f"{mode}-B-fresh-dir", dataclasses.replace(benv, ccache_dir=snap))
    fresh_out()
    workspace.export_tree_once(mirror, f"refs/tags/{args.b}", tree[args.b], src)
    ref = build("bare-B", kbuild.BuildEnv(jobs=2))
    for r in rows:
        if "-B-" in r["label"]:
            r["identical_to_bare"] = r["vmlinux"] == ref["vmlinux"]
    results.write_text(json.dumps(rows, indent=1))
    print(f"{'run':24} {'s':>7} {'x bare':>7} {'calls':>6} {'hits':>6} {'hit%':>5} "
          f"{'==bare':>6}  load")
    for r in rows:
        hits = r["direct_hits"] + r["pp_hits"]
        rate = f"{100 * hits / r['calls']:.0f}" if r["calls"] else "-"
        print(f"{r['label']:24} {r['seconds']:7.1f} {r['seconds'] / ref['seconds']:7.2f} "
              f"{r['calls']:6} {hits:6} {rate:>5} {r.get('identical_to_bare', '')!s:>6}  "
              f"{r['load_before']} -> {r['load_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
