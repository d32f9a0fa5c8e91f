"""Everything the bot says to or asks of GitHub. The only module that imports PyGithub.

Two ways to authenticate:

* GitHub App (``PATCHBOT_GITHUB_APP_ID`` + ``PATCHBOT_GITHUB_APP_PRIVATE_KEY`` or
  ``..._FILE``): a JWT signed with the App key buys an installation token for
  the repository's installation; PyGithub refreshes it before it expires.
  Results go to a check run (queued → in_progress → completed).
* Plain token (``PATCHBOT_GITHUB_TOKEN`` or ``..._FILE``): results go to one
  commit status per variant, since check runs need an App.

Both keep one sticky PR comment (found by a hidden marker *and* our own login,
so a copied marker in someone else's comment is never edited) up to date.

Every call goes through `GitHubClient._call`, which retries server errors and
rate limits (``Retry-After``, ``x-ratelimit-reset``) a bounded number of times
with a bounded wait, and turns what is left into `ReportError`. PyGithub's own
retry is off: it would resend a POST whose answer was lost, and a second
sticky comment is exactly what must not happen.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from github import Auth, Github, GithubException, GithubIntegration
from github.Repository import Repository

from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.jobs import Job, JobOutcome
from ukl_patchbot.core.secrets import read_secret
from ukl_patchbot.github.publish import (
    MARKER,
    check_name,
    check_run_plan,
    comment_body,
    status_description,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_API_URL = "https://api.github.com"
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


class ReportError(InfraError):
    """GitHub could not be reached or refused, after the retries."""


@dataclass(frozen=True)
class Credentials:
    """How to authenticate. Secret fields are left out of ``repr`` so they never reach a log."""

    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    app_id: int | None = None
    private_key: str | None = field(default=None, repr=False)

    @property
    def is_app(self) -> bool:
        return self.app_id is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        api_url = (env.get("PATCHBOT_GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        app_id = env.get("PATCHBOT_GITHUB_APP_ID")
        if app_id:
            key = read_secret("PATCHBOT_GITHUB_APP_PRIVATE_KEY", env)
            if not key or not app_id.isdigit():
                raise UserError(
                    "GitHub App auth needs a numeric PATCHBOT_GITHUB_APP_ID and a private key",
                    hint="set PATCHBOT_GITHUB_APP_PRIVATE_KEY_FILE to the App's .pem file",
                )
            return cls(api_url=api_url, app_id=int(app_id), private_key=key)
        token = read_secret("PATCHBOT_GITHUB_TOKEN", env)
        if not token:
            raise UserError(
                "no GitHub credentials",
                hint="set PATCHBOT_GITHUB_APP_ID and PATCHBOT_GITHUB_APP_PRIVATE_KEY_FILE (App), or"
                " PATCHBOT_GITHUB_TOKEN / PATCHBOT_GITHUB_TOKEN_FILE (token)",
            )
        return cls(api_url=api_url, token=token)


@dataclass(frozen=True)
class Thread:
    """An open issue or pull request of ours, found again by a hidden marker in its body."""

    number: int
    title: str
    body: str
    url: str
    head: str | None = None  # the pull request's head branch; None for an issue


# Listing stops here: the weekly job's threads are recent, a busy repo's backlog is not.
MAX_LISTED = 1000


@dataclass(frozen=True)
class TreeLimits:
    """Bounds on what `GitHubClient.read_tree_files` downloads from an untrusted commit."""

    max_files: int = 400
    max_file_bytes: int = 2 * 1024 * 1024
    max_total_bytes: int = 16 * 1024 * 1024


# Git tree entry modes: regular and executable files are read; a symlink (120000) or a
# submodule (160000) could point anywhere, so meeting one on the way is refused.
_FILE_MODES = frozenset({"100644", "100755"})
_DIR_MODE = "040000"


def _git_blob_sha(data: bytes) -> str:
    """The git object id of a blob holding ``data`` (to check a download against the tree)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _bind(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """``fn`` with ``args`` fixed now (a lambda in a loop would see the loop's last values)."""
    return lambda: fn(*args)


def retry_wait(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``exc``; None when retrying cannot help."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return min(2.0**attempt, 30.0)
    if not isinstance(exc, GithubException):
        return None
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    if exc.status in (403, 429):
        if "retry-after" in headers:
            try:
                return max(0.0, float(headers["retry-after"]))
            except ValueError:
                return 60.0
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            try:
                return max(0.0, float(headers["x-ratelimit-reset"]) - time.time()) + 1.0
            except ValueError:
                return 60.0
        return min(2.0**attempt, 30.0) if exc.status == 429 else None  # plain 403: forbidden
    if exc.status >= 500:
        return min(2.0**attempt, 30.0)
    return None


class GitHubClient:
    """The bot's GitHub side: lookups for the worker, and publishing a `JobOutcome`."""

    def __init__(
        self,
        creds: Credentials,
        *,
        attempts: int = 5,
        max_wait: float = 300.0,
        timeout: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        pace: bool = True,
    ) -> None:
        """``pace=False`` drops PyGithub's spacing of requests (GitHub asks for ~1 s between
        writes to avoid secondary rate limits; a local fake server does not need it)."""
        self.creds = creds
        self._pacing: dict[str, Any] = (
            {} if pace else {"seconds_between_requests": None, "seconds_between_writes": None}
        )
        self.attempts = attempts
        self.max_wait = max_wait
        self.timeout = timeout
        self._sleep = sleep
        self._token_gh: Github | None = None
        self._integration: GithubIntegration | None = None
        self._installations: dict[str, Github] = {}
        self._login: str | None = None

    # -- plumbing -----------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one logical API operation), retrying what a retry can fix."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except (GithubException, requests.RequestException) as exc:
                wait = retry_wait(exc, attempt)
                status = getattr(exc, "status", type(exc).__name__)
                if wait is None or attempt == self.attempts:
                    raise ReportError(f"GitHub: {what} failed ({status})") from exc
                if wait > self.max_wait:
                    raise ReportError(
                        f"GitHub: {what} rate limited for {wait:.0f}s"
                        f" (more than {self.max_wait:.0f}s)"
                    ) from exc
                log.warning(
                    "GitHub: %s failed (%s), retry %d/%d in %.1fs",
                    what,
                    status,
                    attempt,
                    self.attempts - 1,
                    wait,
                )
                self._sleep(wait)
        raise AssertionError("unreachable")

    def _gh(self, repo: str) -> Github:
        if not self.creds.is_app:
            if self._token_gh is None:
                self._token_gh = Github(
                    auth=Auth.Token(self.creds.token or ""),
                    base_url=self.creds.api_url,
                    timeout=self.timeout,
                    retry=None,
                    per_page=100,
                    lazy=True,
                    **self._pacing,
                )
            return self._token_gh
        if repo not in self._installations:
            if self._integration is None:
                auth = Auth.AppAuth(self.creds.app_id or 0, self.creds.private_key or "")
                self._integration = GithubIntegration(
                    auth=auth,
                    base_url=self.creds.api_url,
                    timeout=self.timeout,
                    retry=None,
                    **self._pacing,
                )
            owner, name = repo.split("/", 1)
            integ = self._integration
            inst = self._call(
                f"find the App installation for {repo}",
                lambda: integ.get_repo_installation(owner, name),
            )
            self._installations[repo] = integ.get_github_for_installation(inst.id).withLazy(True)
        return self._installations[repo]

    def _repo(self, repo: str) -> Repository:
        return self._gh(repo).get_repo(repo)

    # -- lookups for the worker ----------------------------------------------
    def bot_login(self, repo: str) -> str:
        """The login our comments carry (``<slug>[bot]`` for an App)."""
        if self._login is None:
            if self.creds.is_app:
                self._gh(repo)
                integ = self._integration
                assert integ is not None
                slug = self._call("read the App", lambda: integ.get_app().slug)
                self._login = f"{slug}[bot]"
            else:
                gh = self._gh(repo)
                self._login = self._call("read the token's user", lambda: gh.get_user().login)
        return self._login

    def permission(self, repo: str, user: str) -> str:
        """``user``'s permission on ``repo`` (admin, maintain, write, triage, read or none)."""
        r = self._repo(repo)

        def ask() -> str:
            try:
                return r.get_collaborator_permission(user)
            except GithubException as exc:
                if exc.status == 404:  # not a collaborator at all
                    return "none"
                raise

        return self._call(f"look up {user}'s permission on {repo}", ask)

    def may_command(self, repo: str, user: str) -> bool:
        return self.permission(repo, user) in WRITE_PERMISSIONS

    def pr_head(self, repo: str, pr: int) -> str:
        r = self._repo(repo)
        return self._call(f"read {repo}#{pr}", lambda: r.get_pull(pr).head.sha)

    def pr_files(self, repo: str, pr: int) -> list[str]:
        """Paths the pull request changes (GitHub lists at most 3000)."""
        r = self._repo(repo)
        return self._call(
            f"list files of {repo}#{pr}", lambda: [f.filename for f in r.get_pull(pr).get_files()]
        )

    def read_tree_files(
        self, repo: str, sha: str, prefixes: tuple[str, ...], limits: TreeLimits = TreeLimits()
    ) -> dict[str, bytes]:
        """The files under ``prefixes`` (e.g. ``"kconfigs/"``) of commit ``sha``: path → bytes.

        One recursive tree listing, then one blob per distinct file. The commit is
        untrusted: a symlink or submodule under (or in place of) a prefix, a listing
        GitHub truncated, or more files or bytes than ``limits`` allow is a `UserError`
        naming the path; nothing is downloaded past a limit.
        """
        r = self._repo(repo)
        tree = self._call(
            f"list the tree of {repo}@{sha[:12]}", lambda: r.get_git_tree(sha, recursive=True)
        )
        if tree.truncated:
            raise UserError(
                f"{repo}@{sha[:12]}: GitHub truncated the tree listing (too many files)"
            )
        wanted: list[tuple[str, str, int]] = []
        total = 0
        for e in tree.tree:
            path = e.path
            # An entry in place of a prefix's directory (e.g. ``patchsets`` as a symlink) counts too.
            under = any(path.startswith(p) for p in prefixes)
            above = any(p.startswith(path + "/") for p in prefixes)
            if not (under or above) or (e.type == "tree" and e.mode == _DIR_MODE):
                continue
            if e.type != "blob" or e.mode not in _FILE_MODES or not under:
                what = {"120000": "a symlink", "160000": "a submodule"}.get(e.mode)
                what = what or (f"mode {e.mode}" if under else "a file in place of a directory")
                raise UserError(f"{path}: {what} is not allowed here; only plain files are read")
            size = int(e.size or 0)
            if size > limits.max_file_bytes:
                raise UserError(f"{path}: {size} bytes, more than {limits.max_file_bytes} allowed")
            total += size
            wanted.append((path, e.sha, size))
            if len(wanted) > limits.max_files:
                raise UserError(
                    f"{path}: more than {limits.max_files} files under {', '.join(prefixes)}"
                )
            if total > limits.max_total_bytes:
                raise UserError(
                    f"{path}: the files under {', '.join(prefixes)} exceed"
                    f" {limits.max_total_bytes} bytes in total"
                )
        blobs: dict[str, bytes] = {}
        out: dict[str, bytes] = {}
        for path, blob_sha, size in wanted:
            if blob_sha not in blobs:
                blob = self._call(
                    f"read {path} of {repo}@{sha[:12]}", _bind(r.get_git_blob, blob_sha)
                )
                data = (
                    base64.b64decode(blob.content)
                    if blob.encoding == "base64"
                    else blob.content.encode()
                )
                if len(data) != size or _git_blob_sha(data) != blob_sha:
                    raise ReportError(
                        f"GitHub: {path} of {repo}@{sha[:12]} does not match its tree entry"
                    )
                blobs[blob_sha] = data
            out[path] = blobs[blob_sha]
        return out

    def reply(self, repo: str, pr: int, body: str) -> None:
        r = self._repo(repo)
        self._call(f"reply on {repo}#{pr}", lambda: r.get_issue(pr).create_comment(body))

    # -- publishing -----------------------------------------------------------
    def start_check(
        self, job: Job, check_run_id: int | None, *, queued: bool = False
    ) -> int | None:
        """Create (or move) the job's check run to queued/in_progress. None without App auth."""
        if not self.creds.is_app or not job.repo or not job.head_sha:
            return None
        r = self._repo(job.repo)
        status = "queued" if queued else "in_progress"
        output: dict[str, Any] = {
            "title": status.replace("_", " "),
            "summary": f"patchbot {job.kind} is {status}",
        }
        if check_run_id is not None:

            def move() -> int:
                run = r.get_check_run(check_run_id)
                run.edit(status=status, output=output)
                return check_run_id

            return self._call(f"mark check run {check_run_id} {status}", move)
        sha = job.head_sha
        run = self._call(
            f"create check run on {sha[:12]}",
            lambda: r.create_check_run(
                name=check_name(job),
                head_sha=sha,
                status=status,
                external_id=job.key,
                started_at=datetime.now(UTC),
                output=output,
            ),
        )
        return int(run.id)

    def publish(
        self, outcome: JobOutcome, check_run_id: int | None, logs_hint: str | None = None
    ) -> list[str]:
        """Report ``outcome``: check run or statuses, then the sticky comment. Returns failures."""
        job = outcome.job
        failures: list[str] = []
        if not job.repo:
            return failures
        steps: list[tuple[str, Callable[[], None]]] = []
        if job.head_sha and self.creds.is_app:
            steps.append(
                ("check run", lambda: self._complete_check(outcome, check_run_id, logs_hint))
            )
        elif job.head_sha:
            steps.append(("commit statuses", lambda: self._statuses(outcome, logs_hint)))
        if job.pr:
            steps.append(
                (
                    "sticky comment",
                    lambda: self.upsert_comment(
                        job.repo or "", job.pr or 0, comment_body(outcome, logs_hint)
                    ),
                )
            )
        for name, step in steps:
            try:
                step()
            except ReportError as exc:
                # Reported, not raised: one failed report must not lose the others or the job.
                log.error("job %s: reporting %s failed: %s", job.key, name, exc)
                failures.append(name)
            except Exception:  # e.g. an answer PyGithub cannot parse: same rule
                log.exception("job %s: reporting %s failed", job.key, name)
                failures.append(name)
        return failures

    def _complete_check(
        self, outcome: JobOutcome, check_run_id: int | None, logs_hint: str | None
    ) -> None:
        job = outcome.job
        r = self._repo(job.repo or "")
        plan = check_run_plan(outcome, logs_hint)
        done = datetime.now(UTC)
        if check_run_id is None:
            run = self._call(
                "create completed check run",
                lambda: r.create_check_run(
                    name=plan.name,
                    head_sha=job.head_sha or "",
                    external_id=job.key,
                    conclusion=plan.conclusion,
                    completed_at=done,
                    output=plan.output,
                ),
            )
            check_run_id = int(run.id)
        else:
            cid = check_run_id
            self._call(
                f"complete check run {cid}",
                lambda: r.get_check_run(cid).edit(
                    conclusion=plan.conclusion, completed_at=done, output=plan.output
                ),
            )
        for i, batch in enumerate(plan.more_annotations, start=2):
            cid = check_run_id
            out = {
                "title": plan.output["title"],
                "summary": plan.output["summary"],
                "annotations": list(batch),
            }
            self._call(
                f"annotations batch {i} on check run {cid}",
                _bind(lambda c, o: r.get_check_run(c).edit(output=o), cid, out),
            )

    def _statuses(self, outcome: JobOutcome, logs_hint: str | None) -> None:
        job = outcome.job
        r = self._repo(job.repo or "")
        sha = job.head_sha or ""
        lines = outcome.statuses
        if not lines:
            from ukl_patchbot.core.jobs import StatusLine

            state = {"success": "success", "failure": "failure", "neutral": "success"}.get(
                str(outcome.conclusion), "error"
            )
            lines = (StatusLine(f"patchbot/{job.component}", state, outcome.title),)
        commit = self._call(f"read commit {sha[:12]}", lambda: r.get_commit(sha))
        target = logs_hint if logs_hint and logs_hint.startswith(("http://", "https://")) else None
        for line in lines:
            kwargs: dict[str, Any] = {
                "state": line.state,
                "description": status_description(line),
                "context": line.context,
            }
            if target:
                kwargs["target_url"] = target
            self._call(
                f"status {line.context} on {sha[:12]}",
                _bind(lambda kw: commit.create_status(**kw), kwargs),
            )

    def upsert_comment(self, repo: str, pr: int, body: str) -> None:
        """Edit our marked comment on ``pr`` in place, or create it once."""
        r = self._repo(repo)
        me = self.bot_login(repo).lower()

        def find() -> Any:
            for c in r.get_issue(pr).get_comments():
                if MARKER in (c.body or "") and c.user is not None and c.user.login.lower() == me:
                    return c
            return None

        def upsert() -> None:
            # Looked up on every try: a POST whose answer was lost may have created it.
            existing = find()
            if existing is not None:
                if existing.body != body:
                    existing.edit(body)
                return
            r.get_issue(pr).create_comment(body)

        self._call(f"update the report comment on {repo}#{pr}", upsert)

    # -- issues and pull requests the weekly job keeps ----------------------------
    def _marked(self, r: Repository, repo: str, marker: str, pulls: bool) -> list[Thread]:
        me = self.bot_login(repo).lower()
        items: Any = r.get_pulls(state="open") if pulls else r.get_issues(state="open")
        found: list[Thread] = []
        for i, it in enumerate(items):
            if i >= MAX_LISTED:
                break
            if not pulls and it.pull_request is not None:
                continue  # the issues list holds pull requests too
            if marker in (it.body or "") and it.user is not None and it.user.login.lower() == me:
                head = it.head.ref if pulls else None
                found.append(Thread(it.number, it.title, it.body or "", it.html_url or "", head))
        return sorted(found, key=lambda th: th.number)

    def find_marked(self, repo: str, marker: str, *, pulls: bool) -> list[Thread]:
        """Our open pull requests (or issues) whose body holds ``marker``, oldest first."""
        r = self._repo(repo)
        kind = "pull requests" if pulls else "issues"
        return self._call(f"list open {kind} of {repo}", lambda: self._marked(r, repo, marker, pulls))

    def open_pull(self, repo: str, *, head: str, base: str, title: str, body: str,
                  marker: str) -> Thread:
        """Open a pull request from branch ``head``, unless ours (with ``marker``) is open."""
        r = self._repo(repo)

        def upsert() -> Thread:
            # Looked up on every try: a POST whose answer was lost may have opened it.
            for th in self._marked(r, repo, marker, True):
                if th.head == head:
                    return th
            pr = r.create_pull(base=base, head=head, title=title, body=body)
            return Thread(pr.number, title, body, pr.html_url or "", head)

        return self._call(f"open a pull request from {head} on {repo}", upsert)

    def closed_pull(self, repo: str, *, head: str, markers: tuple[str, ...]) -> int | None:
        """Our pull request from ``head``, its body holding all ``markers``, closed unmerged."""
        r = self._repo(repo)
        me = self.bot_login(repo).lower()
        owner = repo.split("/", 1)[0]

        def find() -> int | None:
            for i, pr in enumerate(r.get_pulls(state="closed", head=f"{owner}:{head}")):
                if i >= MAX_LISTED:
                    break
                ours = pr.user is not None and pr.user.login.lower() == me
                body = pr.body or ""
                if ours and all(m in body for m in markers) and not pr.merged_at:
                    return int(pr.number)
            return None

        return self._call(f"list closed pull requests from {head} on {repo}", find)

    def open_issue(self, repo: str, *, title: str, body: str, marker: str) -> Thread:
        """Open an issue, unless ours with ``marker`` is open already (then that one)."""
        r = self._repo(repo)

        def upsert() -> Thread:
            found = self._marked(r, repo, marker, False)
            if found:
                return found[0]
            issue = r.create_issue(title=title, body=body)
            return Thread(issue.number, title, body, issue.html_url or "")

        return self._call(f"open an issue on {repo}", upsert)

    def edit_thread(self, repo: str, number: int, *, title: str, body: str) -> None:
        """Set the title and body of issue or pull request ``number``."""
        r = self._repo(repo)
        self._call(f"edit {repo}#{number}",
                   lambda: r.get_issue(number).edit(title=title, body=body))

    def close_thread(self, repo: str, number: int, comment: str, *, pull: bool) -> None:
        """Say why in a comment (once, even when retried), then close ``number``."""
        r = self._repo(repo)
        me = self.bot_login(repo).lower()

        def comment_once() -> None:
            issue = r.get_issue(number)
            for c in issue.get_comments():
                if c.body == comment and c.user is not None and c.user.login.lower() == me:
                    return
            issue.create_comment(comment)

        self._call(f"comment on {repo}#{number}", comment_once)
        if pull:
            self._call(f"close {repo}#{number}", lambda: r.get_issue(number).edit(state="closed"))
        else:
            self._call(f"close {repo}#{number}",
                       lambda: r.get_issue(number).edit(state="closed", state_reason="completed"))
