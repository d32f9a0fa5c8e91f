"""Resuming a rebase stopped on a conflict: `--continue`, `--abort`, `--status`.

`ukl_patchbot.rebase.engine` saves the state (`ukl_patchbot.rebase.state`) and
leaves the worktree stopped in ``git am -3`` of the conflicting patch. The
maintainer edits there; `continue_rebase` stages the edits, commits the fix,
carries the next patches, stops at the next conflict, and writes the series
exactly as a clean rebase does once every patch is in.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.rebase import engine as eng
from ukl_patchbot.rebase import state as st
from ukl_patchbot.rebase.hunks import RebaseTrees
from ukl_patchbot.rebase.report import PatchResult, PatchStatus, RebaseReport
from ukl_patchbot.series import patchset as series_mod
from ukl_patchbot.series.lines import SeriesSource
from ukl_patchbot.series.patchset import Series
from ukl_patchbot.upstream import gitops


def rebase_status(cfg: Config, component: str | None = None, tag: str | None = None
                  ) -> list[st.PendingRebase]:
    """The rebases in progress (all, or the one of ``component``/``tag``'s line)."""
    if tag is not None and component is not None:
        line = cfg.for_tag(component, tag).component(component).line or ""
        return [p for p in st.pending_all(cfg) if p.component == component and p.line == line]
    return [p for p in st.pending_all(cfg) if component is None or p.component == component]


def abort_rebase(cfg: Config, component: str | None = None) -> st.PendingRebase:
    """Drop the rebase in progress: remove its worktree and state; the series is untouched."""
    pending = st.find(cfg, component)
    wt = Path(pending.worktree)
    mirror = cfg.mirror_dir(pending.component)
    if wt.exists():
        gitops.git(wt, "am", "--abort", check=False)
        gitops.git(mirror, "worktree", "remove", "--force", str(wt), check=False)
        shutil.rmtree(wt, ignore_errors=True)
    wt.with_suffix(".keep").unlink(missing_ok=True)
    wt.with_suffix(".lock").unlink(missing_ok=True)
    gitops.git(mirror, "worktree", "prune", check=False)
    st.clear(cfg, pending)
    return pending


_MARKER = re.compile(r"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)


def _stage_edits(wt: Path, pending: st.PendingRebase) -> None:
    """Stage what the maintainer edited: the conflicted files, once free of markers.

    ``git add`` refuses paths in a sparse (non-cone) worktree, so this goes
    through ``git update-index``; a file still holding conflict markers is
    refused, naming it.
    """
    unmerged = gitops.out(wt, "diff", "--name-only", "--diff-filter=U").splitlines()
    edited = gitops.out(wt, "diff", "--name-only").splitlines()
    paths = list(dict.fromkeys(unmerged + edited))
    marked = [p for p in paths
              if (wt / p).is_file() and _MARKER.search((wt / p).read_text(errors="replace"))]
    if marked:
        raise UserError(f"{pending.current}: conflict markers left in {wt}: {', '.join(marked)}",
                        hint="resolve them there, then rerun `patchbot rebase --continue`")
    if paths:
        gitops.git(wt, "update-index", "--add", "--remove", "--", *paths)


def _commit_resolution(wt: Path, pending: st.PendingRebase) -> str:
    """Finish the ``git am`` of the stopped patch with the maintainer's edits; the new HEAD."""
    _stage_edits(wt, pending)
    if _am_in_progress(wt):
        res = gitops.git(wt, "am", "--continue", check=False)
        if not res.ok:
            raise UserError(f"{pending.current}: git am --continue failed in {wt}:\n"
                            f"{(res.stdout + res.stderr).strip()[-2000:]}",
                            hint="fix what git says (an empty result: `git am --skip` drops "
                                 "the patch), then rerun --continue")
    return eng.head(wt)


def _am_in_progress(wt: Path) -> bool:
    p = Path(gitops.out(wt, "rev-parse", "--git-path", "rebase-apply"))
    return (p if p.is_absolute() else wt / p).is_dir()


def continue_rebase(cfg: Config, component: str | None = None) -> RebaseReport:
    """Go on with a stopped rebase after the maintainer resolved the conflict in its worktree.

    Commits the resolution (``git am --continue``), carries the remaining
    patches, stops again at the next conflict, and when every patch is in
    writes the series exactly as a clean rebase does.
    """
    t0 = time.monotonic()
    pending = st.find(cfg, component)
    if pending.state != st.RebaseState.STOPPED:
        raise UserError(
            f"the rebase of {pending.component} onto {pending.tag} is {pending.state}, "
            "not stopped on a conflict (another --continue runs, or one was killed)",
            hint="wait for it, or `patchbot rebase --abort` and start again")
    wt = Path(pending.worktree)
    if not wt.is_dir():
        raise UserError(f"the rebase worktree {wt} is gone",
                        hint="`patchbot rebase --abort`, then start the rebase again")
    series = series_mod.load_series(Path(pending.source_dir), pending.component)
    if series.digest != pending.series_digest:
        raise UserError(f"the series in {pending.source_dir} changed since the rebase started",
                        hint="`patchbot rebase --abort` and start again")
    head = _commit_resolution(wt, pending)
    applying = pending.to(st.RebaseState.APPLYING)
    st.save(cfg, applying)
    return _go_on(cfg, applying, series, head, t0)


def _go_on(cfg: Config, pending: st.PendingRebase, series: Series, head: str,
           t0: float) -> RebaseReport:
    """Carry the patches after the resolved one; stop again or finish."""
    wt = Path(pending.worktree)
    names = [p.name for p in series.patches]
    idx = names.index(pending.current or "")
    prev_head = _parent_chain_head(pending)
    cur = series.patches[idx]
    resolved = "" if head == prev_head else head
    status = PatchStatus.CONTEXT_CHANGED if resolved else PatchStatus.ALREADY_UPSTREAM
    done = [*pending.done, st.DonePatch(cur.name, cur.subject, status, resolved)]
    ctx = RebaseTrees(cfg.mirror_dir(pending.component), wt, pending.old_sha,
                      pending.new_sha, False)
    carried = eng.Carried(
        results=[PatchResult(d.name, d.subject, d.status) for d in done],
        commits={d.name: d.commit for d in done if d.commit},
        heads_before=[""] * len(done), head=head, old_head=pending.old_head)
    eng.apply_with_git(ctx, series.patches[idx + 1:], carried)
    source = SeriesSource(series, Path(pending.target_dir), pending.line, pending.notes)
    if not carried.ok:
        # Stop at the next conflict: redo from just before it, leaving the markers.
        run = eng.RebaseRun(cfg, pending.component, pending.tag, source, ctx, True, list(pending.notes))
        st.clear(cfg, pending)
        cmds = eng.stop_at_conflict(run, carried)
        return _resumed_report(pending, carried, eng.Written(), wt, cmds, t0)
    written = eng.finish(cfg, pending.component, pending.tag, source, ctx, carried, True)
    abort_rebase(cfg, pending.component)  # the worktree and the state go
    return _resumed_report(pending, carried, written, None, (), t0)


def _parent_chain_head(pending: st.PendingRebase) -> str:
    commits = [d.commit for d in pending.done if d.commit]
    return commits[-1] if commits else pending.new_sha


def _resumed_report(pending: st.PendingRebase, carried: eng.Carried, written: eng.Written,
                    wt: Path | None, cmds: tuple[str, ...], t0: float) -> RebaseReport:
    return RebaseReport(
        component=pending.component, old_base=pending.old_base, new_base=pending.tag,
        patches=tuple(carried.results), applied_ref=written.ref, range_diff=written.range_diff,
        written=carried.ok, changed_files=written.changed,
        worktree=str(wt) if wt else None, continue_commands=cmds,
        notes=(*pending.notes, "resumed with --continue"),
        duration=round(time.monotonic() - t0, 3))
