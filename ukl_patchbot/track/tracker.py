"""`patchbot track`: the weekly job. New upstream tags become pull requests (or issues).

For each tracked line in ``patchbot.toml`` (``linux`` 6.1, ``glibc`` 2.36, ...):
sync the mirror, find the tags of that line newer than the series' base, and
check the newest (``each``: every one, oldest first, stopping at the first
failure) with the same pipeline as `patchbot check`.

* Pass: the series is rebased onto the tag in a throwaway worktree of this
  checkout, committed, and force-pushed as ``patchbot/<component>-<tag>``;
  the line's one pull request is opened or updated, an older one of ours for
  the same line is closed as superseded, and the line's issue (if any) is
  closed with a comment.
* Conflict or failure: the line's one issue is opened or updated with the
  report and the commands that reproduce it by hand.
* Nothing new: nothing is done.

Everything is found again on GitHub by a hidden marker per line, never from
local state, and the refreshed commit is deterministic (dates taken from the
base commit), so a run killed at any point, or a second run, converges on the
same branch, one pull request and one issue. A file lock keeps two runs from
working at the same time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ukl_patchbot.check.request import CheckRequest
from ukl_patchbot.core import versions
from ukl_patchbot.core.config import Component, Config
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind, JobOutcome
from ukl_patchbot.dispatch import execute
from ukl_patchbot.github.threads import ACTIONS_PR_SETTING, PullRequestsForbidden, Thread
from ukl_patchbot.history.model import Source
from ukl_patchbot.rebase import request as rebase_request
from ukl_patchbot.track import branch as track_branch
from ukl_patchbot.track import render as track_render
from ukl_patchbot.track.results import LineResult, LineStatus
from ukl_patchbot.upstream import gitops
from ukl_patchbot.upstream import mirror as upstream
from ukl_patchbot.upstream import request as upstream_request

if TYPE_CHECKING:
    from ukl_patchbot.core.progress import Progress

log = logging.getLogger(__name__)

CheckFn = Callable[[Job, Config], JobOutcome]
SyncFn = Callable[[Config, str], object]


class TrackReporter(Protocol):
    """The GitHub side as the weekly job uses it (`ukl_patchbot.github.client.GitHubClient`)."""

    def find_marked(self, repo: str, marker: str, *, pulls: bool) -> list[Thread]: ...
    def open_pull(self, repo: str, *, head: str, base: str, title: str, body: str,
                  marker: str) -> Thread: ...
    def closed_pull(self, repo: str, *, head: str, markers: tuple[str, ...]) -> int | None: ...
    def open_issue(self, repo: str, *, title: str, body: str, marker: str) -> Thread: ...
    def edit_thread(self, repo: str, number: int, *, title: str, body: str) -> None: ...
    def close_thread(self, repo: str, number: int, comment: str, *, pull: bool) -> None: ...
    def delete_branch(self, repo: str, branch: str) -> None: ...
    def branch_url(self, repo: str, branch: str) -> str: ...


@dataclass(frozen=True)
class TrackOptions:
    """How to run. ``repo`` is ``owner/name`` on GitHub; ``remote`` a git remote name or URL."""

    repo: str | None = None
    remote: str = "origin"
    base_branch: str | None = None  # None: the checkout's current branch
    each: bool = False
    dry_run: bool = False
    components: tuple[str, ...] = ()  # empty: every component with tracked lines
    lock_wait: float = 0.0


def marker(component: str, line: str) -> str:
    """The hidden line that identifies the line's pull request and issue on GitHub."""
    return f"<!-- ukl-patchbot:track {component} {line} -->"


def branch_name(component: str, tag: str) -> str:
    return f"patchbot/{component}-{tag}"


def new_tags(comp: Component, line: str, tags: list[str], base: str | None) -> list[str]:
    """Releases of ``line`` newer than ``base``, oldest first (release candidates skipped)."""
    base_v = versions.tag_version(base, comp.tag_prefix) if base else None
    out = []
    for t in tags:
        v = versions.tag_version(t, comp.tag_prefix)
        if v is None or v.stage < 0 or not v.in_line(line):
            continue
        if base_v is None or v > base_v:
            out.append(t)
    return versions.sort_tags(out, comp.tag_prefix, newest_first=False)


def check_tag(job: Job, cfg: Config, progress: Progress | None = None) -> JobOutcome:
    """The full check of one tag (rebase, build, boot both variants) as a `JobOutcome`.

    A Linux tag is checked with glibc at its series base; a glibc tag with
    Linux at its series base. An error becomes an ERROR outcome.
    """
    return execute.run_job(job, cfg, progress, source=Source.TRACK)  # issue 14: recorded as the weekly job's


