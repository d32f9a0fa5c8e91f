"""What the bot is asked to do (`Job`) and what it has to say afterwards (`JobOutcome`).

The webhook, the worker, the CLI and the weekly job share these types: the
pipeline turns a `Job` into a `JobOutcome`, and the GitHub side publishes a
`JobOutcome` (check run, commit statuses, sticky comment) without knowing how
it was produced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class JobKind(StrEnum):
    CHECK = "check"  # rebase (if needed), build both variants, boot both, report
    REBASE = "rebase"  # rebase only, report per-patch results and range-diff


class Conclusion(StrEnum):
    """Maps one to one onto a GitHub check run conclusion."""

    SUCCESS = "success"
    FAILURE = "failure"  # a failed result: conflict, build or boot failure
    NEUTRAL = "neutral"  # nothing to do
    ERROR = "action_required"  # the bot could not produce a result (infrastructure)


@dataclass(frozen=True)
class Job:
    """One unit of work. ``key`` identifies it for de-duplication."""

    kind: JobKind
    component: str = "linux"
    tag: str | None = None  # upstream tag; None = the newest known tag
    repo: str | None = None  # "owner/name" when the job came from GitHub
    pr: int | None = None
    head_sha: str | None = None
    requested_by: str | None = None
    delivery_id: str | None = None  # not part of the key: redeliveries collapse

    @property
    def key(self) -> str:
        ident = [self.kind, self.component, self.tag or "", self.repo or "", str(self.pr or ""),
                 self.head_sha or ""]
        return hashlib.sha256("\0".join(ident).encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        data = dict(data)
        data["kind"] = JobKind(data["kind"])
        return cls(**data)


@dataclass(frozen=True)
class Annotation:
    """A remark on one line range of a file in the repository (e.g. a conflicting patch hunk)."""

    path: str
    start_line: int
    end_line: int
    level: str  # "notice" | "warning" | "failure"
    message: str
    title: str = ""


@dataclass(frozen=True)
class StatusLine:
    """One commit status: a context such as ``patchbot/ukl`` and its state."""

    context: str
    state: str  # "success" | "failure" | "error" | "pending"
    description: str


@dataclass(frozen=True)
class JobOutcome:
    job: Job
    conclusion: Conclusion
    title: str
    summary_md: str
    annotations: tuple[Annotation, ...] = field(default_factory=tuple)
    statuses: tuple[StatusLine, ...] = field(default_factory=tuple)
    out_dir: str | None = None  # where the full logs and report.json are

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobOutcome:
        """The outcome `to_json` wrote (e.g. a report kept to publish again later)."""
        d = json.loads(text)
        return cls(
            job=Job.from_dict(d["job"]),
            conclusion=Conclusion(d["conclusion"]),
            title=d["title"],
            summary_md=d["summary_md"],
            annotations=tuple(Annotation(**a) for a in d.get("annotations") or ()),
            statuses=tuple(StatusLine(**x) for x in d.get("statuses") or ()),
            out_dir=d.get("out_dir"),
        )
