"""What the app stage costs before any kernel: fetching the source, building the program twice.

    .venv/bin/python tests/bench/bench_app_build.py WORK_DIR [--app nginx] [--jobs 2]

In an empty cache under WORK_DIR: fetches the source package through the
derived deb-src configuration (apt-get update of the private lists included),
fetches it again (the cache answers), builds the program for classic
(static, stock glibc) and for UKL (UKL flags, ld -r), then asks for both
builds again (the cache answers). Prints wall time and the CPU time of the
child processes (user + system, less sensitive to the shared machine's load)
of each step, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ukl_patchbot.check.apps import build, recipes
from ukl_patchbot.check.variant_records import Userland
from ukl_patchbot.upstream import debsrc

T = TypeVar("T")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(label: str, fn: Callable[[], T]) -> T:
    w0, c0 = time.monotonic(), _cpu()
    out = fn()
    print(f"{label:34s} wall {time.monotonic() - w0:7.2f} s   cpu {_cpu() - c0:7.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path)
    ap.add_argument("--app", default="nginx", choices=recipes.NAMES)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    recipe = recipes.get(args.app)
    shutil.rmtree(args.work, ignore_errors=True)
    cache = args.work / "apps"
    print(f"load before: {os.getloadavg()}")
    src = _timed("fetch source (cold)", lambda: debsrc.fetch_source(
        recipe.source_package, cache, log_path=args.work / "fetch.log"))
    _timed("fetch source (cached)", lambda: debsrc.fetch_source(recipe.source_package, cache))
    print(f"  {src.package} {src.version}: {', '.join(src.files)}")
    for ul in (Userland.STOCK_STATIC, Userland.LINKED_APP):
        b = _timed(f"build {ul.value}", lambda ul=ul: build.build_program(  # type: ignore[misc]
            recipe, src, ul, cache / "build", log_path=args.work / f"build-{ul.value}.log",
            jobs=args.jobs))
        print(f"  {b.artifact.name}: {b.artifact.stat().st_size} bytes")
        _timed(f"build {ul.value} (cached)", lambda ul=ul: build.build_program(  # type: ignore[misc]
            recipe, src, ul, cache / "build"))
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