def reproduce_commands(cfg: Config, component: str, tag: str) -> list[str]:
    """What a maintainer runs to see the failure by hand."""
    cmds = [upstream_request.reproduce_sync(component),
            rebase_request.reproduce(tag, component, keep_worktree=True)]
    if component == "glibc":
        linux = upstream.series_base(cfg.component("linux")) or "<linux base>"
        cmds.append(CheckRequest(tag=linux, glibc_tag=tag).reproduce(linux, tag))
    else:
        cmds.append(CheckRequest(tag=tag).reproduce(tag, None))
    return cmds


@dataclass
class _Line:
    """Working state for one tracked line (turned into a `LineResult` at the end)."""

    cfg: Config
    comp: Component
    line: str
    base: str | None
    tags: list[str]
    gh: TrackReporter | None
    opts: TrackOptions

    @property
    def marker(self) -> str:
        return marker(self.comp.name, self.line)

    def result(self, status: LineStatus, **kw: object) -> LineResult:
        return LineResult(self.comp.name, self.line, self.base, tuple(self.tags), status,
                          **kw)  # type: ignore[arg-type]


def _on_pass(ln: _Line, tag: str, outcome: JobOutcome) -> LineResult:
    name, repo = ln.comp.name, ln.opts.repo or ""
    assert ln.gh is not None
    commit, series_tree, rebase_md = track_branch.refresh_commit(ln.cfg, name, tag)
    if commit is None:  # the check passed but the series does not apply: report, do not push
        failed = dataclasses.replace(outcome, conclusion=Conclusion.FAILURE,
                                     summary_md=rebase_md)
        return _on_fail(ln, tag, failed)
    branch = branch_name(name, tag)
    pushed = track_branch.push_branch(ln.cfg, ln.opts.remote, commit, branch)
    actions = [f"pushed {branch} ({commit[:12]})" if pushed
               else f"{branch} already at {commit[:12]}"]
    title = track_render.pr_title(name, tag)
    series_mark = track_render.series_marker(series_tree)
    body = track_render.pr_body(ln.marker + "\n" + series_mark, name, ln.line, ln.base, tag,
                                outcome, rebase_md)
    open_prs = ln.gh.find_marked(repo, ln.marker, pulls=True)
    mine = next((p for p in open_prs if p.head == branch), None)
    rejected = None
    if mine is None:
        # A maintainer closed our PR of exactly this series: respect that until the tag
        # or the refreshed series changes (then a new PR is opened).
        rejected = ln.gh.closed_pull(repo, head=branch, markers=(ln.marker, series_mark))
    if rejected is not None:
        number = rejected
        actions.append(f"pull request #{rejected} of this series was closed without merging; "
                       "not reopened")
    elif mine is None:
        try:
            number = ln.gh.open_pull(repo, head=branch, base=ln.opts.base_branch or "main",
                                     title=title, body=body, marker=ln.marker).number
        except PullRequestsForbidden as exc:
            return _pr_forbidden(ln, tag, outcome, branch, pushed, actions, exc)
        actions.append(f"opened pull request #{number}")
    else:
        number = mine.number
        if mine.title != title or mine.body != body:
            ln.gh.edit_thread(repo, number, title=title, body=body)
            actions.append(f"updated pull request #{number}")
        else:
            actions.append(f"pull request #{number} already up to date")
    closed = []
    for old in open_prs:
        if old.number != number and rejected is None:
            ln.gh.close_thread(repo, old.number, track_render.superseded(number, tag), pull=True)
            closed.append(old.number)
            actions.append(f"closed superseded pull request #{old.number}")
            if old.head and old.head != branch and old.head.startswith("patchbot/"):
                ln.gh.delete_branch(repo, old.head)  # nothing else will ever use it
                actions.append(f"deleted branch {old.head}")
    for issue in ln.gh.find_marked(repo, ln.marker, pulls=False):
        ln.gh.close_thread(repo, issue.number, track_render.fixed(tag, number), pull=False)
        closed.append(issue.number)
        actions.append(f"closed issue #{issue.number}")
    return ln.result(LineStatus.PASSED, tag=tag, branch=branch, pushed=pushed,
                     pr=None if rejected else number, closed=tuple(closed),
                     actions=tuple(actions), detail=outcome.title)


