"""`patchbot rebase <tag>`: carry a component's patch series onto a new upstream tag.

The series is applied patch by patch with ``git am`` in a throwaway sparse
worktree of the mirror (never in the user's checkout): first exactly, then,
if git refuses, with the 3-way fallback (patches whose hunks all match go
the in-memory way of `ukl_patchbot.rebase.fastpath`). Before each patch its
hunks are located in the tree it meets (`ukl_patchbot.rebase.hunks`), which
gives the per-hunk offsets and, for a hunk whose context is gone, what the
new tag has there and which upstream change (old base -> new tag) touched
those lines.

The series carried is the tag's line's (``patchsets/linux/6.12``); a line
with no series yet starts from the newest older line's, or the one named
with ``from_line``. On success the line's series is rewritten atomically:
unchanged patches keep their bytes, refreshed ones keep their mail headers
(author, date, subject) and message, patches now upstream are dropped, and
``patchset.toml`` gets the new base. On conflict nothing is written; a
resumable run saves its state (`ukl_patchbot.rebase.state`) and leaves the
worktree stopped at the conflict for `continue_rebase`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.rebase import fastpath as rebase_apply
from ukl_patchbot.rebase import state as st
from ukl_patchbot.rebase import writer
from ukl_patchbot.rebase.hunks import (
    RebaseTrees,
    analyse,
    as_conflict,
    patch_status,
    worktree_content,
)
from ukl_patchbot.rebase.report import (
    HunkStatus,
    PatchResult,
    PatchStatus,
    RebaseReport,
)
from ukl_patchbot.series import lines
from ukl_patchbot.series.lines import SeriesSource
from ukl_patchbot.series.patchset import Patch, Series
from ukl_patchbot.upstream import gitops
from ukl_patchbot.upstream import mirror as upstream

log = logging.getLogger(__name__)

AM = ["am", "--quiet", "--no-gpg-sign", "--committer-date-is-author-date"]

# Kept importable under their old names (tests interrupt the write).
_write_series = writer.write_series
_clean_stale_staging = writer.clean_stale_staging


def applied_ref(component: str, series: Series, tag: str) -> str:
    """The mirror ref holding ``series`` applied on ``tag``.

    The series digest is part of the name so concurrent runs with different
    series (tests, a PR under review) never overwrite each other's result.
    """
    return f"refs/patchbot/applied/{component}/{series.digest}/{tag}"


def head(wt: Path) -> str:
    """The commit checked out in the worktree ``wt``."""
    return gitops.out(wt, "rev-parse", "HEAD")


def _apply_one(ctx: RebaseTrees, patch: Patch) -> tuple[PatchResult, str | None]:
    """Apply one patch; the result and the commit it made (None if none)."""
    assert ctx.wt is not None
    hunks = analyse(ctx, patch, worktree_content(ctx.wt))
    before = head(ctx.wt)
    path = str(patch.path.resolve())
    # git apply has no fuzz: if a hunk's context is not there verbatim, a plain
    # attempt can only fail, and a failed `git am` costs a second on a Linux index.
    if all(h.status != HunkStatus.CHANGED for h in hunks):
        res = gitops.git(ctx.wt, *AM, "--no-3way", path, check=False)
        if res.ok:
            after = head(ctx.wt)
            if after == before:
                return PatchResult(patch.name, patch.subject, PatchStatus.ALREADY_UPSTREAM,
                                   tuple(hunks)), None
            return PatchResult(patch.name, patch.subject, patch_status(hunks), tuple(hunks)), after
        gitops.git(ctx.wt, "am", "--abort", check=False)
    if gitops.git(ctx.wt, "apply", "--check", "-R", path, check=False).ok:
        return PatchResult(patch.name, patch.subject, PatchStatus.ALREADY_UPSTREAM,
                           tuple(hunks)), None
    res3 = gitops.git(ctx.wt, *AM, "--3way", path, check=False)
    if res3.ok:
        after = head(ctx.wt)
        status = PatchStatus.ALREADY_UPSTREAM if after == before else PatchStatus.CONTEXT_CHANGED
        return PatchResult(patch.name, patch.subject, status, tuple(hunks)), (
            None if after == before else after)
    unmerged = gitops.out(ctx.wt, "diff", "--name-only", "--diff-filter=U").splitlines()
    detail = (res3.stdout + res3.stderr).strip()
    gitops.git(ctx.wt, "am", "--abort", check=False)
    conflict = tuple(as_conflict(h, tuple(unmerged)) for h in hunks)
    files = tuple(unmerged) or tuple(sorted({h.file for h in hunks
                                             if h.status == HunkStatus.CHANGED}))
    return PatchResult(patch.name, patch.subject, PatchStatus.CONFLICT, conflict, files,
                       detail[-4000:]), None


# -- one run -----------------------------------------------------------------------------


@dataclass
class RebaseRun:
    """What a rebase run knows before it applies anything."""

    cfg: Config
    component: str
    tag: str
    source: SeriesSource
    ctx: RebaseTrees
    writing: bool
    notes: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    @property
    def series(self) -> Series:
        return self.source.series


def _open_run(cfg: Config, component: str, tag: str, *, from_line: str | None,
              writing: bool, force: bool) -> RebaseRun:
    source = lines.choose_source(cfg, component, tag, from_line)
    new_sha = upstream.resolve_tag(cfg, component, tag)
    mirror = cfg.mirror_dir(component)
    if writing and not force:
        dirty = gitops.is_dirty(cfg.root, str(source.target))
        if dirty:
            raise UserError(
                f"{source.target} has uncommitted changes:\n  " + "\n  ".join(dirty[:10]),
                hint="commit or discard them, or pass --force to overwrite them",
            )
    if writing:
        _refuse_if_pending(cfg, component, source.line)
    _clean_stale_staging(source.target)
    gitops.prune_worktrees(mirror, cfg.work_dir / "worktrees")  # left by killed runs
    base = source.series.base
    old_sha = gitops.rev_parse(mirror, f"refs/tags/{base}")
    history = bool(old_sha) and old_sha != new_sha and gitops.git(
        mirror, "merge-base", "--is-ancestor", str(old_sha), new_sha, check=False).ok
    notes = list(source.notes)
    if old_sha is None:
        notes.append(f"old base {base} is not in the mirror: no upstream change detail")
    return RebaseRun(cfg, component, tag, source, RebaseTrees(mirror, None, old_sha, new_sha, history),
                writing, notes)


def _refuse_if_pending(cfg: Config, component: str, line: str) -> None:
    path = st.state_path(cfg, component, line)
    if path.exists():
        p = st.load(path)
        raise UserError(
            f"a rebase of {component} onto {p.tag} is {p.state}"
            + (f" at {p.current}" if p.current else ""),
            hint="finish it with `patchbot rebase --continue`, or drop it with "
                 "`patchbot rebase --abort`",
        )


@dataclass
class Carried:
    """Results so far: per patch, the commits made, and the chain heads."""

    results: list[PatchResult] = field(default_factory=list)
    commits: dict[str, str] = field(default_factory=dict)
    heads_before: list[str] = field(default_factory=list)
    head: str = ""
    old_head: str | None = None

    @property
    def ok(self) -> bool:
        return all(r.status != PatchStatus.CONFLICT for r in self.results)


_OUTCOME_STATUS = {"exact": None, "merged": PatchStatus.CONTEXT_CHANGED,
                   "already": PatchStatus.ALREADY_UPSTREAM, "conflict": PatchStatus.CONFLICT}


def _fast_path(run: RebaseRun) -> tuple[Carried, tuple[Patch, ...]]:
    """Carry what can be carried in memory; the patches left for git am.

    Exact matches and 3-way merges against the old base (like ``git am -3``)
    are applied on the new tag and, for the range-diff, on the old base; the
    commits are written in one go.
    """
    series, ctx = run.series, run.ctx
    paths = series.paths
    old_files = rebase_apply.read_files(ctx.mirror, ctx.old_sha, paths) if ctx.old_sha else None
    fast_old: list[rebase_apply.FastPatch] = []
    if old_files is not None:
        fast_old = rebase_apply.simulate(old_files, None, series.patches)
        if len(fast_old) != len(series.patches) or any(f.outcome != "exact" for f in fast_old):
            fast_old, old_files = [], None
            run.notes.append(f"the series does not apply exactly to its recorded base "
                             f"{series.base}: no range-diff")
    fast = rebase_apply.simulate(rebase_apply.read_files(ctx.mirror, ctx.new_sha, paths),
                                 old_files, series.patches)
    committer = gitops.committer()
    new_commits = [f for f in fast if f.outcome in ("exact", "merged")]
    chains = [(ctx.new_sha, new_commits)] + ([(str(ctx.old_sha), fast_old)] if fast_old else [])
    shas = rebase_apply.write_commits(ctx.mirror, chains, committer)
    sha_of = {id(f): sha for f, sha in zip(new_commits, shas[0], strict=False)}
    carried = Carried(head=ctx.new_sha, old_head=shas[1][-1] if fast_old else None)
    for fp in fast:
        carried.heads_before.append(carried.head)
        hunks = analyse(ctx, fp.patch, (fp.pre or {}).get, fp.positions)
        status = _OUTCOME_STATUS[fp.outcome] or patch_status(hunks)
        if fp.outcome == "conflict":
            hunks = [as_conflict(h, fp.conflict_files) for h in hunks]
        carried.results.append(PatchResult(fp.patch.name, fp.patch.subject, status,
                                           tuple(hunks), fp.conflict_files))
        if id(fp) in sha_of:
            carried.head = carried.commits[fp.patch.name] = sha_of[id(fp)]
    return carried, series.patches[len(fast):]


def apply_with_git(ctx: RebaseTrees, patches: tuple[Patch, ...], carried: Carried) -> None:
    """Apply ``patches`` one by one with git am in the worktree (``ctx.wt``)."""
    assert ctx.wt is not None
    for patch in patches:
        carried.heads_before.append(head(ctx.wt))
        result, commit = _apply_one(ctx, patch)
        carried.results.append(result)
        if commit:
            carried.commits[patch.name] = commit
    carried.head = head(ctx.wt)


@dataclass(frozen=True)
class Written:
    ref: str | None = None
    range_diff: str = ""
    changed: tuple[str, ...] = ()


def finish(cfg: Config, component: str, tag: str, source: SeriesSource, ctx: RebaseTrees,
            carried: Carried, writing: bool) -> Written:
    """All patches are in: record the applied ref, the range-diff, and write the series."""
    series = source.series
    ref = applied_ref(component, series, tag)
    gitops.update_ref(ctx.mirror, ref, carried.head)
    range_diff = ""
    if carried.old_head and ctx.old_sha:
        gitops.update_ref(ctx.mirror, applied_ref(component, series, series.base),
                          carried.old_head)
        range_diff = gitops.out(ctx.mirror, "range-diff", "--no-color",
                                f"{ctx.old_sha}..{carried.old_head}",
                                f"{ctx.new_sha}..{carried.head}")
    refresh = {r.name for r in carried.results
               if r.status in (PatchStatus.OFFSET, PatchStatus.CONTEXT_CHANGED)}
    contents = writer.new_contents(ctx.mirror, series, carried.commits, refresh)
    dropped = [r.name for r in carried.results if r.status == PatchStatus.ALREADY_UPSTREAM]
    changed = sorted(contents) + [f"{n} (dropped: already upstream)" for n in dropped]
    if writing:
        _write_series(series, tag, contents, dropped, source.target)
    return Written(ref, range_diff, tuple(changed))


def rebase_series(
    cfg: Config,
    component: str,
    tag: str,
    *,
    dry_run: bool = False,
    keep_worktree: bool = False,
    write: bool = True,
    force: bool = False,
    from_line: str | None = None,
    resumable: bool = False,
) -> RebaseReport:
    """Apply ``component``'s series for ``tag``'s line onto ``tag``; report per patch and hunk.

    ``write`` rewrites the line's series on success (unless ``dry_run``);
    ``force`` allows that over local edits there. ``from_line`` starts from
    that line's series. ``keep_worktree`` leaves the worktree (on conflict:
    stopped at the first conflicting patch, ready for ``git am --continue``);
    ``resumable`` (with ``write``) does the same and saves the state for
    `continue_rebase`. Conflicts are a result (``report.ok`` False).
    """
    writing = write and not dry_run
    resumable = resumable and writing
    run = _open_run(cfg, component, tag, from_line=from_line, writing=writing, force=force)
    carried, rest = _fast_path(run)
    keep = {"flag": False}
    wt: Path | None = None
    written = Written()
    continue_cmds: tuple[str, ...] = ()
    with contextlib.ExitStack() as stack:
        if rest or keep_worktree or (resumable and not carried.ok):
            wt = stack.enter_context(gitops.temp_worktree(
                run.ctx.mirror, carried.head, sparse_paths=run.series.paths,
                work_root=cfg.work_dir / "worktrees", name=f"rebase-{component}",
                keep=lambda: keep["flag"]))
            run.ctx.wt = wt
            apply_with_git(run.ctx, rest, carried)
        if carried.ok:
            written = finish(cfg, component, tag, run.source, run.ctx, carried, writing)
        if resumable and not carried.ok:
            keep["flag"] = True
            continue_cmds = stop_at_conflict(run, carried)
        elif keep_worktree and wt is not None:
            keep["flag"] = True
            continue_cmds = _prepare_for_maintainer(run.ctx, run.series, carried.results,
                                                    carried.heads_before, tag)
    return RebaseReport(
        component=component, old_base=run.series.base, new_base=tag,
        patches=tuple(carried.results), applied_ref=written.ref,
        range_diff=written.range_diff, written=carried.ok and writing, dry_run=dry_run,
        changed_files=written.changed, worktree=str(wt) if keep["flag"] and wt else None,
        continue_commands=continue_cmds, notes=tuple(run.notes),
        duration=round(time.monotonic() - run.t0, 3),
    )


def _prepare_for_maintainer(ctx: RebaseTrees, series: Series, results: list[PatchResult],
                            heads_before: list[str], tag: str) -> tuple[str, ...]:
    """Leave the kept worktree stopped at the first conflict; the commands to go on by hand."""
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


# -- resumable: stop, continue, abort, status --------------------------------------------


def _maintainer_commands(wt: Path) -> tuple[str, ...]:
    return (
        f"cd {wt}",
        "git status                    # the conflicting files",
        "$EDITOR <files>               # no git add needed: --continue stages your edits",
        "patchbot rebase --continue    # commits the fix and carries the next patches",
        "patchbot rebase --status      # where it stands;  --abort drops it all",
    )


def stop_at_conflict(run: RebaseRun, carried: Carried) -> tuple[str, ...]:
    """Reset the worktree to just before the first conflict, start ``git am -3`` of that patch
    (leaving the conflict markers), and save the state; the maintainer's commands."""
    ctx = run.ctx
    assert ctx.wt is not None
    first = next(i for i, r in enumerate(carried.results) if r.status == PatchStatus.CONFLICT)
    gitops.git(ctx.wt, "reset", "-q", "--hard", carried.heads_before[first])
    patch = run.series.patches[first]
    gitops.git(ctx.wt, *AM, "--3way", str(patch.path.resolve()), check=False)
    done = tuple(st.DonePatch(r.name, r.subject, r.status, carried.commits.get(r.name, ""))
                 for r in carried.results[:first])
    pending = st.PendingRebase(
        state=st.RebaseState.APPLYING, component=run.component, line=run.source.line,
        tag=run.tag, new_sha=ctx.new_sha, old_base=run.series.base, old_sha=ctx.old_sha,
        old_head=carried.old_head, source_dir=str(run.series.directory),
        target_dir=str(run.source.target), series_digest=run.series.digest,
        worktree=str(ctx.wt), done=done, current=patch.name, notes=tuple(run.notes))
    st.save(run.cfg, pending.to(st.RebaseState.STOPPED))
    return _maintainer_commands(ctx.wt)
