"""Markdown pieces every renderer shares."""

from __future__ import annotations

from collections.abc import Iterable


def fence(lines: Iterable[str], lang: str = "") -> list[str]:
    """``lines`` in a code fence longer than any backtick run inside, so nothing breaks out."""
    body = list(lines)
    joined = "\n".join(body)
    ticks = "```"
    while ticks in joined:
        ticks += "`"
    return [f"{ticks}{lang}", *body, ticks]
