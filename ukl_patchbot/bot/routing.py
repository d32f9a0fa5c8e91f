"""From a GitHub webhook event to a `Trigger`: pure functions, no I/O.

The webhook only decides *whether* an event may lead to work and records what
it needs (repository, pull request, head sha, command). Everything that needs
the GitHub API (the commenter's real permission, the files a PR touches, a
PR's head sha for a comment) is resolved later by the worker.

Payloads are signed but still data from outside: every field is type-checked
here, and a field of the wrong type makes the event `Ignored`, never an
exception (a property-based test feeds thousands of generated payloads).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ukl_patchbot.bot.trust import valid_repo

# Whether a commenter may command the bot is always asked of the API by the worker:
# ``author_association`` is not a permission (team grants and private org members
# arrive as CONTRIBUTOR), so it filters nothing here.
PR_ACTIONS = frozenset({"opened", "synchronize", "reopened"})
_TAG = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"
_COMMAND = re.compile(
    rf"^ {{0,3}}/patchbot[ \t]+(?:(?P<rebase>rebase)[ \t]+(?P<rtag>{_TAG})"
    rf"|(?P<check>check)(?:[ \t]+(?P<ctag>{_TAG}))?|(?P<retry>retry))[ \t]*\r?$",
)
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
MAX_PR = 10**9


class Command(StrEnum):
    CHECK = "check"
    REBASE = "rebase"
    RETRY = "retry"
    RERUN = "rerun"  # a Re-run button: the job named by the check run, or the suite's head
    DENY = "deny"  # a command from someone who may not give it: reply politely


@dataclass(frozen=True)
class Trigger:
    """What the webhook hands to the queue."""

    delivery_id: str
    event: str
    repo: str
    command: Command
    actor: str
    pr: int | None = None
    head_sha: str | None = None
    tag: str | None = None
    installation_id: int | None = None
    changed_paths: tuple[str, ...] | None = None  # push: paths the commits touch (if listed)
    comment: str | None = None  # the command line as written, for replies ("rebase v6.1.192")
    job_key: str | None = None  # check_run rerequested: the job its external_id names
    author: str | None = None  # pull_request: the PR's author, whose permission decides trust

    @property
    def dedup_key(self) -> str | None:
        """The job identity when the webhook already knows it (repo, PR, head sha, command)."""
        if not self.head_sha or self.command in (Command.DENY, Command.RERUN):
            return None
        ident = [self.repo, str(self.pr or ""), self.head_sha, self.command, self.tag or ""]
        return hashlib.sha256("\0".join(ident).encode()).hexdigest()[:24]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["changed_paths"] = list(self.changed_paths) if self.changed_paths is not None else None
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trigger:
        data = dict(data)
        data["command"] = Command(data["command"])
        if data.get("changed_paths") is not None:
            data["changed_paths"] = tuple(data["changed_paths"])
        return cls(**data)


@dataclass(frozen=True)
class Ignored:
    """The event needs no work; ``reason`` goes into the log and the response."""

    reason: str


@dataclass(frozen=True)
class Pong:
    zen: str


def parse_command(body: str) -> tuple[Command, str | None] | None:
    """The first ``/patchbot ...`` line in a comment, or None.

    Only whole lines count, and not lines inside a fenced or indented code block
    or a quote (someone quoting a command, or showing how to use it, gives none).
    """
    fence: str | None = None
    for line in (body or "").split("\n")[:500]:
        f = _FENCE.match(line)
        if f:
            fence = None if fence == f.group(1) else (fence or f.group(1))
            continue
        if fence or line.lstrip(" ").startswith(">"):
            continue
        m = _COMMAND.match(line)
        if m:
            return _command_of(m)
    return None


def _command_of(m: re.Match[str]) -> tuple[Command, str | None]:
    if m.group("rebase"):
        return Command.REBASE, m.group("rtag")
    if m.group("check"):
        return Command.CHECK, m.group("ctag")
    return Command.RETRY, None


def route(
    event: str, delivery_id: str, payload: dict[str, Any], *, bot_login: str | None = None
) -> Trigger | Ignored | Pong:
    """Decide what one webhook delivery asks for."""
    if event == "ping":
        return Pong(str(payload.get("zen", "")))
    repo = _get(payload, "repository", "full_name")
    if not valid_repo(repo):
        return Ignored(f"{event}: no valid repository in payload")
    inst = _get(payload, "installation", "id")
    installation_id = inst if _positive(inst, 2**63) else None
    if event == "pull_request":
        return _route_pull_request(delivery_id, repo, installation_id, payload)
    if event == "issue_comment":
        return _route_comment(delivery_id, repo, installation_id, payload, bot_login)
    if event == "push":
        return _route_push(delivery_id, repo, installation_id, payload)
    if event in ("check_run", "check_suite"):
        return _route_rerun(event, delivery_id, repo, installation_id, payload)
    return Ignored(f"event {event!r} is not handled")


def _route_pull_request(
    delivery_id: str, repo: str, inst: int | None, payload: dict[str, Any]
) -> Trigger | Ignored:
    action = payload.get("action")
    if not isinstance(action, str) or action not in PR_ACTIONS:
        return Ignored(f"pull_request action {str(action)[:40]!r} needs no check")
    number = _get(payload, "pull_request", "number")
    sha = _get(payload, "pull_request", "head", "sha")
    if not _positive(number) or not isinstance(sha, str) or not _SHA.match(sha):
        return Ignored("pull_request without a valid number or head sha")
    return Trigger(
        delivery_id,
        "pull_request",
        repo,
        Command.CHECK,
        actor=_login(_get(payload, "sender", "login")),
        pr=number,
        head_sha=sha,
        installation_id=inst,
        author=_login(_get(payload, "pull_request", "user", "login")) or None,
    )


def _route_comment(
    delivery_id: str, repo: str, inst: int | None, payload: dict[str, Any], bot_login: str | None
) -> Trigger | Ignored:
    if payload.get("action") != "created":
        return Ignored(f"issue_comment action {str(payload.get('action'))[:40]!r} does not trigger")
    if not _get(payload, "issue", "pull_request"):
        return Ignored("comment on an issue, not a pull request")
    user = _get(payload, "comment", "user")
    if not isinstance(user, dict):
        return Ignored("comment without a user")
    login = _login(user.get("login"))
    if not login:
        return Ignored("comment without a valid user login")
    if user.get("type") == "Bot" or login.endswith("[bot]"):
        return Ignored(f"comment by bot {login!r}")
    if bot_login and login.lower() == bot_login.lower():
        return Ignored("comment by this bot")
    body = _get(payload, "comment", "body")
    if not isinstance(body, str):
        return Ignored("comment without a text body")
    parsed = parse_command(body[:65536])
    if parsed is None:
        return Ignored("comment has no /patchbot command")
    command, tag = parsed
    written = f"{command} {tag}" if tag else str(command)
    number = _get(payload, "issue", "number")
    if not _positive(number):
        return Ignored("comment without a valid issue number")
    return Trigger(
        delivery_id,
        "issue_comment",
        repo,
        command,
        actor=login,
        pr=number,
        tag=tag,
        installation_id=inst,
        comment=written,
    )


def _route_rerun(
    event: str, delivery_id: str, repo: str, inst: int | None, payload: dict[str, Any]
) -> Trigger | Ignored:
    """A Re-run button: ``check_run``/``check_suite`` ``rerequested`` (only GitHub's users
    with write access see the button, and only the App that made the run is told)."""
    action = payload.get("action")
    if action != "rerequested":
        return Ignored(f"{event} action {action!r} needs no work")
    sha = _get(payload, event, "head_sha")
    if not isinstance(sha, str):
        return Ignored(f"{event} without head sha")
    actor = str(_get(payload, "sender", "login") or "")
    if event == "check_run":
        key = _get(payload, "check_run", "external_id")
        if not isinstance(key, str) or not key:
            return Ignored("check_run without external_id: not one of ours")
        return Trigger(delivery_id, event, repo, Command.RERUN, actor=actor, head_sha=sha,
                       installation_id=inst, job_key=key)
    prs = _get(payload, "check_suite", "pull_requests") or []
    numbers = [p.get("number") for p in prs if isinstance(p, dict)]
    pr = next((n for n in numbers if isinstance(n, int)), None)
    return Trigger(delivery_id, event, repo, Command.RERUN, actor=actor, pr=pr, head_sha=sha,
                   installation_id=inst)


def _route_push(
    delivery_id: str, repo: str, inst: int | None, payload: dict[str, Any]
) -> Trigger | Ignored:
    default = _get(payload, "repository", "default_branch")
    ref = payload.get("ref")
    if not isinstance(default, str) or not default or ref != f"refs/heads/{default}":
        return Ignored(f"push to {str(ref)[:200]!r}, not the default branch")
    after = payload.get("after")
    if payload.get("deleted") is True or not isinstance(after, str) or set(after) == {"0"}:
        return Ignored("push deleted the branch")
    if not _SHA.match(after):
        return Ignored("push without a valid head sha")
    paths: set[str] = set()
    commits = payload.get("commits")
    listed = isinstance(commits, list) and len(commits) < 20  # GitHub truncates long lists
    if isinstance(commits, list) and listed:
        for c in commits:
            for k in ("added", "modified", "removed"):
                listed_paths = c.get(k) if isinstance(c, dict) else None
                if isinstance(listed_paths, list):
                    paths.update(p for p in listed_paths if isinstance(p, str) and len(p) < 4096)
    return Trigger(
        delivery_id,
        "push",
        repo,
        Command.CHECK,
        actor=_login(_get(payload, "sender", "login")),
        head_sha=after,
        installation_id=inst,
        changed_paths=tuple(sorted(paths)) if listed else None,
    )


def _positive(value: Any, limit: int = MAX_PR) -> bool:
    """A positive integer (``True`` is an int in Python, and no PR number)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < limit


_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")


def _login(value: Any) -> str:
    """A GitHub login, or "" for anything else."""
    return value if isinstance(value, str) and _LOGIN.match(value) else ""


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d
