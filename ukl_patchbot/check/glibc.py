"""Build the UKL glibc (libc.a plus start files and headers), cached by content.

The glibc series makes ``ukl = yes`` in the build directory's ``configparms``
switch libc.a to UKL mode (no syscall instruction, no red zone, no static
programs). Only the static library and the start files are used, so the
build stops at glibc's own ``lib`` target: the libraries (shared ones too,
as glibc always builds them) without the programs, the gconv modules and
the rest of ``others``. On 2.36 that gave the same libc.a and crt*.o, byte
for byte, as a whole ``make``, in 0.56x of its time (168 s of 300 s on 2
cores, tests/bench/bench_glibc_targets.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.core import runner
from ukl_patchbot.core.cache import process_alive
from ukl_patchbot.core.errors import InfraError

# Bump when the recipe below changes what it produces, so old cache entries are
# not reused. (Stopping at `make lib` did not: same libc.a and start files.)
RECIPE_VERSION = "1"
# glibc's targets for what the UKL link takes: the libraries, then csu's start
# files (crt1.o is an `others` target of csu; `lib` makes it today anyway).
MAKE_TARGETS = (("lib",), ("csu/others",))
START_FILES = ("crt1.o", "crti.o", "crtn.o")
OUTPUTS = ("libc.a", *(f"csu/{c}" for c in START_FILES))  # what a build must leave, objdir-relative
CFLAGS = "-O2 -g0"
CONFIGURE_ARGS = ("--prefix=/usr", "--disable-werror", "--disable-nscd", "--disable-timezone-tools")


@dataclass(frozen=True)
class GlibcBuild:
    """A finished UKL glibc build: its object directory (libc.a, csu/crt*.o).

    Applications are compiled against the system's glibc headers: the UKL
    glibc is Debian's glibc 2.36 tree plus a series that touches no
    installed header, so the headers are the same (glibc's install-headers
    alone takes ~50 s here and leaves out gnu/stubs.h).
    """

    root: Path  # <cache>/glibc-<key>/
    key: str

    @property
    def objdir(self) -> Path:
        return self.root / "build"

    @property
    def libc_a(self) -> Path:
        return self.objdir / "libc.a"

    def start_file(self, name: str) -> Path:
        """crt1.o, crti.o or crtn.o from the build."""
        return self.objdir / "csu" / name


def glibc_key(tree_id: str) -> str:
    """Cache key: the glibc source tree (with the series applied), flags and recipe."""
    material = "\0".join([tree_id, CFLAGS, " ".join(CONFIGURE_ARGS), RECIPE_VERSION])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def cached_glibc(cache_dir: Path, tree_id: str) -> GlibcBuild | None:
    """The finished build for this tree, if the cache has one."""
    key = glibc_key(tree_id)
    root = cache_dir / f"glibc-{key}"
    build = GlibcBuild(root=root, key=key)
    if (root / "DONE").is_file() and build.libc_a.is_file():
        return build
    return None


def remove_stale_builds(cache_dir: Path) -> list[Path]:
    """Remove half-built entries left by a build that was killed (its pid is gone)."""
    removed = []
    for tmp in cache_dir.glob(".glibc-*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def build_glibc(
    src_dir: Path, cache_dir: Path, tree_id: str, *, log_path: Path, jobs: int = 2
) -> GlibcBuild:
    """Configure and build the UKL glibc from ``src_dir``.

    A cache hit returns at once. The build happens in a temporary directory
    renamed into place only when complete, so an interrupted build (killed,
    disk full) never leaves an entry that looks finished. A failed build
    raises `InfraError` naming the log: the glibc series is verified on its
    base tag, so a failure here is not a result of the Linux check.
    """
    remove_stale_builds(cache_dir)
    hit = cached_glibc(cache_dir, tree_id)
    if hit is not None:
        return hit
    key = glibc_key(tree_id)
    final = cache_dir / f"glibc-{key}"
    tmp = cache_dir / f".glibc-{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    objdir = tmp / "build"
    objdir.mkdir(parents=True)
    (objdir / "configparms").write_text("ukl = yes\n")
    src = src_dir.resolve()
    try:
        runner.run(
            [src / "configure", *CONFIGURE_ARGS, f"CFLAGS={CFLAGS}"],
            cwd=objdir, log_path=log_path, timeout=600, check=True,
        )
        for targets in MAKE_TARGETS:
            runner.run(["make", f"-j{jobs}", *targets], cwd=objdir, log_path=log_path,
                       timeout=3600, check=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    missing = [p for p in OUTPUTS if not (objdir / p).is_file()]
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InfraError(f"glibc build in {src} produced no {', '.join(missing)}",
                         hint=f"see {log_path}")
    (tmp / "DONE").write_text(tree_id + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return GlibcBuild(root=final, key=key)
