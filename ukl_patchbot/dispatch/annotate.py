"""Where a result points in the series: annotations on the patch files of the commit.

GitHub shows check run annotations on the lines of the pull request's "Files
changed", so a hunk that no longer applies is marked on its ``@@`` line in the
patch file that carries it. Paths are relative to the repository, as the
series directory is to ``cfg.root`` (for a PR job, the PR's own copy).
"""

from __future__ import annotations

from pathlib import Path

from ukl_patchbot.check.report import CheckReport
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.jobs import Annotation
from ukl_patchbot.rebase.report import HunkStatus, PatchStatus, RebaseReport

_BAD_HUNKS = {HunkStatus.CONFLICT: "failure", HunkStatus.CHANGED: "warning"}


def _series_path(cfg: Config, component: str) -> tuple[Path, str] | None:
    comp = cfg.components.get(component)
    if comp is None or not comp.series_dir.is_relative_to(cfg.root):
        return None
    return comp.series_dir, comp.series_dir.relative_to(cfg.root).as_posix()


def _line_of(patch: Path, header: str) -> int:
    """The line of ``header`` (a hunk's ``@@`` line) in ``patch``; 1 when it is not found."""
    try:
        lines = patch.read_text(errors="replace").splitlines()
    except OSError:
        return 1
    key = header.strip()
    return next((i for i, ln in enumerate(lines, 1) if ln.strip() == key), 1)


def rebase_annotations(cfg: Config, rep: RebaseReport) -> tuple[Annotation, ...]:
    """One annotation per hunk that does not apply (or only by merge), on its ``@@`` line."""
    where = _series_path(cfg, rep.component)
    if where is None:
        return ()
    series_dir, rel = where
    out: list[Annotation] = []
    for p in rep.patches:
        path = f"{rel}/{p.name}"
        bad = [h for h in p.hunks if h.status in _BAD_HUNKS]
        for h in bad:
            line = _line_of(series_dir / p.name, h.header)
            found = (f"found at line {h.new_start}" if h.new_start
                     else "its context is not in the new tag")
            out.append(Annotation(
                path, line, line, _BAD_HUNKS[h.status],
                f"{h.file}: the hunk expected at line {h.old_start} {found}"
                + (" and the 3-way merge conflicts" if h.status == HunkStatus.CONFLICT else ""),
                title=f"{p.name} on {rep.new_base}: hunk {h.status}",
            ))
        if p.status == PatchStatus.CONFLICT and not bad:
            out.append(Annotation(path, 1, 1, "failure",
                                  p.detail or f"does not apply to {rep.new_base}",
                                  title=f"{p.name} does not apply to {rep.new_base}"))
    return tuple(out)


def check_annotations(cfg: Config, report: CheckReport) -> tuple[Annotation, ...]:
    """A patch the check's rebase could not apply, marked on its first line."""
    rb = report.rebase
    if rb is None or rb.ok:
        return ()
    where = _series_path(cfg, rb.component)
    if where is None:
        return ()
    _series_dir, rel = where
    return tuple(
        Annotation(f"{rel}/{row.name}", 1, 1, "failure",
                   row.detail or f"does not apply to {rb.new_base}",
                   title=f"{row.name} does not apply to {rb.new_base}")
        for row in rb.patches if row.status == PatchStatus.CONFLICT
    )