def _pr_forbidden(ln: _Line, tag: str, outcome: JobOutcome, branch: str, pushed: bool,
                  actions: list[str], exc: PullRequestsForbidden) -> LineResult:
    """GitHub does not let this token open pull requests: the line's issue links the branch."""
    repo = ln.opts.repo or ""
    assert ln.gh is not None
    link = ln.gh.branch_url(repo, branch)
    title = track_render.blocked_title(ln.comp.name, tag)
    body = track_render.blocked_issue_body(ln.marker, ln.comp.name, ln.line, ln.base, tag,
                                           outcome, branch, link, ACTIONS_PR_SETTING)
    found = ln.gh.find_marked(repo, ln.marker, pulls=False)
    if found:
        issue = found[0]
        if issue.title != title or issue.body != body:
            ln.gh.edit_thread(repo, issue.number, title=title, body=body)
    else:
        issue = ln.gh.open_issue(repo, title=title, body=body, marker=ln.marker)
    log.warning("track %s %s: %s", ln.comp.name, ln.line, exc)
    actions.append(f"could not open a pull request: {repo} does not let GitHub Actions open"
                   f" pull requests (turn on {ACTIONS_PR_SETTING}, or use a GitHub App or a"
                   f" personal token); issue #{issue.number} links the branch: {link}")
    return ln.result(LineStatus.PASSED, tag=tag, branch=branch, pushed=pushed,
                     issue=issue.number, actions=tuple(actions), detail=outcome.title)


def _on_fail(ln: _Line, tag: str, outcome: JobOutcome) -> LineResult:
    repo = ln.opts.repo or ""
    assert ln.gh is not None
    title = track_render.issue_title(ln.comp.name, ln.line, tag)
    body = track_render.issue_body(ln.marker, ln.comp.name, ln.line, ln.base, tag, outcome,
                                   reproduce_commands(ln.cfg, ln.comp.name, tag))
    found = ln.gh.find_marked(repo, ln.marker, pulls=False)
    if found:
        issue = found[0]
        action = f"issue #{issue.number} already up to date"
        if issue.title != title or issue.body != body:
            ln.gh.edit_thread(repo, issue.number, title=title, body=body)
            action = f"updated issue #{issue.number}"
    else:
        issue = ln.gh.open_issue(repo, title=title, body=body, marker=ln.marker)
        action = f"opened issue #{issue.number}"
    return ln.result(LineStatus.FAILED, tag=tag, issue=issue.number,
                     actions=(action,), detail=outcome.title)


def _nothing_new(ln: _Line) -> LineResult:
    """Nothing to check. A pull request or issue of ours still open for the line is stale.

    The series base is at or past every tag of the line, so a maintainer has
    carried the series by hand (or merged elsewhere): say so and close them.
    """
    acts = [f"nothing newer than {ln.base} in {ln.comp.name} {ln.line}"]
    closed = []
    if ln.gh is not None and ln.opts.repo and not ln.opts.dry_run:
        note = track_render.caught_up(ln.base)
        for pulls in (True, False):
            for th in ln.gh.find_marked(ln.opts.repo, ln.marker, pulls=pulls):
                ln.gh.close_thread(ln.opts.repo, th.number, note, pull=pulls)
                closed.append(th.number)
                acts.append(f"closed stale {'pull request' if pulls else 'issue'} #{th.number}")
    return ln.result(LineStatus.NOTHING_NEW, closed=tuple(closed), actions=tuple(acts))


def _plan(ln: _Line, candidates: list[str]) -> LineResult:
    """What a real run would do, without running the check or changing anything."""
    name = ln.comp.name
    acts = []
    for tag in candidates:
        acts.append(f"check {tag}: " + reproduce_commands(ln.cfg, name, tag)[-1])
        acts.append(f"on pass: rebase the series onto {tag}, commit, then "
                    + shlex.join(["git", "push", "--force", ln.opts.remote,
                                  f"<commit>:refs/heads/{branch_name(name, tag)}"]))
    if ln.gh is not None and ln.opts.repo:
        prs = ln.gh.find_marked(ln.opts.repo, ln.marker, pulls=True)
        issues = ln.gh.find_marked(ln.opts.repo, ln.marker, pulls=False)
        pr_txt = ", ".join(f"#{p.number} ({p.head})" for p in prs) or "none open"
        acts.append(f"on pass: open or update the {name} {ln.line} pull request "
                    f"(ours: {pr_txt}); close issue(s) "
                    f"{', '.join(f'#{i.number}' for i in issues) or '-'}")
        acts.append("on failure: " + (f"update issue #{issues[0].number}" if issues
                                       else "open an issue") + " with the report")
    else:
        acts.append(f"on pass: open or update the {name} {ln.line} pull request; "
                    "on failure: open or update its issue")
    return ln.result(LineStatus.PLANNED, tag=candidates[-1], actions=tuple(acts))


