"""Where each hunk of a patch lands in the tree it meets, and why one does not.

Before a patch is carried its hunks are located in the tree as it is then
(in memory on the fast path, in the worktree before ``git am``): exact, or
moved by an offset. For a hunk whose context is gone, `analyse` records what
the new tag has at the mapped lines, the upstream hunks (old base -> new tag)
that touched them and, when the old base is an ancestor of the new tag, the
upstream commits that did (``git log -L``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ukl_patchbot.rebase import fastpath as rebase_apply
from ukl_patchbot.rebase.report import HunkResult, HunkStatus, PatchStatus
from ukl_patchbot.series import patchset as series_mod
from ukl_patchbot.series.patchset import Hunk, Patch
from ukl_patchbot.upstream import gitops


@dataclass
class RebaseTrees:
    """The trees a rebase run works on: the mirror, the old base and the new tag, and the
    worktree once a patch needs git am; it caches the upstream diff of each file asked for."""

    mirror: Path
    wt: Path | None  # the worktree, once a patch needs git am
    old_sha: str | None
    new_sha: str
    history: bool  # old base is an ancestor of the new tag: `git log -L` is meaningful
    upstream_diffs: dict[str, tuple[Hunk, ...]] = field(default_factory=dict)


def worktree_content(wt: Path) -> Callable[[str], bytes | None]:
    """Read a file of the worktree ``wt`` by its path (None when it is not there)."""
    def get(path: str) -> bytes | None:
        try:
            return (wt / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
    return get


def _upstream_hunks(ctx: RebaseTrees, path: str) -> tuple[Hunk, ...]:
    if ctx.old_sha is None:
        return ()
    if path not in ctx.upstream_diffs:
        # Not stripped: a hunk may end in a blank context line (" ").
        text = gitops.git(ctx.mirror, "diff", "--no-color", "--no-renames", "-U3",
                          ctx.old_sha, ctx.new_sha, "--", path).stdout
        files = series_mod.parse_diff(text, Path(f"upstream:{path}"))
        ctx.upstream_diffs[path] = files[0].hunks if files else ()
    return ctx.upstream_diffs[path]


def _explain(ctx: RebaseTrees, path: str, hunk: Hunk, lines: list[str] | None,
             status: HunkStatus) -> HunkResult:
    """A hunk whose context is not in the tree: what is there instead, and why."""
    start, length = hunk.old_start, max(hunk.old_len, 1)
    uh = _upstream_hunks(ctx, path)
    mapped = start + sum(h.new_len - h.old_len for h in uh if h.old_start + h.old_len <= start)
    touching = [h for h in uh
                if h.old_start < start + length and start < h.old_start + max(h.old_len, 1)]
    excerpt = "\n".join(h.header + "\n" + "\n".join(h.lines) for h in touching)
    actual = tuple(lines[mapped - 1:mapped - 1 + hunk.old_len]) if lines else ()
    commits: tuple[str, ...] = ()
    if ctx.history and touching and ctx.old_sha:
        res = gitops.git(ctx.mirror, "log", "-s", "--format=COMMIT %h %s",
                         f"-L{start},{start + length - 1}:{path}",
                         f"{ctx.old_sha}..{ctx.new_sha}", check=False)
        commits = tuple(ln[7:] for ln in res.stdout.splitlines() if ln.startswith("COMMIT "))
    return HunkResult(path, hunk.header, hunk.old_start, hunk.old_len, status, None, None,
                      tuple(hunk.old_lines), actual, excerpt, commits)


def analyse(ctx: RebaseTrees, patch: Patch, content: Callable[[str], bytes | None],
            pos_all: list[list[int | None]] | None = None) -> list[HunkResult]:
    """Locate every hunk of ``patch`` in the tree as it is before applying it."""
    out: list[HunkResult] = []
    for i, f in enumerate(patch.files):
        if f.old_path is None:
            status = HunkStatus.NEW_FILE if content(f.path) is None else HunkStatus.CHANGED
            out += [HunkResult(f.path, h.header, h.old_start, h.old_len, status, h.new_start, 0)
                    for h in f.hunks]
            continue
        data = content(f.old_path)
        pos = pos_all[i] if pos_all is not None else rebase_apply.positions(f, data)
        lines = data.decode("utf-8", "surrogateescape").split("\n") if data is not None else None
        for h, p in zip(f.hunks, pos, strict=False):
            if p is None:
                out.append(_explain(ctx, f.old_path, h, lines, HunkStatus.CHANGED))
            else:
                off = p - h.old_start
                st = HunkStatus.EXACT if off == 0 else HunkStatus.OFFSET
                out.append(HunkResult(f.old_path, h.header, h.old_start, h.old_len, st, p, off))
    return out


def patch_status(hunks: list[HunkResult]) -> PatchStatus:
    """A carried patch's status from its hunks: clean, offset, or context changed."""
    if any(h.status == HunkStatus.CHANGED for h in hunks):
        return PatchStatus.CONTEXT_CHANGED  # git found it where we did not (whitespace)
    return PatchStatus.OFFSET if any(h.offset for h in hunks) else PatchStatus.CLEAN


def as_conflict(h: HunkResult, files: tuple[str, ...]) -> HunkResult:
    """A hunk whose context was not found, in a file that conflicted, is a conflicting hunk."""
    if h.status == HunkStatus.CHANGED and (h.file in files or not files):
        return dataclasses.replace(h, status=HunkStatus.CONFLICT)
    return h
