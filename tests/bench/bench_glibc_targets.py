"""What stopping the UKL glibc build at `make lib` saves against a whole `make`.

    nice -n 10 .venv/bin/python tests/bench/bench_glibc_targets.py --src GLIBC_SRC [--jobs 2]

GLIBC_SRC is a glibc tree with the UKL series applied (the check workspace's
``src/glibc`` after a check). One object directory is configured the way
``check/glibc.py`` does, then built in two steps: the recipe's targets
(``lib``, ``csu/others``), timed; then a plain ``make``, timed, which does
only what a whole build does beyond them. The whole build is the sum, in
the same directory on the same machine at the same moment, so the ratio is
not skewed by a warmer page cache or another job. It prints both times, the
ratio, and whether libc.a and the start files changed in the second step
(they must not: the check links only those).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ukl_patchbot.check import glibc


def _digests(objdir: Path) -> dict[str, str]:
    return {p: hashlib.sha256((objdir / p).read_bytes()).hexdigest() for p in glibc.OUTPUTS}


def _timed_make(objdir: Path, jobs: int, targets: tuple[str, ...], log: Path) -> float:
    start = time.monotonic()
    with open(log, "ab") as f:
        subprocess.run(["make", f"-j{jobs}", *targets], cwd=objdir, stdout=f,
                       stderr=subprocess.STDOUT, check=True)
    return time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    src = args.src.resolve()
    if not (src / "configure").is_file():
        ap.error(f"{src} has no configure script: pass a glibc source tree")
    work = Path(tempfile.mkdtemp(prefix="bench-glibc-"))
    try:
        objdir = work / "build"
        objdir.mkdir()
        (objdir / "configparms").write_text("ukl = yes\n")
        log = work / "build.log"
        subprocess.run([src / "configure", *glibc.CONFIGURE_ARGS, f"CFLAGS={glibc.CFLAGS}"],
                       cwd=objdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        recipe = sum(_timed_make(objdir, args.jobs, t, log) for t in glibc.MAKE_TARGETS)
        before = _digests(objdir)
        rest = _timed_make(objdir, args.jobs, (), log)
        same = _digests(objdir) == before
    finally:
        shutil.rmtree(work, ignore_errors=True)
    whole = recipe + rest
    print(f"recipe targets ({' '.join(' '.join(t) for t in glibc.MAKE_TARGETS)}): {recipe:.0f} s")
    print(f"whole make (recipe + the rest in the same directory): {whole:.0f} s")
    print(f"ratio recipe/whole: {recipe / whole:.2f}x")
    print(f"libc.a and start files unchanged by the rest: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
