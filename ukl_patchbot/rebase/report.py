"""What `patchbot rebase` found: per-patch and per-hunk results, and pure renderers.

`render_json` and `render_markdown` depend only on the report, so golden tests
can pin them and the GitHub side can post the Markdown as is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from ukl_patchbot.core.markdown import fence


class PatchStatus(StrEnum):
    CLEAN = "clean"  # applied exactly where the patch says
    OFFSET = "offset"  # applied, line numbers moved
    CONTEXT_CHANGED = "context-changed"  # applied only by 3-way merge
    CONFLICT = "conflict"  # does not apply
    ALREADY_UPSTREAM = "already-upstream"  # the new tag already has the change


class HunkStatus(StrEnum):
    EXACT = "exact"
    OFFSET = "offset"
    CHANGED = "changed"  # the context the hunk expects is not in the new tag
    CONFLICT = "conflict"  # ... and the 3-way merge conflicted in this file
    NEW_FILE = "new-file"


FAILED = (PatchStatus.CONFLICT,)


@dataclass(frozen=True)
class HunkResult:
    file: str
    header: str  # the hunk's @@ line as in the patch
    old_start: int  # where the patch expects it
    old_len: int
    status: HunkStatus
    new_start: int | None = None  # where it was found in the new tag (None: not found)
    offset: int | None = None
    expected: tuple[str, ...] = ()  # context + removed lines the hunk expects
    actual: tuple[str, ...] = ()  # what the new tag has there
    upstream_diff: str = ""  # upstream change old base -> new tag touching these lines
    upstream_commits: tuple[str, ...] = ()  # from `git log -L`, when the mirror has history


@dataclass(frozen=True)
class PatchResult:
    name: str
    subject: str
    status: PatchStatus
    hunks: tuple[HunkResult, ...] = ()
    conflict_files: tuple[str, ...] = ()
    detail: str = ""  # git's own words when it refused


@dataclass(frozen=True)
class RebaseReport:
    component: str
    old_base: str
    new_base: str
    patches: tuple[PatchResult, ...]
    applied_ref: str | None = None  # mirror ref with the series applied (None on conflict)
    range_diff: str = ""
    written: bool = False  # the series in patchsets/ was rewritten
    dry_run: bool = False
    changed_files: tuple[str, ...] = ()  # patch files rewritten (or that would be)
    worktree: str | None = None  # kept for the maintainer
    continue_commands: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return all(p.status not in FAILED for p in self.patches)

    def count(self, status: PatchStatus) -> int:
        return sum(1 for p in self.patches if p.status == status)


def to_dict(report: RebaseReport) -> dict[str, Any]:
    data = asdict(report)
    data["ok"] = report.ok
    return data


def render_json(report: RebaseReport) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=True) + "\n"


_ICON = {
    PatchStatus.CLEAN: "✅",
    PatchStatus.OFFSET: "✅",
    PatchStatus.CONTEXT_CHANGED: "⚠️",
    PatchStatus.CONFLICT: "❌",
    PatchStatus.ALREADY_UPSTREAM: "➖",
}


def _fence(text: str, lang: str = "") -> list[str]:
    return fence(text.rstrip("\n").split("\n"), lang)


def summary_line(report: RebaseReport) -> str:
    parts = [f"{report.count(s)} {s}" for s in PatchStatus if report.count(s)]
    verdict = "applies" if report.ok else "does not apply"
    return (f"{report.component}: series {verdict} on {report.new_base} "
            f"(from {report.old_base}): {', '.join(parts) or 'no patches'}")


def render_markdown(report: RebaseReport) -> str:
    """The report as GitHub-flavoured Markdown."""
    out: list[str] = [f"### Rebase of `{report.component}` onto `{report.new_base}`", ""]
    out.append(summary_line(report))
    out.append("")
    out += ["| # | patch | result | hunks |", "|---|---|---|---|"]
    for i, p in enumerate(report.patches, 1):
        moved = _interesting(p)
        hunks = f"{len(p.hunks)} ({len(moved)} moved/changed)" if moved else str(len(p.hunks))
        out.append(f"| {i} | {p.subject} | {_ICON[p.status]} {p.status} | {hunks} |")
    out.append("")
    for p in report.patches:
        out += _patch_section(report, p)
    if report.range_diff:
        out += ["#### range-diff (old series vs new series)", ""]
        out += _fence(report.range_diff)
        out.append("")
    out += _closing_lines(report)
    return "\n".join(out).rstrip("\n") + "\n"


def _interesting(p: PatchResult) -> list[HunkResult]:
    """The hunks worth showing: those that moved, changed or conflict."""
    return [h for h in p.hunks if h.status not in (HunkStatus.EXACT, HunkStatus.NEW_FILE)]


def _patch_section(report: RebaseReport, p: PatchResult) -> list[str]:
    interesting = _interesting(p)
    if not interesting and p.status in (PatchStatus.CLEAN, PatchStatus.OFFSET):
        return []
    out = [f"#### {p.name}: {p.status}", ""]
    if p.conflict_files:
        out += ["Conflicting files: " + ", ".join(f"`{f}`" for f in p.conflict_files), ""]
    for h in interesting:
        out += _hunk_lines(report, h)
    if p.detail:
        out += ["<details><summary>git output</summary>", ""]
        out += _fence(p.detail)
        out += ["", "</details>", ""]
    return out


def _hunk_lines(report: RebaseReport, h: HunkResult) -> list[str]:
    where = (f"found at line {h.new_start} (offset {h.offset:+d})"
             if h.new_start is not None and h.offset is not None else "context not found")
    out = [f"`{h.file}` `{h.header}`: **{h.status}**, {where}", ""]
    if h.status not in (HunkStatus.CHANGED, HunkStatus.CONFLICT):
        return out
    out += ["Expected by the patch:", ""]
    out += _fence("\n".join(h.expected))
    out += ["", f"In {report.new_base}:", ""]
    out += _fence("\n".join(h.actual) or "(nothing)")
    if h.upstream_diff:
        out += ["", f"Upstream change {report.old_base}..{report.new_base} here:", ""]
        out += _fence(h.upstream_diff, "diff")
    if h.upstream_commits:
        out += ["", "Upstream commits: " + "; ".join(h.upstream_commits)]
    out.append("")
    return out


def _closing_lines(report: RebaseReport) -> list[str]:
    out = []
    if report.written:
        out.append(f"Series rewritten: {', '.join(report.changed_files) or 'base only'}.")
    elif report.ok and report.dry_run:
        out.append(f"Dry run: would rewrite {', '.join(report.changed_files) or 'base only'}.")
    if report.applied_ref:
        out.append(f"Applied tree: `{report.applied_ref}`.")
    if report.worktree:
        out += ["", f"Worktree kept at `{report.worktree}`. To continue by hand:", ""]
        out += _fence("\n".join(report.continue_commands), "sh")
    out += [f"> {note}" for note in report.notes]
    return out
