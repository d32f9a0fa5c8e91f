"""Build a real program from its unpacked source, for one variant's userland, cached by content.

stock-static (classic): the program's own ``configure`` and ``make`` with
``-static`` against the machine's glibc; the result is the executable.
linked-app (UKL): the same build with the flags UKL application code gets
(`uklapp.UKL_APP_CFLAGS`: no red zone, no stack protector); its own objects
are joined into one relocatable object (``ld -r``) for
`uklapp.link_application`. The application headers are the machine's glibc's,
as for the probe (`glibc.GlibcBuild`).

Either way the program's own code must hold no ``syscall`` instruction (every
call goes through glibc, which UKL replaces): checked on its objects.
A build is cached (`ContentCache`) under a key of the source version, the
recipe, the flags and the compiler, and published only when complete.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.check import uklapp, variants
from ukl_patchbot.check.apps.recipes import AppRecipe
from ukl_patchbot.check.variant_records import Userland
from ukl_patchbot.core import runner
from ukl_patchbot.core.cache import ContentCache, cache_key
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.upstream.debsrc import SourceTree

BASE_CFLAGS = ("-O2",)
PROGRAM_OBJECT = "program.o"


@dataclass(frozen=True)
class ProgramBuild:
    """A finished build: the static executable (classic) or the program's object (UKL)."""

    recipe: str
    version: str
    userland: Userland
    artifact: Path
    seconds: float  # wall time of configure + make (+ ld -r); 0 when taken from the cache
    cached: bool


def cflags_for(userland: Userland) -> tuple[str, ...]:
    """Compiler flags of the program for a variant's userland."""
    if userland is Userland.LINKED_APP:
        return (*BASE_CFLAGS, *uklapp.UKL_APP_CFLAGS)
    return BASE_CFLAGS


def configure_argv(recipe: AppRecipe, userland: Userland) -> list[str]:
    """The ``./configure`` command line of ``recipe`` for ``userland``."""
    return ["./configure", *recipe.configure,
            f"{recipe.cc_opt}={' '.join(cflags_for(userland))}", f"{recipe.ld_opt}=-static"]


def build_key(recipe: AppRecipe, source: SourceTree, userland: Userland) -> str:
    """Cache key: program, source version, configure line, compiler, recipe version."""
    return cache_key("app", {"name": recipe.name, "package": source.package,
                             "version": source.version, "userland": userland.value,
                             "configure": configure_argv(recipe, userland),
                             "gcc": variants.toolchain_id(), "recipe": recipe.recipe_version})


def _artifact_name(recipe: AppRecipe, userland: Userland) -> str:
    return recipe.name if userland is Userland.STOCK_STATIC else f"{recipe.name}-{PROGRAM_OBJECT}"


def build_program(recipe: AppRecipe, source: SourceTree, userland: Userland, cache: Path, *,
                  log_path: Path | None = None, jobs: int = 2) -> ProgramBuild:
    """Build ``recipe`` from ``source`` for ``userland`` (a cache hit returns at once).

    A failed configure or make raises `CommandFailed` (the caller makes it the
    app's failed result); a program whose own code holds a ``syscall``
    instruction raises `UserError` naming where.
    """
    key = build_key(recipe, source, userland)
    builds = ContentCache(cache)
    name = _artifact_name(recipe, userland)
    hit = builds.get(key)
    if hit is not None:
        return ProgramBuild(recipe.name, source.version, userland, hit / name, 0.0, True)
    start = time.monotonic()
    with builds.put(key) as stage:
        tree = stage / "tree"
        # configure writes its Makefile into the tree: build in a copy.
        shutil.copytree(source.path, tree, symlinks=True)
        runner.run(configure_argv(recipe, userland), cwd=tree, log_path=log_path, timeout=900,
                   check=True)
        runner.run(["make", f"-j{jobs}"], cwd=tree, log_path=log_path, timeout=3600, check=True)
        objects = sorted(p for p in tree.glob(recipe.objects) if p.is_file())
        if not objects:
            raise InfraError(f"{recipe.name}: the build left no objects matching {recipe.objects}",
                             hint=f"see {log_path}")
        own = stage / PROGRAM_OBJECT
        runner.run(["ld", "-r", "-o", own, *objects], log_path=log_path, timeout=300, check=True)
        left = uklapp.find_syscall_instructions(own)
        if left:
            raise UserError(f"{recipe.name} {source.version}: its own code holds {len(left)} "
                            f"syscall instruction(s), first at {left[0]}",
                            hint="UKL reaches the kernel only through glibc; such a call "
                                 "would leave the kernel's own mode")
        if userland is Userland.STOCK_STATIC:
            shutil.copy2(tree / recipe.program, stage / name)
            own.unlink()
        else:
            os.replace(own, stage / name)
        shutil.rmtree(tree)
    final = builds.path(key)
    return ProgramBuild(recipe.name, source.version, userland, final / name,
                        time.monotonic() - start, False)