def track_line(ln: _Line, check: CheckFn) -> LineResult:
    """Check the line's new tags and report the outcome on GitHub."""
    candidates = new_tags(ln.comp, ln.line, ln.tags, ln.base)
    ln.tags = candidates
    if not candidates:
        return _nothing_new(ln)
    if not ln.opts.each:
        candidates = candidates[-1:]
    if ln.opts.dry_run:
        return _plan(ln, candidates)
    last: LineResult | None = None
    for tag in candidates:
        log.info("track %s %s: checking %s", ln.comp.name, ln.line, tag)
        outcome = check(Job(JobKind.CHECK, component=ln.comp.name, tag=tag,
                            repo=ln.opts.repo), ln.cfg)
        if outcome.conclusion == Conclusion.ERROR:
            return ln.result(LineStatus.ERROR, tag=tag, detail=outcome.summary_md,
                             actions=(f"could not check {tag}: {outcome.title}",))
        if outcome.conclusion != Conclusion.SUCCESS:
            return _on_fail(ln, tag, outcome)
        last = _on_pass(ln, tag, outcome)
        if last.status != LineStatus.PASSED:
            return last
    assert last is not None
    return last


def _fetch_line_tags(cfg: Config, comp: Component, base: str | None) -> None:
    """For ``--each``: a git upstream's sync fetches only the newest tag of each line."""
    remote = upstream.remote_tags(cfg, comp.name)
    lines = (comp.line,) if comp.line else comp.tracked
    wanted = sorted({t for line in lines for t in new_tags(comp, line, remote, base)})
    if wanted:
        upstream.sync(cfg, comp.name, versions=wanted, log_dir=cfg.cache_dir / "logs")


def track(cfg: Config, opts: TrackOptions, gh: TrackReporter | None, *,
          check: CheckFn = check_tag, sync: SyncFn | None = None) -> list[LineResult]:
    """Run the weekly job over every tracked line; one `LineResult` per line.

    ``check`` and ``sync`` are the pipeline's and `upstream.sync` unless a
    test swaps them. Raises `InfraError` when another run holds the lock
    longer than ``opts.lock_wait`` seconds.
    """
    if not opts.dry_run and (gh is None or not opts.repo):
        raise UserError("patchbot track needs a GitHub repository and credentials to report",
                        hint="pass --repo OWNER/NAME (or set GITHUB_REPOSITORY) and "
                        "PATCHBOT_GITHUB_TOKEN or the App variables; --dry-run needs neither")
    if not opts.dry_run and not gitops.git(cfg.root, "rev-parse", "--show-toplevel",
                                           check=False).ok:
        raise UserError(f"{cfg.root} is not a git checkout",
                        hint="patchbot track commits the refreshed series on top of the "
                        "checkout's HEAD and pushes it: run it in a clone of the repository")
    names = opts.components or tuple(n for n, c in cfg.components.items() if c.tracked)
    comps = [cfg.component(n) for n in names]
    if not opts.base_branch:
        opts = dataclasses.replace(opts, base_branch=track_branch.current_branch(cfg))
    sync = sync or (lambda c, name: upstream.sync(c, name, log_dir=c.cache_dir / "logs"))
    lock = cfg.cache_dir / "track.lock"
    with contextlib.ExitStack() as stack:
        try:
            if not opts.dry_run:  # a dry run changes nothing; the mirror sync has its own lock
                stack.enter_context(gitops.locked(lock, timeout=opts.lock_wait))
        except InfraError:
            raise InfraError(f"another patchbot track holds {lock}",
                             hint="it finishes on its own; rerun with --wait SECONDS to queue "
                             "behind it") from None
        results = []
        for comp in comps:
            sync(cfg, comp.name)
            # Each line has its own series (and base): one PR or issue per line.
            line_cfgs = [cfg.for_line(comp.name, line) for line in comp.tracked]
            if opts.each and not comp.is_debian:
                for lcfg in line_cfgs:
                    lcomp = lcfg.component(comp.name)
                    _fetch_line_tags(lcfg, lcomp, upstream.series_base(lcomp))
            tags = upstream.list_tags(cfg, comp.name)
            for line, lcfg in zip(comp.tracked, line_cfgs, strict=True):
                lcomp = lcfg.component(comp.name)
                ln = _Line(lcfg, lcomp, line, upstream.series_base(lcomp), list(tags), gh, opts)
                results.append(track_line(ln, check))
        return results
