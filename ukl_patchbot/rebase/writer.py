"""Writing a carried series back: refreshed patches keep their mail headers; atomic swap."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ukl_patchbot.core import fsutil
from ukl_patchbot.series import meta as series_meta
from ukl_patchbot.series import patchset as series_mod
from ukl_patchbot.series.patchset import Series
from ukl_patchbot.upstream import gitops

_SIGNATURE = re.compile(rb"\n-- \n[^\n]*\n*\Z")


def refresh(original: bytes, generated: bytes) -> bytes:
    """``generated`` (format-patch of the rebased commit) wearing ``original``'s mail headers.

    Keeps the original From line, headers (subject prefix, date, author) and
    signature, so the review diff shows only what the rebase changed.
    """
    o_head, _, _ = original.partition(b"\n\n")
    _, _, g_body = generated.partition(b"\n\n")
    o_sig = _SIGNATURE.search(original)
    if o_sig:
        g_body = _SIGNATURE.sub(b"", g_body) + o_sig.group(0)
    return o_head + b"\n\n" + g_body


def format_patches(mirror: Path, commits: dict[str, str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, sha in commits.items():
        res = gitops.git(mirror, "format-patch", "-1", "--stdout", "--no-numbered", sha)
        out[name] = res.stdout.encode("utf-8", "surrogateescape")
    return out


def new_contents(mirror: Path, series: Series, commits: dict[str, str],
                 refresh_names: set[str]) -> dict[str, bytes]:
    """The patch files that change: those in ``refresh_names`` whose bytes differ after refresh."""
    generated = format_patches(mirror, {n: c for n, c in commits.items() if n in refresh_names})
    contents = {n: refresh(p.raw, generated[n]) for p in series.patches
                if (n := p.name) in generated}
    return {n: data for n, data in contents.items() if data != p_raw(series, n)}


def p_raw(series: Series, name: str) -> bytes:
    return next(p.raw for p in series.patches if p.name == name)


def write_series(series: Series, tag: str, contents: dict[str, bytes], dropped: list[str],
                 target: Path | None = None) -> None:
    """Write the series onto ``target`` (default: where it was read) atomically.

    A staged copy of the source directory gets the new patches, loses the
    dropped ones and records ``base = tag``, then replaces ``target``.
    """
    d = target or series.directory
    staged = d.with_name(f".{d.name}.staging-{os.getpid()}")
    shutil.rmtree(staged, ignore_errors=True)
    try:
        shutil.copytree(series.directory, staged, symlinks=True)
        for name, data in contents.items():
            (staged / name).write_bytes(data)
        for name in dropped:
            (staged / name).unlink(missing_ok=True)
        if dropped:
            kept = [ln for ln in (staged / series_mod.SERIES_NAME).read_text().splitlines(True)
                    if ln.split("#", 1)[0].strip() not in dropped]
            (staged / series_mod.SERIES_NAME).write_text("".join(kept))
        series_meta.set_base(staged, tag, shown=series.directory)
        d.parent.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_replace_dir(staged, d)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def clean_stale_staging(d: Path) -> None:
    for stale in d.parent.glob(f".{d.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
