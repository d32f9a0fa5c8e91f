"""The worker's logic against the in-memory reporter (no HTTP): permissions, re-runs,
rate-limited reports, check run links. The HTTP client has its own tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fake_reporter import FakeReporter
from ukl_patchbot.bot.jobqueue import JobQueue, Submitted
from ukl_patchbot.bot.ledger import JobState
from ukl_patchbot.bot.routing import Command, Trigger, route
from ukl_patchbot.bot.runtime import WorkerSettings
from ukl_patchbot.bot.triggers import components_touched
from ukl_patchbot.bot.worker import BotWorker
from ukl_patchbot.core import config
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind, JobOutcome

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
        self.gh.files[(REPO, 7)] = ["patchsets/linux/6.1/0001-ukl-kconfig.patch"]
        self.ran: list[Job] = []
        self.behaviour: Callable[[Job], JobOutcome] | None = None
        self.n = 0
        self.gh.permissions[(REPO, "alice")] = "maintain"
        opts = {"lease": 5, "max_attempts": 3, "lock_retry_delay": 0.05, "retry_delay": 0.05,
                **settings}
        self.worker = BotWorker(self.queue, self.cfg, self.gh, self.execute,
                                WorkerSettings(**opts), owner="test-worker")

    def execute(self, job: Job, cfg: config.Config) -> JobOutcome:
        self.ran.append(job)
        if self.behaviour is not None:
            return self.behaviour(job)
        return JobOutcome(job, Conclusion.SUCCESS, f"{job.component} ok", "all fine")

    def send(self, **kw: object) -> Submitted:
        """A trigger as the webhook parks it (default: a PR event from alice)."""
        self.n += 1
        fields: dict[str, object] = {"delivery_id": f"d{self.n}", "event": "pull_request",
                                     "repo": REPO, "command": Command.CHECK, "actor": "alice",
                                     "pr": 7, "head_sha": SHA, **kw}
        return self.queue.submit_trigger(Trigger(**fields))  # type: ignore[arg-type]

    def drain(self) -> int:
        return self.queue.drain(timeout=30)

    @property
    def reports(self) -> list[JobOutcome]:
        return [o for o, _cid, _hint in self.gh.published]

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


# -- the worker's logic, moved here from the HTTP-faked tests -------------------------
def test_pr_touching_no_series_runs_nothing(bot: Bot) -> None:
    bot.gh.files[(REPO, 7)] = ["README.md", "ukl_patchbot/cli.py"]
    bot.send()
    bot.drain()
    assert bot.ran == [] and bot.gh.check_runs == {}


def test_patch_paths_escaping_the_tree_are_ignored(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot.gh.files[(REPO, 7)] = [
        "patchsets/linux/../../../etc/passwd",
        "patchsets/../kconfigs/../../x",
        "/patchsets/linux/abs.patch",
        "patchsets/linux\\..\\..\\win.patch",
        "kconfigs/./ukl.config",
    ]
    bot.send()
    bot.drain()
    assert bot.ran == []
    assert caplog.text.count("ignoring unsafe path") == 5
    assert components_touched(
        bot.cfg, ["patchsets/glibc/0001-x.patch", "../patchsets/linux/x"]
    ) == ["glibc"]


@pytest.mark.parametrize(
    "command,tag,expect",
    [
        (Command.REBASE, "v6.1.192", (JobKind.REBASE, "linux", "v6.1.192")),
        (Command.CHECK, "glibc-2.36", (JobKind.CHECK, "glibc", "glibc-2.36")),
        (Command.CHECK, None, (JobKind.CHECK, "linux", None)),
    ],
)
def test_maintainer_commands(
    bot: Bot, command: Command, tag: str | None, expect: tuple[JobKind, str, str | None]
) -> None:
    bot.send(event="issue_comment", command=command, tag=tag, head_sha=None)
    bot.drain()
    assert [(j.kind, j.component, j.tag) for j in bot.ran] == [expect]
    assert bot.ran[0].head_sha == SHA and bot.ran[0].requested_by == "alice"


def test_retry_runs_the_last_job_again(bot: Bot) -> None:
    bot.send()
    bot.drain()
    bot.send(event="issue_comment", command=Command.RETRY, head_sha=None)
    bot.drain()
    assert len(bot.ran) == 2 and bot.ran[0].key == bot.ran[1].key
    assert [o.job.key for o in bot.reports] == [bot.ran[0].key] * 2


def test_same_job_from_two_triggers_runs_once(bot: Bot) -> None:
    bot.send(event="pull_request")
    bot.send(event="issue_comment", command=Command.CHECK, head_sha=None)  # same PR head
    bot.drain()
    assert len(bot.ran) == 1


@pytest.mark.parametrize("holder", ["another-worker", "same-worker"])
def test_series_lock_holds_a_second_job_back(bot: Bot, holder: str) -> None:
    # "same-worker": another thread of this very worker process runs a job of the series.
    owner = f"{bot.worker.owner}/other-job-key" if holder == "same-worker" else "another-worker"
    # An untagged PR check checks the newest tag: it takes the newest line's series lock.
    assert bot.queue.ledger.acquire("series:linux:6.12", owner, lease=0.5)
    bot.send()
    bot.queue.drain(max_tasks=2, timeout=0.3)
    assert bot.ran == []  # rescheduled while the lock was held
    time.sleep(0.6)  # the other holder's lease runs out (it died)
    bot.drain()
    assert len(bot.ran) == 1


def test_infra_errors_are_retried_then_reported(bot: Bot) -> None:
    def broken(job: Job) -> JobOutcome:
        raise InfraError("mirror unreachable")

    bot.behaviour = broken
    bot.send()
    bot.drain()
    assert len(bot.ran) == 3  # max_attempts
    [report] = bot.reports
    assert report.conclusion == Conclusion.ERROR and "mirror unreachable" in report.summary_md
    [run] = bot.gh.check_runs.values()
    assert run.conclusion == str(Conclusion.ERROR)
    rec = bot.queue.ledger.get(bot.ran[0].key)
    assert rec is not None and rec.state == JobState.DONE


def test_user_error_is_reported_without_retry(bot: Bot) -> None:
    def bad_tag(job: Job) -> JobOutcome:
        raise UserError("unknown tag v9.9", hint="pick a tag from the tracked lines")

    bot.behaviour = bad_tag
    bot.send(event="issue_comment", command=Command.REBASE, tag="v9.9", head_sha=None)
    bot.drain()
    assert len(bot.ran) == 1
    [report] = bot.reports
    assert "unknown tag v9.9" in report.summary_md
