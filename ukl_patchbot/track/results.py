"""What the weekly job did to each tracked line: the result model the tracker fills and
`ukl_patchbot.track.render` turns into text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LineStatus(StrEnum):
    NOTHING_NEW = "nothing-new"
    PASSED = "passed"  # pull request opened or updated
    FAILED = "failed"  # issue opened or updated
    ERROR = "error"  # the check could not produce a result; nothing reported on GitHub
    PLANNED = "planned"  # --dry-run


@dataclass(frozen=True)
class LineResult:
    """What happened to one tracked line."""

    component: str
    line: str
    base: str | None
    new_tags: tuple[str, ...]
    status: LineStatus
    tag: str | None = None  # the tag the outcome is about
    branch: str | None = None
    pushed: bool = False  # False: the branch already held this commit
    pr: int | None = None
    issue: int | None = None
    closed: tuple[int, ...] = ()
    actions: tuple[str, ...] = ()  # one line each, for people
    detail: str = ""
