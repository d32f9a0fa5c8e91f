"""Pure renderers from a `JobOutcome` to what GitHub accepts: no I/O, golden-testable.

GitHub limits that shape these: a check run's ``output.summary`` and
``output.text`` hold at most 65,535 *bytes* of UTF-8 (the docs say characters;
the API answers 422 "summary exceeds a maximum bytesize of 65535", and a
report full of ✅ and → is far more bytes than characters), one request carries at most 50
annotations (more are sent in further updates, which GitHub appends), an issue
comment holds at most 65,536 characters, a commit status description 140.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ukl_patchbot.core.jobs import Annotation, Conclusion, Job, JobOutcome, StatusLine
from ukl_patchbot.core.paths import path_problem

MARKER = "<!-- ukl-patchbot:report -->"
MAX_SUMMARY = 65_535  # bytes (UTF-8)
MAX_COMMENT = 65_536
MAX_ANNOTATIONS_PER_REQUEST = 50
MAX_STATUS_DESCRIPTION = 140
ANNOTATION_LEVELS = frozenset({"notice", "warning", "failure"})

_ICON = {
    Conclusion.SUCCESS: "✅",
    Conclusion.FAILURE: "❌",
    Conclusion.NEUTRAL: "➖",
    Conclusion.ERROR: "⚠️",
}


def _utf8_len(text: str) -> int:
    return len(text.encode())


def _head(text: str, room: int, size: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` within ``room`` (as ``size`` counts), never half a
    character, cut at a line break when one is in its second half."""
    # In bytes: cut the encoding and drop a character split at the end.
    head = text[:room] if size is len else text.encode()[:room].decode(errors="ignore")
    cut = head.rfind("\n")
    return head[:cut] if cut > len(head) // 2 else head


def truncate(
    text: str, limit: int, logs_hint: str | None, *, size: Callable[[str], int] = len
) -> str:
    """``text`` cut to at most ``limit`` (characters, or what ``size`` counts) at a line
    break, with a note saying how much is shown and where the full report is."""
    if size(text) <= limit:
        return text
    unit = "characters" if size is len else "bytes"
    where = f" Full report and logs: {logs_hint}" if logs_hint else ""
    note = f"\n\n---\n*Report truncated: {{shown}} of {size(text)} {unit} shown.{where}*\n"
    room = limit - size(note.format(shown=size(text))) - 4  # 4: a closing "\n```"
    if room <= 0:
        return _head(note.format(shown=0), limit, size)
    head = _head(text, room, size)
    shown = size(head)
    # An unclosed code fence would swallow the note.
    if head.count("```") % 2 == 1:
        head += "\n```"
    return head + note.format(shown=shown)


def truncate_bytes(text: str, limit: int, logs_hint: str | None) -> str:
    """`truncate` counting UTF-8 bytes, as GitHub does for check run output."""
    return truncate(text, limit, logs_hint, size=_utf8_len)


def safe_repo_path(path: str) -> str | None:
    """``path`` if it is a plain relative path inside the repository, else None."""
    return path if path_problem(path) is None else None


def clean_annotations(annotations: tuple[Annotation, ...]) -> list[dict[str, Any]]:
    """Annotations as the API wants them; ones on unsafe paths or with bad ranges are dropped."""
    out = []
    for a in annotations:
        path = safe_repo_path(a.path)
        if path is None or a.start_line < 1 or a.end_line < a.start_line:
            continue
        item: dict[str, Any] = {
            "path": path,
            "start_line": a.start_line,
            "end_line": a.end_line,
            "annotation_level": a.level if a.level in ANNOTATION_LEVELS else "warning",
            "message": a.message[:64_000] or "(no message)",
        }
        if a.title:
            item["title"] = a.title[:255]
        out.append(item)
    return out


@dataclass(frozen=True)
class Published:
    """What publishing an outcome came to: the steps that failed, and whether to try again.

    ``retry_after`` is set when GitHub rate limited a step: the report is not lost,
    the caller publishes it again after that many seconds.
    """

    failures: tuple[str, ...] = ()
    retry_after: float | None = None


@dataclass(frozen=True)
class CheckRunPlan:
    """The output of the final update and the annotation batches that follow it."""

    name: str
    conclusion: str
    output: dict[str, Any]
    more_annotations: tuple[tuple[dict[str, Any], ...], ...]


def check_name(job: Job) -> str:
    return f"patchbot {job.kind} ({job.component})"


def check_run_plan(outcome: JobOutcome, logs_hint: str | None) -> CheckRunPlan:
    """Split an outcome into the completing update and further ≤50-annotation updates."""
    anns = clean_annotations(outcome.annotations)
    batches = [
        tuple(anns[i : i + MAX_ANNOTATIONS_PER_REQUEST])
        for i in range(0, len(anns), MAX_ANNOTATIONS_PER_REQUEST)
    ]
    summary = truncate_bytes(outcome.summary_md or outcome.title, MAX_SUMMARY, logs_hint)
    output: dict[str, Any] = {"title": outcome.title[:255] or "patchbot", "summary": summary}
    if batches:
        output["annotations"] = list(batches[0])
    return CheckRunPlan(
        name=check_name(outcome.job),
        conclusion=str(outcome.conclusion),
        output=output,
        more_annotations=tuple(batches[1:]),
    )


def status_description(line: StatusLine) -> str:
    d = " ".join(line.description.split())
    return d if len(d) <= MAX_STATUS_DESCRIPTION else d[: MAX_STATUS_DESCRIPTION - 1] + "…"


def comment_body(outcome: JobOutcome, logs_hint: str | None) -> str:
    """The sticky PR comment: hidden marker, one-line verdict, status table, the summary."""
    job = outcome.job
    lines = [
        MARKER,
        f"### {_ICON.get(outcome.conclusion, '')} patchbot {job.kind}: {outcome.title}",
        "",
        f"Component `{job.component}`"
        + (f", tag `{job.tag}`" if job.tag else "")
        + (f", head `{job.head_sha[:12]}`" if job.head_sha else ""),
        "",
    ]
    if outcome.statuses:
        lines += ["| check | result | details |", "|---|---|---|"]
        for s in outcome.statuses:
            desc = status_description(s).replace("|", "\\|")
            lines.append(f"| `{s.context}` | {s.state} | {desc} |")
        lines.append("")
    head = "\n".join(lines) + "\n"
    return head + truncate(outcome.summary_md, MAX_COMMENT - len(head) - 1, logs_hint)


def error_outcome(
    job: Job, message: str, *, title: str = "patchbot could not finish"
) -> JobOutcome:
    """The outcome published when the bot itself failed (not the series)."""
    summary = (
        f"{message}\n\nThis is a problem of the bot or its machine, not of the patch series."
        " A maintainer can comment `/patchbot retry` to run it again."
    )
    return JobOutcome(job=job, conclusion=Conclusion.ERROR, title=title, summary_md=summary)


def denied_reply(user: str, command: str) -> str:
    return (
        f"@{user} thanks for the suggestion! `/patchbot {command}` can only be run by people"
        " with write access to this repository, so I did not start it. A maintainer can"
        " run it for you."
    )
