"""`patchbot rebase <tag>`: carry a component's patch series onto a new upstream tag.

The series is applied patch by patch with ``git am`` in a throwaway sparse
worktree of the mirror (never in the user's checkout): first exactly, then,
if git refuses, with the 3-way fallback. Before each patch its hunks are
located in the tree it meets, which gives the per-hunk offsets and, for a
hunk whose context is gone, what the new tag has there and which upstream
change (old base -> new tag) touched those lines.

On success the series in ``patchsets/<component>/`` is rewritten atomically:
unchanged patches keep their bytes, refreshed ones keep their mail headers
(author, date, subject) and message, patches now upstream are dropped, and
``patchset.toml`` gets the new base. On conflict nothing is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ukl_patchbot.core import fsutil
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.rebase import fastpath as rebase_apply
from ukl_patchbot.rebase.report import (
    HunkResult,
    HunkStatus,
    PatchResult,
    PatchStatus,
    RebaseReport,
)
from ukl_patchbot.series import meta as series_meta
from ukl_patchbot.series import patchset as series_mod
from ukl_patchbot.series.patchset import Hunk, Patch, Series
from ukl_patchbot.upstream import gitops
from ukl_patchbot.upstream import mirror as upstream

log = logging.getLogger(__name__)

AM = ["am", "--quiet", "--no-gpg-sign", "--committer-date-is-author-date"]


def applied_ref(component: str, series: Series, tag: str) -> str:
    """The mirror ref holding ``series`` applied on ``tag``.

    The series digest is part of the name so concurrent runs with different
    series (tests, a PR under review) never overwrite each other's result.
    """
    return f"refs/patchbot/applied/{component}/{series.digest}/{tag}"


def _worktree_content(wt: Path) -> Callable[[str], bytes | None]:
    def get(path: str) -> bytes | None:
        try:
            return (wt / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
    return get


@dataclass
class _Ctx:
    """Per-run state shared by the steps."""

    mirror: Path
    wt: Path | None  # the worktree, once a patch needs git am
    old_sha: str | None
    new_sha: str
    history: bool  # old base is an ancestor of the new tag: `git log -L` is meaningful
    upstream_diffs: dict[str, tuple[Hunk, ...]] = field(default_factory=dict)


def _upstream_hunks(ctx: _Ctx, path: str) -> tuple[Hunk, ...]:
    if ctx.old_sha is None:
        return ()
    if path not in ctx.upstream_diffs:
        # Not stripped: a hunk may end in a blank context line (" ").
        text = gitops.git(ctx.mirror, "diff", "--no-color", "--no-renames", "-U3",
                          ctx.old_sha, ctx.new_sha, "--", path).stdout
        files = series_mod.parse_diff(text, Path(f"upstream:{path}"))
        ctx.upstream_diffs[path] = files[0].hunks if files else ()
    return ctx.upstream_diffs[path]


def _explain(ctx: _Ctx, path: str, hunk: Hunk, lines: list[str] | None,
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


def _analyse(ctx: _Ctx, patch: Patch, content: Callable[[str], bytes | None],
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


def _status(hunks: list[HunkResult]) -> PatchStatus:
    if any(h.status == HunkStatus.CHANGED for h in hunks):
        return PatchStatus.CONTEXT_CHANGED  # git found it where we did not (whitespace)
    return PatchStatus.OFFSET if any(h.offset for h in hunks) else PatchStatus.CLEAN


def _as_conflict(h: HunkResult, files: tuple[str, ...]) -> HunkResult:
    """A hunk whose context was not found, in a file that conflicted, is a conflicting hunk."""
    if h.status == HunkStatus.CHANGED and (h.file in files or not files):
        return dataclasses.replace(h, status=HunkStatus.CONFLICT)
    return h


def _head(wt: Path) -> str:
    return gitops.out(wt, "rev-parse", "HEAD")


def _apply_one(ctx: _Ctx, patch: Patch) -> tuple[PatchResult, str | None]:
    """Apply one patch; the result and the commit it made (None if none)."""
    assert ctx.wt is not None
    hunks = _analyse(ctx, patch, _worktree_content(ctx.wt))
    before = _head(ctx.wt)
    path = str(patch.path.resolve())
    # git apply has no fuzz: if a hunk's context is not there verbatim, a plain
    # attempt can only fail, and a failed `git am` costs a second on a Linux index.
    if all(h.status != HunkStatus.CHANGED for h in hunks):
        res = gitops.git(ctx.wt, *AM, "--no-3way", path, check=False)
        if res.ok:
            after = _head(ctx.wt)
            if after == before:
                return PatchResult(patch.name, patch.subject, PatchStatus.ALREADY_UPSTREAM,
                                   tuple(hunks)), None
            return PatchResult(patch.name, patch.subject, _status(hunks), tuple(hunks)), after
        gitops.git(ctx.wt, "am", "--abort", check=False)
    if gitops.git(ctx.wt, "apply", "--check", "-R", path, check=False).ok:
        return PatchResult(patch.name, patch.subject, PatchStatus.ALREADY_UPSTREAM,
                           tuple(hunks)), None
    res3 = gitops.git(ctx.wt, *AM, "--3way", path, check=False)
    if res3.ok:
        after = _head(ctx.wt)
        status = PatchStatus.ALREADY_UPSTREAM if after == before else PatchStatus.CONTEXT_CHANGED
        return PatchResult(patch.name, patch.subject, status, tuple(hunks)), (
            None if after == before else after)
    unmerged = gitops.out(ctx.wt, "diff", "--name-only", "--diff-filter=U").splitlines()
    detail = (res3.stdout + res3.stderr).strip()
    gitops.git(ctx.wt, "am", "--abort", check=False)
    conflict = tuple(_as_conflict(h, tuple(unmerged)) for h in hunks)
    files = tuple(unmerged) or tuple(sorted({h.file for h in hunks
                                             if h.status == HunkStatus.CHANGED}))
    return PatchResult(patch.name, patch.subject, PatchStatus.CONFLICT, conflict, files,
                       detail[-4000:]), None


_SIGNATURE = re.compile(rb"\n-- \n[^\n]*\n*\Z")


def _refresh(original: bytes, generated: bytes) -> bytes:
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


def _format_patches(mirror: Path, commits: dict[str, str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, sha in commits.items():
        res = gitops.git(mirror, "format-patch", "-1", "--stdout", "--no-numbered", sha)
        out[name] = res.stdout.encode("utf-8", "surrogateescape")
    return out


def _write_series(series: Series, tag: str, contents: dict[str, bytes],
                  dropped: list[str]) -> None:
    """Rewrite the series directory atomically (staged copy, then rename)."""
    d = series.directory
    staged = d.with_name(f".{d.name}.staging-{os.getpid()}")
    shutil.rmtree(staged, ignore_errors=True)
    try:
        shutil.copytree(d, staged, symlinks=True)
        for name, data in contents.items():
            (staged / name).write_bytes(data)
        for name in dropped:
            (staged / name).unlink(missing_ok=True)
        if dropped:
            kept = [ln for ln in (staged / series_mod.SERIES_NAME).read_text().splitlines(True)
                    if ln.split("#", 1)[0].strip() not in dropped]
            (staged / series_mod.SERIES_NAME).write_text("".join(kept))
        series_meta.set_base(staged, tag, shown=d)
        fsutil.atomic_replace_dir(staged, d)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _clean_stale_staging(d: Path) -> None:
    for stale in d.parent.glob(f".{d.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)


def rebase_series(
    cfg: Config,
    component: str,
    tag: str,
    *,
    dry_run: bool = False,
    keep_worktree: bool = False,
    write: bool = True,
    force: bool = False,
) -> RebaseReport:
    """Apply ``component``'s series onto ``tag`` and report per patch and hunk.

    ``write`` rewrites ``patchsets/`` on success (unless ``dry_run``);
    ``force`` allows that over local edits there. ``keep_worktree`` leaves the
    worktree (on conflict: stopped at the first conflicting patch, ready for
    ``git am --continue``). Conflicts are a result (``report.ok`` False).
    """
    t0 = time.monotonic()
    comp = cfg.component(component)
    series = series_mod.load_series(comp.series_dir, component)
    new_sha = upstream.resolve_tag(cfg, component, tag)
    mirror = cfg.mirror_dir(component)
    writing = write and not dry_run
    if writing and not force:
        dirty = gitops.is_dirty(cfg.root, str(comp.series_dir))
        if dirty:
            raise UserError(
                f"{comp.series_dir} has uncommitted changes:\n  " + "\n  ".join(dirty[:10]),
                hint="commit or discard them, or pass --force to overwrite them",
            )
    _clean_stale_staging(comp.series_dir)
    gitops.prune_worktrees(mirror, cfg.work_dir / "worktrees")  # left by killed runs
    old_sha = gitops.rev_parse(mirror, f"refs/tags/{series.base}")
    history = bool(old_sha) and old_sha != new_sha and gitops.git(
        mirror, "merge-base", "--is-ancestor", str(old_sha), new_sha, check=False).ok
    notes: list[str] = []
    if old_sha is None:
        notes.append(f"old base {series.base} is not in the mirror: no upstream change detail")
    ctx = _Ctx(mirror, None, old_sha, new_sha, history)

    # Fast path: patches are carried in memory (exact matches, and 3-way merges
    # against the old base like `git am -3`), on the new tag and, for the
    # range-diff, on the old base; the commits are written in one go.
    paths = series.paths
    old_files = rebase_apply.read_files(mirror, old_sha, paths) if old_sha else None
    fast_old: list[rebase_apply.FastPatch] = []
    if old_files is not None:
        fast_old = rebase_apply.simulate(old_files, None, series.patches)
        if len(fast_old) != len(series.patches) or any(f.outcome != "exact" for f in fast_old):
            fast_old, old_files = [], None
            notes.append(f"the series does not apply exactly to its recorded base {series.base}:"
                         " no range-diff")
    fast = rebase_apply.simulate(rebase_apply.read_files(mirror, new_sha, paths), old_files,
                                 series.patches)
    committer = gitops.committer()
    new_commits = [f for f in fast if f.outcome in ("exact", "merged")]
    chains = [(new_sha, new_commits)] + ([(str(old_sha), fast_old)] if fast_old else [])
    shas = rebase_apply.write_commits(mirror, chains, committer)
    sha_of = {id(f): sha for f, sha in zip(new_commits, shas[0], strict=False)}
    old_head = shas[1][-1] if fast_old else None

    results: list[PatchResult] = []
    commits: dict[str, str] = {}
    heads_before: list[str] = []
    head = new_sha
    outcome_status = {"exact": None, "merged": PatchStatus.CONTEXT_CHANGED,
                      "already": PatchStatus.ALREADY_UPSTREAM, "conflict": PatchStatus.CONFLICT}
    for fp in fast:
        heads_before.append(head)
        pre = fp.pre or {}
        hunks = _analyse(ctx, fp.patch, pre.get, fp.positions)
        status = outcome_status[fp.outcome] or _status(hunks)
        if fp.outcome == "conflict":
            hunks = [_as_conflict(h, fp.conflict_files) for h in hunks]
        results.append(PatchResult(fp.patch.name, fp.patch.subject, status, tuple(hunks),
                                   fp.conflict_files))
        if id(fp) in sha_of:
            head = commits[fp.patch.name] = sha_of[id(fp)]
    rest = series.patches[len(fast):]
    keep = {"flag": False}
    wt: Path | None = None
    continue_cmds: tuple[str, ...] = ()
    with contextlib.ExitStack() as stack:
        if rest or keep_worktree:
            wt = stack.enter_context(gitops.temp_worktree(
                mirror, head, sparse_paths=paths, work_root=cfg.work_dir / "worktrees",
                name=f"rebase-{component}", keep=lambda: keep["flag"]))
            ctx.wt = wt
            for patch in rest:
                heads_before.append(_head(wt))
                result, commit = _apply_one(ctx, patch)
                results.append(result)
                if commit:
                    commits[patch.name] = commit
            head = _head(wt)
        ok = all(r.status != PatchStatus.CONFLICT for r in results)
        ref = None
        range_diff = ""
        changed: list[str] = []
        if ok:
            ref = applied_ref(component, series, tag)
            gitops.update_ref(mirror, ref, head)
            if old_head:
                gitops.update_ref(mirror, applied_ref(component, series, series.base), old_head)
                range_diff = gitops.out(mirror, "range-diff", "--no-color",
                                        f"{old_sha}..{old_head}", f"{new_sha}..{head}")
            refresh = {r.name for r in results
                       if r.status in (PatchStatus.OFFSET, PatchStatus.CONTEXT_CHANGED)}
            generated = _format_patches(mirror, {n: c for n, c in commits.items() if n in refresh})
            contents = {n: _refresh(p.raw, generated[n]) for p in series.patches
                        if (n := p.name) in generated}
            contents = {n: data for n, data in contents.items() if data != (
                series.directory / n).read_bytes()}
            dropped = [r.name for r in results if r.status == PatchStatus.ALREADY_UPSTREAM]
            changed = sorted(contents) + [f"{n} (dropped: already upstream)" for n in dropped]
            if writing:
                _write_series(series, tag, contents, dropped)
        if keep_worktree and wt is not None:
            keep["flag"] = True
            continue_cmds = _prepare_for_maintainer(ctx, series, results, heads_before, tag)
    return RebaseReport(
        component=component, old_base=series.base, new_base=tag, patches=tuple(results),
        applied_ref=ref, range_diff=range_diff, written=ok and writing, dry_run=dry_run,
        changed_files=tuple(changed), worktree=str(wt) if keep_worktree and wt else None,
        continue_commands=continue_cmds, notes=tuple(notes),
        duration=round(time.monotonic() - t0, 3),
    )


def _prepare_for_maintainer(ctx: _Ctx, series: Series, results: list[PatchResult],
                            heads_before: list[str], tag: str) -> tuple[str, ...]:
    """Leave the kept worktree stopped at the first conflict; the commands to go on."""
    assert ctx.wt is not None
    wt = str(ctx.wt)
    first = next((i for i, r in enumerate(results) if r.status == PatchStatus.CONFLICT), None)
    export = f"git format-patch -o {series.directory} {ctx.new_sha}..HEAD"
    if first is None:
        return (f"cd {wt}", "git log --oneline " + f"{ctx.new_sha}..HEAD",
                "git sparse-checkout disable   # materialize the whole tree", export)
    gitops.git(ctx.wt, "reset", "-q", "--hard", heads_before[first])
    rest = [str(p.path.resolve()) for p in series.patches[first:]]
    gitops.git(ctx.wt, *AM, "--3way", *rest, check=False)
    return (
        f"cd {wt}",
        "git status                    # the conflicting files",
        "$EDITOR <files>; git add <files>",
        "git am --continue             # repeats for later patches",
        "git sparse-checkout disable   # optional: materialize the whole tree",
        f"{export}   # then fix the series file names and base = \"{tag}\"",
    )
