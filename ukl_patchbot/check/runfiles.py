"""The text a check leaves in its output directory, kept with a cached answer.

A check answered from the cache used to leave only its report: the final
kernel configurations, the build and boot logs a maintainer opens next were
in the directory of the run that built them, possibly deleted since. The
cache entry now keeps those text files and an answer from the cache puts
them back, so ``--out DIR`` holds the same evidence either way.

Binaries (initramfs archives, the program's object) are not kept: they are
large, their content is already cached by key elsewhere, and nobody reads
them to judge a result.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

KEEP_MAX_BYTES = 4 << 20  # a build log of a failing realistic build stays well below
_FRESH = ("report.", "rebase-", "reproducer.")  # written by this run, never restored
_KEPT_DIR = "files"


def is_kept(rel: Path, size: int) -> bool:
    """Configs and logs, of any stage, except what every run writes itself."""
    name = rel.name
    if any(name.startswith(p) for p in _FRESH) or size > KEEP_MAX_BYTES:
        return False
    return name.endswith(".log") or (name.startswith("config-") and "." not in name)


def _regular_files(root: Path) -> list[Path]:
    """Regular files under ``root``, relative; symbolic links (to files or directories) skipped."""
    found = []
    for d, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            p = Path(d) / name
            if not p.is_symlink() and p.is_file():
                found.append(p.relative_to(root))
    return sorted(found)


def kept_files(out_dir: Path) -> list[Path]:
    """The files of ``out_dir`` (relative, sorted) a cached answer should bring back."""
    return [rel for rel in _regular_files(out_dir)
            if is_kept(rel, (out_dir / rel).stat().st_size)]


def keep(out_dir: Path, stage: Path) -> int:
    """Copy the run's kept files into a cache entry being staged; the count copied."""
    files = kept_files(out_dir)
    for rel in files:
        dest = stage / _KEPT_DIR / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(out_dir / rel, dest)
    return len(files)


def restore(entry: Path, out_dir: Path) -> int:
    """Put an entry's kept files into ``out_dir``; the count written.

    Files this run already wrote win: the entry only fills what is missing.
    """
    src = entry / _KEPT_DIR
    if not src.is_dir():
        return 0
    n = 0
    for rel in _regular_files(src):
        dest = out_dir / rel
        if dest.exists() or dest.is_symlink():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dest)
        n += 1
    return n
