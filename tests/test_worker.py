"""The worker's logic against the in-memory reporter (no HTTP): permissions, re-runs,
rate-limited reports, check run links. The HTTP client has its own tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fake_reporter import FakeReporter
from ukl_patchbot.bot.jobqueue import JobQueue, Submitted
from ukl_patchbot.bot.ledger import JobState
from ukl_patchbot.bot.routing import Command, Trigger, route
from ukl_patchbot.bot.worker import BotWorker, WorkerSettings
from ukl_patchbot.core import config
from ukl_patchbot.core.jobs import Conclusion, Job, JobOutcome

REPO = "ukl/patches"
SHA = "c0ffee" * 6 + "abcd"
LOGS = "https://logs.example.org/patchbot"


class Bot:
    def __init__(self, tmp: Path, **settings: Any) -> None:
        (tmp / "patchbot.toml").write_text("")
        self.cfg = config.load(tmp / "patchbot.toml")
        self.queue = JobQueue(f"sqlite:///{tmp / 'queue.sqlite3'}")
        self.gh = FakeReporter()
        self.gh.heads[(REPO, 7)] = SHA
        self.gh.files[(REPO, 7)] = ["patchsets/linux/0001-ukl-kconfig.patch"]
        self.ran: list[Job] = []
        opts = {"lease": 5, "max_attempts": 3, "lock_retry_delay": 0.05, "retry_delay": 0.05,
                **settings}
        self.worker = BotWorker(self.queue, self.cfg, self.gh, self.execute,
                                WorkerSettings(**opts), owner="test-worker")

    def execute(self, job: Job, cfg: config.Config) -> JobOutcome:
        self.ran.append(job)
        return JobOutcome(job, Conclusion.SUCCESS, f"{job.component} ok", "all fine")

    def deliver(self, event: str, payload: dict[str, Any], delivery: str) -> Submitted:
        trigger = route(event, delivery, payload)
        assert isinstance(trigger, Trigger), trigger
        return self.queue.submit_trigger(trigger)

    def pr_opened(self, delivery: str = "d-pr") -> None:
        self.deliver("pull_request", {
            "action": "opened", "repository": {"full_name": REPO},
            "pull_request": {"number": 7, "head": {"sha": SHA}}, "sender": {"login": "alice"},
        }, delivery)
        self.queue.drain(timeout=30)


@pytest.fixture
def bot(tmp_path: Path) -> Bot:
    return Bot(tmp_path, logs_url=LOGS)


def comment(body: str, user: str, association: str) -> dict[str, Any]:
    return {"action": "created", "repository": {"full_name": REPO},
            "issue": {"number": 7, "pull_request": {"url": "x"}},
            "comment": {"body": body, "author_association": association,
                        "user": {"login": user, "type": "User"}}}


def test_a_pr_runs_once_with_its_logs_linked_from_the_check_run(bot: Bot) -> None:
    bot.pr_opened()
    [job] = bot.ran
    [run] = bot.gh.check_runs.values()
    assert run.history == ["queued", "in_progress", "completed"]
    assert run.details_url == f"{LOGS}/{job.key}/"
    [(_outcome, cid, hint)] = bot.gh.published
    assert cid == run.id and hint == f"{LOGS}/{job.key}/"


def test_a_team_writer_shown_as_contributor_may_command(bot: Bot) -> None:
    """author_association is no permission: the API says what the commenter may do."""
    bot.gh.permissions[(REPO, "teamdev")] = "write"
    bot.deliver("issue_comment", comment("/patchbot check", "teamdev", "CONTRIBUTOR"), "c1")
    bot.queue.drain(timeout=30)
    assert [(j.pr, j.requested_by) for j in bot.ran] == [(7, "teamdev")]
    assert bot.gh.replies == [] and bot.gh.permission_lookups == 1


def test_a_reader_is_refused_politely(bot: Bot) -> None:
    bot.gh.permissions[(REPO, "rita")] = "read"
    bot.deliver("issue_comment", comment("/patchbot check", "rita", "MEMBER"), "c2")
    bot.queue.drain(timeout=30)
    assert bot.ran == []
    [(_, pr, text)] = bot.gh.replies
    assert pr == 7 and "@rita" in text and "write access" in text


def test_a_rate_limited_report_is_published_later_not_recorded_failed(bot: Bot) -> None:
    bot.gh.rate_limits = [0.05, 0.05]
    bot.pr_opened()
    [job] = bot.ran  # the job ran once; only its report waited
    assert len(bot.gh.published) == 1
    rec = bot.queue.ledger.get(job.key)
    assert rec is not None and rec.state == JobState.DONE
    assert rec.meta["report_failures"] == [] and not rec.meta.get("pending_report")
    [run] = bot.gh.check_runs.values()
    assert run.status == "completed"


def test_a_report_rate_limited_too_often_is_given_up(tmp_path: Path) -> None:
    bot = Bot(tmp_path, max_report_tries=2)
    bot.gh.rate_limits = [0.05] * 5
    bot.pr_opened()
    [job] = bot.ran
    rec = bot.queue.ledger.get(job.key)
    assert rec is not None and rec.state == JobState.DONE
    assert rec.meta["report_failures"] == ["sticky comment"]
    assert bot.gh.rate_limits == [0.05] * 3  # tried twice, then recorded as failed


def test_the_check_run_rerun_button_runs_the_job_again(bot: Bot) -> None:
    bot.pr_opened()
    [job] = bot.ran
    [first] = bot.gh.check_runs.values()
    payload = {"action": "rerequested", "repository": {"full_name": REPO},
               "sender": {"login": "alice"},
               "check_run": {"id": first.id, "external_id": job.key, "head_sha": SHA}}
    assert bot.deliver("check_run", payload, "rr-1") == Submitted.QUEUED
    bot.queue.drain(timeout=30)
    assert [j.key for j in bot.ran] == [job.key, job.key]
    first_run, second_run = sorted(bot.gh.check_runs.values(), key=lambda r: r.id)
    assert first_run.history == ["queued", "in_progress", "completed"]  # never moved back
    assert second_run.history == ["queued", "in_progress", "completed"]


def test_the_check_suite_rerun_button_checks_the_pr_again(bot: Bot) -> None:
    bot.pr_opened()
    payload = {"action": "rerequested", "repository": {"full_name": REPO},
               "sender": {"login": "alice"},
               "check_suite": {"head_sha": SHA, "pull_requests": [{"number": 7}]}}
    bot.deliver("check_suite", payload, "rr-2")
    bot.queue.drain(timeout=30)
    assert len(bot.ran) == 2 and bot.ran[0].key == bot.ran[1].key


def test_a_rerun_naming_another_repositorys_job_is_ignored(bot: Bot) -> None:
    bot.pr_opened()
    [job] = bot.ran
    payload = {"action": "rerequested", "repository": {"full_name": "evil/fork"},
               "sender": {"login": "mallory"},
               "check_run": {"id": 1, "external_id": job.key, "head_sha": SHA}}
    bot.deliver("check_run", payload, "rr-3")
    bot.queue.drain(timeout=30)
    assert len(bot.ran) == 1


def test_route_turns_rerun_buttons_into_rerun_triggers() -> None:
    run = route("check_run", "d1", {
        "action": "rerequested", "repository": {"full_name": REPO},
        "check_run": {"external_id": "abc", "head_sha": SHA}, "sender": {"login": "a"}})
    assert isinstance(run, Trigger) and (run.command, run.job_key) == (Command.RERUN, "abc")
    assert run.dedup_key is None  # every click counts, not just the first
    suite = route("check_suite", "d2", {
        "action": "rerequested", "repository": {"full_name": REPO},
        "check_suite": {"head_sha": SHA, "pull_requests": []}, "sender": {"login": "a"}})
    assert isinstance(suite, Trigger) and (suite.pr, suite.head_sha) == (None, SHA)
    completed = route("check_run", "d3", {
        "action": "completed", "repository": {"full_name": REPO},
        "check_run": {"external_id": "abc", "head_sha": SHA}})
    assert not isinstance(completed, Trigger)
