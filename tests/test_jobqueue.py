"""Queue, ledger and worker in one process: events → jobs → fake executor → fake GitHub."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.helpers.bot_harness import REPO, SHA, Bot
from tests.helpers.fakes_github import PAT_USER, FakeGitHub, PullRequest, fake_github
from tests.helpers.octokit_specs import examples
from tests.helpers.redis_server import redis_url
from ukl_patchbot.bot.jobqueue import Submitted, queue_url_from_env
from ukl_patchbot.bot.ledger import JobState, Ledger, RedisKV, SqliteKV
from ukl_patchbot.bot.routing import Command
from ukl_patchbot.bot.runtime import load_executor
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind, JobOutcome
from ukl_patchbot.dispatch import execute
from ukl_patchbot.github.client import Credentials
from ukl_patchbot.github.publish import MARKER

__all__ = ["fake_github", "redis_url"]

@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub) -> Bot:
    r = fake_github.repo(REPO)
    r.pulls[7] = PullRequest(7, SHA, ["patchsets/linux/6.1/0001-ukl-kconfig.patch", "README.md"])
    r.permissions.update({"alice": "maintain", "rita": "read"})
    return Bot(tmp_path, fake_github)


def test_pr_event_runs_one_check_and_reports_it(bot: Bot) -> None:
    assert bot.send() == Submitted.QUEUED
    bot.drain()
    assert [(j.kind, j.component, j.head_sha, j.pr) for j in bot.run.jobs] == [
        (JobKind.CHECK, "linux", SHA, 7)
    ]
    runs = list(bot.fake.repo(REPO).check_runs.values())
    assert len(runs) == 1 and runs[0]["history"] == ["queued", "in_progress", "completed"]
    assert runs[0]["conclusion"] == "success"
    assert len(bot.comments) == 1 and MARKER in str(bot.comments[0]["body"])
    rec = bot.queue.ledger.get(bot.run.jobs[0].key)
    assert rec is not None and rec.state == JobState.DONE and rec.attempts == 1


def test_webhook_example_payload_end_to_end(bot: Bot, tmp_path: Path) -> None:
    """A real pull_request payload through the HTTP server, the queue and the worker."""
    from tests.helpers.webhook_client import OUR_REPOS, SECRET, deliver, start_server
    from ukl_patchbot.bot.webhook import WebhookSettings

    ex = next(examples("pull_request", "opened"))
    repo = bot.fake.repo(ex["repository"]["full_name"])
    repo.pulls[ex["number"]] = PullRequest(
        ex["number"], ex["pull_request"]["head"]["sha"], ["kconfigs/ukl.config"]
    )
    # The example's author owns the repository: its PR is built without approval.
    repo.permissions[ex["pull_request"]["user"]["login"]] = "admin"
    server = start_server(
        bot.queue, WebhookSettings(secret=SECRET.encode(), repositories=OUR_REPOS)
    )
    try:
        assert deliver(server.url, "pull_request", ex).status == 202
    finally:
        server.stop()
    bot.drain()
    assert [(j.repo, j.pr, j.component) for j in bot.run.jobs] == [
        (ex["repository"]["full_name"], ex["number"], "linux")
    ]
    assert [r["conclusion"] for r in repo.check_runs.values()] == ["success"]


def test_read_only_commenter_gets_one_polite_reply(bot: Bot) -> None:
    bot.send(event="issue_comment", command=Command.CHECK, actor="rita", head_sha=None)
    bot.drain()
    assert bot.run.jobs == []
    replies = [c for c in bot.comments if "@rita" in str(c["body"])]
    assert len(replies) == 1 and "write access" in str(replies[0]["body"])
    assert "`/patchbot check`" in str(replies[0]["body"])
    assert bot.fake.calls("GET", r"/collaborators/rita/permission$")  # asked of the API


def test_non_member_is_refused_without_asking_the_api(bot: Bot) -> None:
    bot.send(
        event="issue_comment",
        command=Command.DENY,
        actor="drive-by",
        head_sha=None,
        tag="v6.1.192",
        comment="rebase v6.1.192",
    )
    bot.drain()
    assert bot.run.jobs == []
    assert len(bot.comments) == 1 and "@drive-by" in str(bot.comments[0]["body"])
    assert "`/patchbot rebase v6.1.192`" in str(bot.comments[0]["body"])
    assert not bot.fake.calls("GET", r"/collaborators/")


def test_comment_by_the_bot_itself_is_ignored(tmp_path: Path, fake_github: FakeGitHub) -> None:
    fake_github.repo(REPO).pulls[7] = PullRequest(7, SHA, ["patchsets/linux/6.1/x.patch"])
    fake_github.repo(REPO).permissions[PAT_USER] = "admin"
    bot = Bot(tmp_path, fake_github, mode="token")
    bot.send(event="issue_comment", command=Command.CHECK, actor=PAT_USER, head_sha=None)
    bot.drain()
    assert bot.run.jobs == [] and bot.comments == []


def test_github_outage_while_resolving_is_retried(bot: Bot) -> None:
    bot.fake.fail("GET", r"/pulls/7/files$", 502, times=5)  # one resolve attempt's retries
    bot.send()
    bot.drain()
    assert len(bot.run.jobs) == 1
    assert len(bot.fake.calls("GET", r"/pulls/7/files$")) == 6


def test_report_failure_does_not_lose_the_job(bot: Bot) -> None:
    bot.fake.fail("POST", r"/issues/7/comments$", 502, times=100)
    bot.send()
    bot.drain()
    rec = bot.queue.ledger.get(bot.run.jobs[0].key)
    assert rec is not None and rec.state == JobState.DONE
    assert rec.meta["report_failures"] == ["sticky comment"]
    assert next(iter(bot.fake.repo(REPO).check_runs.values()))["conclusion"] == "success"


# -- the ledger ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    """The same ledger semantics on both stores (Redis: a real redis-server on loopback)."""
    if request.param == "sqlite":
        return Ledger(SqliteKV(str(tmp_path / "ledger.sqlite3")))
    return Ledger(RedisKV(request.getfixturevalue("redis_url")))


def test_ledger_lease_expiry_requeues_then_fails(ledger: Ledger) -> None:
    job = Job(JobKind.CHECK, repo=REPO, pr=1, head_sha=SHA)
    assert ledger.register(job) and not ledger.register(job)
    for attempt in (1, 2):
        assert ledger.start(job.key, f"w{attempt}", lease=0.05) is not None
        assert ledger.start(job.key, "other", lease=1) is None  # running: nobody else
        assert ledger.reclaim_stale(job.key, max_attempts=2) is None  # lease still valid
        time.sleep(0.1)
        want = JobState.QUEUED if attempt == 1 else JobState.FAILED
        assert ledger.reclaim_stale(job.key, max_attempts=2) == want
    rec = ledger.get(job.key)
    assert rec is not None and rec.attempts == 2 and rec.meta["crashed_owner"] == "w2"


def test_ledger_heartbeat_keeps_a_job(ledger: Ledger) -> None:
    job = Job(JobKind.CHECK, repo=REPO, pr=1, head_sha=SHA)
    ledger.register(job)
    ledger.start(job.key, "w", lease=0.2)
    for _ in range(4):
        time.sleep(0.1)
        assert ledger.heartbeat(job.key, "w", lease=0.2)
    assert ledger.reclaim_stale(job.key, 3) is None
    assert not ledger.heartbeat(job.key, "intruder", lease=1)
    assert ledger.finish(job.key, "w", JobState.DONE)
    assert ledger.register(job, again=True)  # a finished job may be asked for again


def test_ledger_locks_and_claims(ledger: Ledger) -> None:
    assert ledger.acquire("series:linux:6.1", "a", lease=0.1)
    assert not ledger.acquire("series:linux:6.1", "b", lease=1)
    assert ledger.acquire("series:linux:6.1", "a", lease=0.1)  # renewal by the holder
    assert ledger.acquire("series:glibc:2.36", "b", lease=1)  # another series is free
    ledger.release("series:linux:6.1", "b")  # not b's: no effect
    assert not ledger.acquire("series:linux:6.1", "b", lease=1)
    ledger.release("series:linux:6.1", "a")
    assert ledger.acquire("series:linux:6.1", "b", lease=1)
    assert ledger.claim("delivery:1", ttl=0.1) and not ledger.claim("delivery:1")
    time.sleep(0.15)
    assert ledger.claim("delivery:1")  # expired markers do not block forever


def test_queue_url_from_env(tmp_path: Path) -> None:
    assert queue_url_from_env(tmp_path, {}) == f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    assert queue_url_from_env(tmp_path, {"PATCHBOT_QUEUE_URL": "redis://127.0.0.1:1/0"}).startswith(
        "redis://"
    )
    with pytest.raises(UserError):
        queue_url_from_env(tmp_path, {"PATCHBOT_QUEUE_URL": "sqlite:///relative.db"})
    with pytest.raises(UserError):
        queue_url_from_env(tmp_path, {"PATCHBOT_QUEUE_URL": "amqp://x"})


def test_load_executor() -> None:
    from tests.helpers import fake_pipeline

    assert load_executor("tests.helpers.fake_pipeline:execute") is fake_pipeline.execute
    with pytest.raises(UserError):
        load_executor("no_such_module_xyz:f")
    with pytest.raises(UserError):
        load_executor("just-a-name")


def test_secrets_never_reach_child_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ukl_patchbot.bot.webhook import WebhookSettings
    from ukl_patchbot.core.runner import run
    from ukl_patchbot.core.secrets import scrub_environment

    key = tmp_path / "app.pem"
    key.write_text(
        "-----BEGIN PRIVATE KEY-----\nTOTALLYSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
    )
    monkeypatch.setenv("PATCHBOT_WEBHOOK_SECRET", "webhook-secret-value")
    monkeypatch.setenv("PATCHBOT_GITHUB_APP_ID", "4242")
    monkeypatch.setenv("PATCHBOT_GITHUB_APP_PRIVATE_KEY_FILE", str(key))
    WebhookSettings.from_env()
    creds = Credentials.from_env()
    assert creds.private_key and "TOTALLYSECRET" in creds.private_key
    scrub_environment()
    out = run(["env"], capture=True, timeout=10).stdout
    assert "webhook-secret-value" not in out and "PATCHBOT_GITHUB_APP_PRIVATE_KEY" not in out
    assert str(key) not in out


def test_log_records_of_the_worker_hide_secrets(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    from ukl_patchbot.core.secrets import RedactingFilter, remember

    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactingFilter())
    remember(bot.fake.private_key_pem)

    def leaky(job: Job) -> JobOutcome:
        raise RuntimeError(f"oops {bot.fake.private_key_pem.splitlines()[1]}")

    bot.run.behaviour = leaky
    bot.send()
    bot.drain()
    assert bot.fake.private_key_pem.splitlines()[1] not in caplog.text
    assert "[redacted]" in caplog.text
    body = str(bot.comments[0]["body"])
    assert "oops [redacted]" in body and bot.fake.private_key_pem.splitlines()[1] not in body


def test_task_lost_between_dequeue_and_start_is_sent_again(bot: Bot) -> None:
    bot.send()
    bot.drain()  # resolves and runs the first job
    bot.send(head_sha="f" * 40)
    bot.fake.repo(REPO).pulls[7].head_sha = "f" * 40
    trigger_task = bot.queue.huey.dequeue()  # a worker took it, then died before recording
    assert trigger_task is not None and bot.queue.huey.dequeue() is None
    assert bot.queue.reap(3, stale_queued_after=60) == {"requeued": 0, "failed": 0, "resent": 0}
    time.sleep(0.2)
    counts = bot.queue.reap(3, stale_queued_after=0.1)
    assert counts["resent"] == 1  # only the lost trigger: the finished job is not queued
    bot.drain()
    assert [j.head_sha for j in bot.run.jobs] == [SHA, "f" * 40]
    assert bot.queue.reap(3, stale_queued_after=0.0)["resent"] == 0  # nothing left queued


def test_default_executor_is_the_pipeline() -> None:
    """The worker's default is `ukl_patchbot.dispatch.execute.execute_job(job, cfg) -> JobOutcome`."""
    import inspect

    from ukl_patchbot.bot.runtime import default_executor

    assert load_executor(None) is default_executor
    sig = inspect.signature(execute.execute_job)
    assert list(sig.parameters) == ["job", "cfg"]


def test_two_threads_of_one_worker_do_not_share_a_series(bot: Bot) -> None:
    import threading

    spans: list[tuple[float, float]] = []

    def slow(job: Job) -> JobOutcome:
        t0 = time.monotonic()
        time.sleep(0.3)
        spans.append((t0, time.monotonic()))
        return JobOutcome(job, Conclusion.SUCCESS, "ok", "ok")

    bot.run.behaviour = slow
    for i, sha in enumerate(["1" * 40, "2" * 40]):
        bot.fake.repo(REPO).pulls[20 + i] = PullRequest(20 + i, sha, ["kconfigs/a.config"])
        bot.send(pr=20 + i, head_sha=sha)
    bot.queue.drain(max_tasks=2, timeout=10)  # resolve both triggers: two linux jobs queued
    threads = [threading.Thread(target=bot.drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(spans) == 2
    (_a_start, a_end), (b_start, _b_end) = sorted(spans)
    assert a_end <= b_start, "two jobs of the linux series ran at once"
