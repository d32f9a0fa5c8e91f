"""The bot in one process: a real SQLite queue and ledger, the real worker, the fake GitHub,
and a recording fake executor in place of the pipeline (for the queue, worker and trust tests).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers.fakes_github import APP_ID, PAT, FakeGitHub
from ukl_patchbot.bot.jobqueue import JobQueue, Submitted
from ukl_patchbot.bot.routing import Command, Trigger
from ukl_patchbot.bot.runtime import WorkerSettings
from ukl_patchbot.bot.worker import BotWorker
from ukl_patchbot.core import config
from ukl_patchbot.core.jobs import Conclusion, Job, JobOutcome
from ukl_patchbot.github.client import Credentials, GitHubClient

REPO = "ukl/patches"
SHA = "c0ffee" * 6 + "abcd"


class Recorder:
    """A fake executor: records the jobs it ran and answers success (or what it is told)."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.behaviour: Callable[[Job], JobOutcome] | None = None

    def __call__(self, job: Job, cfg: config.Config) -> JobOutcome:
        self.jobs.append(job)
        if self.behaviour is not None:
            return self.behaviour(job)
        return JobOutcome(job, Conclusion.SUCCESS, f"{job.kind} {job.component} ok", "all fine")


class Bot:
    """A queue, the worker and the fake GitHub wired together: ``send`` submits a trigger
    (a pull_request by alice on PR 7 unless told), ``drain`` runs what is queued."""

    def __init__(self, tmp: Path, fake: FakeGitHub, mode: str = "app") -> None:
        (tmp / "patchbot.toml").write_text("")
        self.cfg = config.load(tmp / "patchbot.toml")
        self.queue = JobQueue(f"sqlite:///{tmp / 'queue.sqlite3'}")
        creds = (
            Credentials(api_url=fake.url, app_id=APP_ID, private_key=fake.private_key_pem)
            if mode == "app"
            else Credentials(api_url=fake.url, token=PAT)
        )
        self.gh = GitHubClient(creds, pace=False)
        self.gh._sleep = lambda s: None
        self.run = Recorder()
        self.settings = WorkerSettings(
            lease=5, max_attempts=3, lock_retry_delay=0.05, retry_delay=0.05
        )
        self.worker = BotWorker(
            self.queue, self.cfg, self.gh, self.run, self.settings, owner="test-worker"
        )
        self.fake = fake
        self.n = 0

    def send(self, **kw: object) -> Submitted:
        self.n += 1
        fields: dict[str, object] = {
            "delivery_id": f"d{self.n}",
            "event": "pull_request",
            "repo": REPO,
            "command": Command.CHECK,
            "actor": "alice",
            "pr": 7,
            "head_sha": SHA,
        }
        fields.update(kw)
        return self.queue.submit_trigger(Trigger(**fields))  # type: ignore[arg-type]

    def drain(self) -> int:
        return self.queue.drain(timeout=30)

    @property
    def comments(self) -> list[dict[str, object]]:
        return list(self.fake.repo(REPO).comments.values())
