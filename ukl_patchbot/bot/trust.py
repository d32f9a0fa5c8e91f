"""Whom the bot serves: our repositories, and who may have a pull request built.

The operator names the repositories in ``patchbot.toml``::

    [bot]
    repositories = ["ukl-project/ukl-patchbot"]
    sandbox = "bwrap"      # or "none": build pull requests unconfined (not in public)

or in ``PATCHBOT_REPOSITORIES`` (comma or space separated; it replaces the
file's list). No repository configured means every event is refused.

A pull request is built on its own only when its author may write to the
repository (GitHub's collaborator permission: admin, maintain or write).
Anyone else's head commit waits until a maintainer comments
``/patchbot check`` (or ``retry``), which approves that one head sha; a new
push needs a new approval. This is the model of Prow's ``ok-to-test`` and of
GitHub Actions' approval for outside contributors.
"""

from __future__ import annotations

import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.core.config import CONFIG_NAME, find_root
from ukl_patchbot.core.errors import UserError

SANDBOXES = ("bwrap", "none")
_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


def valid_repo(name: object) -> bool:
    """``owner/name`` as GitHub spells repositories (no path tricks, no spaces)."""
    return isinstance(name, str) and bool(_REPO.match(name)) and ".." not in name


@dataclass(frozen=True)
class BotPolicy:
    repositories: frozenset[str] = frozenset()  # lower-cased owner/name
    sandbox: str = "bwrap"

    def allows(self, repo: str) -> bool:
        return repo.lower() in self.repositories

    @classmethod
    def load(cls, config_path: Path | None = None,
             env: Mapping[str, str] | None = None) -> BotPolicy:
        """The ``[bot]`` table of the configuration, with ``PATCHBOT_REPOSITORIES`` over it."""
        env = os.environ if env is None else env
        table: dict[str, object] = {}
        path = config_path
        if path is None:
            try:
                path = find_root() / CONFIG_NAME
            except UserError:
                path = None
        if path is not None and path.is_file():
            try:
                raw = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise UserError(f"{path}: invalid TOML: {exc}") from None
            bot = raw.get("bot", {})
            if not isinstance(bot, dict):
                raise UserError(f"{path}: [bot] must be a table")
            table = bot
        repos = table.get("repositories", [])
        where = f"{path}: [bot] repositories"
        if env.get("PATCHBOT_REPOSITORIES") is not None:
            repos = [r for r in re.split(r"[\s,]+", env["PATCHBOT_REPOSITORIES"]) if r]
            where = "PATCHBOT_REPOSITORIES"
        if not isinstance(repos, list):
            raise UserError(f"{where} must be a list of \"owner/name\" strings")
        for r in repos:
            if not valid_repo(r):
                raise UserError(f"{where}: {r!r} is not a repository name",
                                hint="write repositories as \"owner/name\"")
        sandbox = table.get("sandbox", "bwrap")
        if sandbox not in SANDBOXES:
            raise UserError(f"{path}: [bot] sandbox = {sandbox!r}: expected one of {SANDBOXES}")
        return cls(frozenset(str(r).lower() for r in repos), str(sandbox))


class PermissionCache:
    """``may_write(repo, user)`` answers, kept ``ttl`` seconds (a revoked right ends soon)."""

    def __init__(self, ask: Callable[[str, str], bool], ttl: float = 300.0) -> None:
        self._ask, self._ttl = ask, ttl
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[float, bool]] = {}

    def may_write(self, repo: str, user: str) -> bool:
        if not user:
            return False
        key = (repo.lower(), user.lower())
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        answer = bool(self._ask(repo, user))
        with self._lock:
            self._seen[key] = (now, answer)
        return answer
