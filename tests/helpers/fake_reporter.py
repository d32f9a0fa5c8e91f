"""An in-memory fake of the reporting interface the worker and the weekly job use.

`FakeReporter` implements `ukl_patchbot.bot.runtime.Reporter` and
`ukl_patchbot.track.tracker.TrackReporter` with plain dicts, so the bot's logic
is tested without HTTP (bedevere's ``FakeGH`` pattern). It keeps GitHub's rules
that matter to that logic: permissions come from a table (never from an
association), a completed check run is never moved back (a re-run gets a new
run), a workflow token may be refused pull requests, and a publish can be rate
limited. The HTTP fake (`tests.fakes_github`) stays for the client itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ukl_patchbot.core.jobs import Job, JobOutcome
from ukl_patchbot.github.auth import WRITE_PERMISSIONS
from ukl_patchbot.github.publish import Published, check_name
from ukl_patchbot.github.threads import PullRequestsForbidden, Thread


@dataclass
class FakeCheckRun:
    id: int
    name: str
    job_key: str
    head_sha: str
    status: str
    details_url: str | None = None
    conclusion: str | None = None
    history: list[str] = field(default_factory=list)


@dataclass
class FakeThread:
    number: int
    title: str
    body: str
    author: str
    head: str | None = None  # a pull request's branch; None for an issue
    state: str = "open"
    merged: bool = False
    comments: list[str] = field(default_factory=list)


class FakeReporter:
    """GitHub as the bot's logic sees it. ``app=False`` behaves as token auth (no check runs)."""

    def __init__(self, login: str = "ukl-patchbot[bot]", *, app: bool = True) -> None:
        self.login = login
        self.app = app
        self.permissions: dict[tuple[str, str], str] = {}
        self.heads: dict[tuple[str, int], str] = {}
        self.files: dict[tuple[str, int], list[str]] = {}
        self.replies: list[tuple[str, int, str]] = []
        self.check_runs: dict[int, FakeCheckRun] = {}
        self.published: list[tuple[JobOutcome, int | None, str | None]] = []
        self.rate_limits: list[float] = []  # each publish pops one: rate limited for that long
        self.threads: dict[int, FakeThread] = {}
        self.branches_deleted: list[str] = []
        self.pulls_forbidden = False
        self.permission_lookups = 0
        self._ids = 100

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- the worker's interface ------------------------------------------------------
    def bot_login(self, repo: str) -> str:
        return self.login

    def may_command(self, repo: str, user: str) -> bool:
        self.permission_lookups += 1
        return self.permissions.get((repo, user), "none") in WRITE_PERMISSIONS

    def pr_head(self, repo: str, pr: int) -> str:
        return self.heads[(repo, pr)]

    def pr_files(self, repo: str, pr: int) -> list[str]:
        return list(self.files.get((repo, pr), []))

    def reply(self, repo: str, pr: int, body: str) -> None:
        self.replies.append((repo, pr, body))

    def start_check(self, job: Job, check_run_id: int | None, *, queued: bool = False,
                    details_url: str | None = None) -> int | None:
        if not self.app or not job.repo or not job.head_sha:
            return None
        status = "queued" if queued else "in_progress"
        run = self.check_runs.get(check_run_id) if check_run_id is not None else None
        if run is None or run.status == "completed":
            run = FakeCheckRun(self._next_id(), check_name(job), job.key, job.head_sha, status)
            self.check_runs[run.id] = run
        run.status = status
        run.history.append(status)
        run.details_url = details_url or run.details_url
        return run.id

    def publish(self, outcome: JobOutcome, check_run_id: int | None,
                logs_hint: str | None = None) -> Published:
        if self.rate_limits:
            return Published(("sticky comment",), self.rate_limits.pop(0))
        self.published.append((outcome, check_run_id, logs_hint))
        run = self.check_runs.get(check_run_id) if check_run_id is not None else None
        if run is not None:
            run.status, run.conclusion = "completed", str(outcome.conclusion)
            run.history.append("completed")
        return Published()

    # -- the weekly job's interface --------------------------------------------------
    def _thread(self, t: FakeThread) -> Thread:
        return Thread(t.number, t.title, t.body, f"https://github.invalid/{t.number}", t.head)

    def find_marked(self, repo: str, marker: str, *, pulls: bool) -> list[Thread]:
        return [self._thread(t) for t in sorted(self.threads.values(), key=lambda t: t.number)
                if t.state == "open" and (t.head is not None) == pulls and marker in t.body
                and t.author == self.login]

    def open_pull(self, repo: str, *, head: str, base: str, title: str, body: str,
                  marker: str) -> Thread:
        for th in self.find_marked(repo, marker, pulls=True):
            if th.head == head:
                return th
        if self.pulls_forbidden:
            raise PullRequestsForbidden(f"GitHub: {repo} does not let GitHub Actions open"
                                        " pull requests")
        t = FakeThread(self._next_id(), title, body, self.login, head=head)
        self.threads[t.number] = t
        return self._thread(t)

    def closed_pull(self, repo: str, *, head: str, markers: tuple[str, ...]) -> int | None:
        for t in self.threads.values():
            if (t.head == head and t.state == "closed" and not t.merged
                    and t.author == self.login and all(m in t.body for m in markers)):
                return t.number
        return None

    def open_issue(self, repo: str, *, title: str, body: str, marker: str) -> Thread:
        found = self.find_marked(repo, marker, pulls=False)
        if found:
            return found[0]
        t = FakeThread(self._next_id(), title, body, self.login)
        self.threads[t.number] = t
        return self._thread(t)

    def edit_thread(self, repo: str, number: int, *, title: str, body: str) -> None:
        self.threads[number].title, self.threads[number].body = title, body

    def close_thread(self, repo: str, number: int, comment: str, *, pull: bool) -> None:
        t = self.threads[number]
        if comment not in t.comments:
            t.comments.append(comment)
        t.state = "closed"

    def delete_branch(self, repo: str, branch: str) -> None:
        self.branches_deleted.append(branch)

    def branch_url(self, repo: str, branch: str) -> str:
        return f"https://github.invalid/{repo}/compare/{branch}?expand=1"
