"""Pure renderers for the weekly job: commit message, PR and issue texts, the run summary.

No I/O: the same inputs give the same text, which is what lets `patchbot
track` tell "already up to date" from "changed" and skip needless edits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict

from ukl_patchbot.core.jobs import JobOutcome
from ukl_patchbot.core.markdown import fence
from ukl_patchbot.github.publish import MAX_COMMENT, truncate
from ukl_patchbot.track.results import LineResult

# Room for the header and the reproducer above the report (GitHub's limit is for the whole body).
_HEAD_ROOM = 4000


def commit_message(component: str, tag: str, rebase_summary: str) -> str:
    return (f"{component}: carry the UKL series onto {tag}\n\n{rebase_summary}\n\n"
            "Rebased and checked (build and boot of both variants) by `patchbot track`.\n")


def series_marker(tree: str) -> str:
    """Hidden in the PR body: which refreshed series (git tree id) the PR carries."""
    return f"<!-- ukl-patchbot:series {tree} -->"


def pr_title(component: str, tag: str) -> str:
    return f"{component}: carry the UKL series onto {tag}"


def issue_title(component: str, line: str, tag: str) -> str:
    return f"patchbot track: the UKL {component} series fails on {tag} ({line} line)"


def _base_text(base: str | None) -> str:
    return f"`{base}`" if base else "(no base recorded)"


def pr_body(marker: str, component: str, line: str, base: str | None, tag: str,
            outcome: JobOutcome, rebase_md: str) -> str:
    """The pull request text: what moved, the check report, the series refresh."""
    head = [marker,
            (f"The UKL {component} series, carried from {_base_text(base)} onto `{tag}` "
            f"(tracked line {line}) by `patchbot track`. The full check passed: "
            f"{outcome.title}."),
            "",
            ("This branch is force-pushed when the series on the base branch changes; "
            "a newer tag of the line replaces this pull request with a new one."),
            ""]
    refresh = truncate(rebase_md, MAX_COMMENT // 3, None)
    report = truncate(outcome.summary_md, MAX_COMMENT - _HEAD_ROOM - len(refresh),
                      outcome.out_dir)
    tail = ["", "<details><summary>Series refresh (per patch, range-diff)</summary>", "",
            refresh, "", "</details>", ""]
    return "\n".join(head) + "\n" + report.rstrip() + "\n" + "\n".join(tail)


def issue_body(marker: str, component: str, line: str, base: str | None, tag: str,
               outcome: JobOutcome, reproduce: Iterable[str]) -> str:
    """The issue text: what failed, how to reproduce it by hand, the report."""
    head = [marker,
            (f"`patchbot track` could not carry the UKL {component} series from "
            f"{_base_text(base)} onto `{tag}` (tracked line {line}): {outcome.title}."),
            "",
            "Reproduce by hand in a checkout of this repository:",
            "",
            *fence(reproduce, "sh"),
            ""]
    if outcome.out_dir:
        head += [f"Logs of this run: `{outcome.out_dir}`", ""]
    head += ["This issue is updated by each weekly run and closed when a later run passes.", ""]
    report = truncate(outcome.summary_md, MAX_COMMENT - _HEAD_ROOM, outcome.out_dir)
    return "\n".join(head) + "\n" + report.rstrip() + "\n"


def blocked_title(component: str, tag: str) -> str:
    return f"patchbot track: {component} {tag} passed; open its pull request by hand"


def blocked_issue_body(marker: str, component: str, line: str, base: str | None, tag: str,
                       outcome: JobOutcome, branch: str, link: str, setting: str) -> str:
    """The issue text when the check passed but GitHub refused to let the job open the PR."""
    head = [marker,
            (f"The UKL {component} series, carried from {_base_text(base)} onto `{tag}` "
             f"(tracked line {line}), passed the full check: {outcome.title}. It is pushed "
             f"as branch `{branch}`, but GitHub does not let this workflow's token open "
             "pull requests in this repository."),
            "",
            f"Open the pull request by hand: {link}",
            "",
            (f"To let the weekly job open it itself, a repository admin can turn on {setting}, "
             "or give the job a GitHub App or a personal token (`PATCHBOT_GITHUB_TOKEN`)."),
            ""]
    report = truncate(outcome.summary_md, MAX_COMMENT - _HEAD_ROOM, outcome.out_dir)
    return "\n".join(head) + "\n" + report.rstrip() + "\n"


def superseded(pr: int, tag: str) -> str:
    return f"Superseded by #{pr}, which carries the series onto the newer tag `{tag}`."


def fixed(tag: str, pr: int) -> str:
    return f"The series now passes the full check on `{tag}`: see #{pr}. Closing."


def caught_up(base: str | None) -> str:
    return (f"The series base is now `{base}`, and the line has no newer tag: "
            "nothing left to do here. Closing.")


def render_text(results: Iterable[LineResult]) -> str:
    """One paragraph per tracked line, for the terminal and the CI log."""
    out = []
    for r in results:
        head = f"{r.component} {r.line}: {r.status}"
        if r.tag:
            head += f" ({r.tag})"
        out.append(head)
        out += [f"  {a}" for a in r.actions]
        if r.detail and r.status != "passed":
            out += [f"  {ln}" for ln in r.detail.strip().splitlines()[:20]]
    return "\n".join(out) + "\n"


def render_json(results: Iterable[LineResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2, sort_keys=True) + "\n"
