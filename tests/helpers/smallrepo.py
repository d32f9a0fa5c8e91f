"""Small synthetic upstream trees for rebase tests: numbered files, one-line edits, commits."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.gitrepo import git


def numbered(name: str, n: int = 40) -> str:
    """``n`` lines "<name> line <i>": a file whose every line is unique context."""
    return "".join(f"{name} line {i}\n" for i in range(1, n + 1))


def edit(text: str, old: str, new: str) -> str:
    """``text`` with the first ``old`` replaced (which must be there)."""
    assert old in text, old
    return text.replace(old, new, 1)


BASE = {"a.c": numbered("a"), "b.c": numbered("b"), "c.c": numbered("c"), "d.c": numbered("d")}


def commit_files(repo: Path, files: dict[str, str], msg: str, tag: str | None = None) -> None:
    """Write ``files`` into ``repo``, commit them, and tag the commit if ``tag``."""
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)
    if tag:
        git(repo, "tag", "-a", tag, "-m", tag)
