"""Fault tests with real `patchbot worker` processes: kill -9, crash loops, Redis."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.fakes_github import APP_ID, FakeGitHub, PullRequest, fake_github
from tests.helpers.gitrepo import REPO_ROOT
from tests.helpers.redis_server import redis_url
from ukl_patchbot.bot.jobqueue import JobQueue
from ukl_patchbot.bot.ledger import JobState
from ukl_patchbot.bot.routing import Command, Trigger
from ukl_patchbot.core.jobs import Job
from ukl_patchbot.github.publish import MARKER

__all__ = ["fake_github", "redis_url"]

REPO = "ukl/patches"


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Workers:
    """Starts `patchbot worker` subprocesses against the fake GitHub; stops them all at the end."""

    def __init__(self, tmp: Path, fake: FakeGitHub, queue_url: str) -> None:
        self.tmp, self.fake, self.queue_url = tmp, fake, queue_url
        fake.repo(REPO).permissions["alice"] = "write"  # the PR author: built without approval
        self.runs = tmp / "runs"
        (tmp / "patchbot.toml").write_text(f'[bot]\nrepositories = ["{REPO}"]\n')
        key = tmp / "app.pem"
        key.write_text(fake.private_key_pem)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "PATCHBOT_QUEUE_URL": queue_url,
            "PATCHBOT_GITHUB_API_URL": fake.url,
            "PATCHBOT_GITHUB_APP_ID": str(APP_ID),
            "PATCHBOT_GITHUB_APP_PRIVATE_KEY_FILE": str(key),
            "PATCHBOT_GITHUB_PACE": "0",
            "PATCHBOT_JOB_LEASE": "1.0",
            "PATCHBOT_MAX_ATTEMPTS": "3",
            "PATCHBOT_RETRY_DELAY": "0.1",
            "PATCHBOT_LOCK_RETRY_DELAY": "0.2",
            "PATCHBOT_TEST_RUNS": str(self.runs),
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, threads: int = 1, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115 - the worker holds it
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ukl_patchbot",
                "worker",
                "--threads",
                str(threads),
                "--executor",
                "tests.helpers.fake_pipeline:execute",
            ],
            cwd=self.tmp,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def files(self, prefix: str) -> list[str]:
        return sorted(p.name for p in self.runs.glob(f"{prefix}-*")) if self.runs.exists() else []

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log"))
        )


def submit(queue: JobQueue, delivery: str, pr: int, sha: str) -> None:
    t = Trigger(delivery, "pull_request", REPO, Command.CHECK, actor="alice", pr=pr, head_sha=sha)
    queue.submit_trigger(t)


def job_keys(queue: JobQueue) -> list[str]:
    return [k.split(":", 1)[1] for k in queue.ledger.kv.keys("job:")]


@pytest.fixture
def sqlite_workers(tmp_path: Path, fake_github: FakeGitHub) -> Iterator[Workers]:
    w = Workers(tmp_path, fake_github, f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    try:
        yield w
    finally:
        w.stop_all()


def test_worker_killed_mid_job_is_retried_and_reported_once(sqlite_workers: Workers) -> None:
    w = sqlite_workers
    sha = "ab" * 20
    w.fake.repo(REPO).pulls[3] = PullRequest(3, sha, ["patchsets/linux/6.1/0001-a.patch"])
    queue = JobQueue(w.queue_url)
    submit(queue, "kill-1", 3, sha)
    first = w.start(PATCHBOT_TEST_SLEEP="30")
    wait_for(lambda: len(w.files("start")) == 1, 30, "the job to start")
    first.send_signal(signal.SIGKILL)  # mid job, no chance to clean up
    first.wait(timeout=10)
    (key,) = job_keys(queue)
    rec = queue.ledger.get(key)
    assert rec is not None and rec.state == JobState.RUNNING  # the dead worker's claim
    w.start(PATCHBOT_TEST_SLEEP="0.2")
    wait_for(
        lambda: queue.ledger.state_of(key) == JobState.DONE,
        30,
        f"the job to finish on the second worker\n{w.logs()}",
    )
    assert len(w.files("start")) == 2 and len(w.files("done")) == 1
    rec = queue.ledger.get(key)
    assert rec is not None and rec.attempts == 2
    runs = list(w.fake.repo(REPO).check_runs.values())
    assert len(runs) == 1 and runs[0]["conclusion"] == "success"  # same check run, completed once
    assert runs[0]["history"].count("completed") == 1
    ours = [c for c in w.fake.repo(REPO).comments.values() if MARKER in c["body"]]
    assert len(ours) == 1 and ours[0].get("edits") is None  # reported once, not re-edited


def test_job_that_keeps_killing_the_worker_is_marked_failed(sqlite_workers: Workers) -> None:
    w = sqlite_workers
    sha = "cd" * 20
    w.fake.repo(REPO).pulls[4] = PullRequest(4, sha, ["kconfigs/ukl.config"])
    queue = JobQueue(w.queue_url)
    submit(queue, "loop-1", 4, sha)
    env = {
        "PATCHBOT_TEST_MODE": "crash-always",
        "PATCHBOT_MAX_ATTEMPTS": "2",
        "PATCHBOT_JOB_LEASE": "0.5",
    }
    for _ in range(2):
        proc = w.start(**env)
        proc.wait(timeout=30)  # the job kills it
        assert proc.returncode == -signal.SIGKILL
    survivor = w.start(**env)  # finds the job dead twice: gives up and reports
    (key,) = job_keys(queue)
    wait_for(
        lambda: queue.ledger.state_of(key) == JobState.FAILED,
        30,
        f"the job to be marked failed\n{w.logs()}",
    )
    wait_for(
        lambda: any("died 2 times" in c["body"] for c in w.fake.repo(REPO).comments.values()),
        20,
        "the failure report",
    )
    assert survivor.poll() is None  # the worker itself survives
    assert len(w.files("start")) == 2
    runs = list(w.fake.repo(REPO).check_runs.values())
    assert [r["conclusion"] for r in runs] == ["action_required"]


# -- two workers sharing a real redis-server --------------------------------------


def test_two_workers_share_a_redis_queue(
    tmp_path: Path, fake_github: FakeGitHub, redis_url: str
) -> None:
    w = Workers(tmp_path, fake_github, redis_url)
    try:
        queue = JobQueue(redis_url)
        for pr in range(1, 5):
            sha = f"{pr:02x}" * 20
            fake_github.repo(REPO).pulls[pr] = PullRequest(
                pr, sha, ["patchsets/linux/6.1/0001-a.patch", "patchsets/glibc/0001-b.patch"]
            )
            submit(queue, f"r-{pr}", pr, sha)
            submit(queue, f"r-{pr}", pr, sha)  # a redelivery: collapsed
        w.start(PATCHBOT_TEST_SLEEP="0.3")
        w.start(PATCHBOT_TEST_SLEEP="0.3")
        wait_for(
            lambda: (
                len(job_keys(queue)) == 8
                and all(queue.ledger.state_of(k) == JobState.DONE for k in job_keys(queue))
            ),
            90,
            f"all 8 jobs to finish\n{w.logs()}",
        )
        done = w.files("done")
        assert len(done) == 8 and len(w.files("start")) == 8  # each job ran exactly once
        assert len({name.split("-")[1] for name in done}) == 8
        pids = {name.split("-")[2] for name in done}
        assert len(pids) == 2, "both workers took jobs"
        # The series lock: jobs of one series never overlapped, across both machines.
        spans: dict[str, list[tuple[int, int]]] = {}
        for name in done:
            _, key, _pid, end = name.split("-")
            (start,) = [s for s in w.files("start") if s.split("-")[1] == key]
            comp = (w.runs / name).read_text()
            spans.setdefault(comp, []).append((int(start.split("-")[3]), int(end)))
        assert sorted(spans) == ["glibc", "linux"]
        for comp, s in spans.items():
            s.sort()
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(s)), f"{comp} jobs overlapped: {s}"
        runs = fake_github.repo(REPO).check_runs.values()
        assert sorted(r["conclusion"] for r in runs) == ["success"] * 8
    finally:
        w.stop_all()


def test_job_key_is_stable_for_dedup() -> None:
    a = Job.from_dict(
        {"kind": "check", "repo": REPO, "pr": 1, "head_sha": "e" * 40, "delivery_id": "one"}
    )
    b = Job.from_dict(
        {"kind": "check", "repo": REPO, "pr": 1, "head_sha": "e" * 40, "delivery_id": "two"}
    )
    assert a.key == b.key


# -- kill -9 of `patchbot serve` at each step of the intake --------------------------

SERVE_SECRET = "fault-test-webhook-secret-0123456789"


class Serve:
    """A real `patchbot serve` process on loopback."""

    def __init__(self, tmp: Path, queue_url: str, fault: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBOT_")}
        env.update(
            PYTHONPATH=str(REPO_ROOT),
            PATCHBOT_QUEUE_URL=queue_url,
            PATCHBOT_WEBHOOK_SECRET=SERVE_SECRET,
            PATCHBOT_REPOSITORIES=REPO,
        )
        if fault:
            env["PATCHBOT_FAULT_POINT"] = fault
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ukl_patchbot", "serve", "--port", "0"],
            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        self.output = []
        while True:
            line = self.proc.stdout.readline().decode()
            assert line, "serve exited before listening:\n" + "".join(self.output)
            self.output.append(line)
            if "listening on" in line:
                self.url = line.split("listening on ")[1].split("/webhook")[0]
                break

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)


def pr_payload(pr: int, sha: str) -> dict[str, object]:
    return {
        "action": "synchronize",
        "number": pr,
        "pull_request": {"number": pr, "head": {"sha": sha}, "user": {"login": "alice"}},
        "repository": {"full_name": REPO},
        "sender": {"login": "alice"},
    }


def process_all(tmp: Path, fake: FakeGitHub, queue_url: str) -> list[Job]:
    """Run what is queued in this process with a recording executor; the jobs it ran."""
    from ukl_patchbot.bot.runtime import WorkerSettings
    from ukl_patchbot.bot.worker import BotWorker
    from ukl_patchbot.core import config
    from ukl_patchbot.core.jobs import Conclusion, JobOutcome
    from ukl_patchbot.github.client import Credentials, GitHubClient

    ran: list[Job] = []

    def execute(job: Job, cfg: config.Config) -> JobOutcome:
        ran.append(job)
        return JobOutcome(job, Conclusion.SUCCESS, "ok", "ok")

    (tmp / "patchbot.toml").write_text("")
    creds = Credentials(api_url=fake.url, app_id=APP_ID, private_key=fake.private_key_pem)
    gh = GitHubClient(creds, pace=False)
    queue = JobQueue(queue_url)
    BotWorker(queue, config.load(tmp / "patchbot.toml"), gh, execute,
              WorkerSettings(lease=5, retry_delay=0.05, lock_retry_delay=0.05))
    queue.drain(timeout=30)
    return ran


@pytest.mark.parametrize("window", ["after-park", "after-identity", "after-enqueue"])
def test_serve_killed_at_each_intake_step_loses_nothing(
    tmp_path: Path, fake_github: FakeGitHub, window: str
) -> None:
    """kill -9 at a named step (fault injection, not timing luck): the event is not lost,
    its redelivery is queued or answered "duplicate" only once it is in the queue, and
    exactly one job runs."""
    from tests.helpers.webhook_client import deliver

    sha = "5e" * 20
    repo = fake_github.repo(REPO)
    repo.pulls[9] = PullRequest(9, sha, ["patchsets/linux/6.1/0001-a.patch"])
    repo.permissions["alice"] = "write"
    url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    payload = pr_payload(9, sha)
    crashing = Serve(tmp_path, url, fault=window)
    with pytest.raises((ConnectionError, OSError)):  # killed before it could answer
        deliver(crashing.url, "pull_request", payload, delivery="d-crash", secret=SERVE_SECRET)
    crashing.proc.wait(timeout=10)
    assert crashing.proc.returncode == -signal.SIGKILL
    queue = JobQueue(url)
    assert queue.ledger.trigger_data("d-crash") is not None  # recorded before the kill
    assert queue.ledger.unqueued_triggers() == ["d-crash"]  # ... but not marked queued
    server = Serve(tmp_path, url)
    try:
        answer = deliver(server.url, "pull_request", payload, delivery="d-crash",
                         secret=SERVE_SECRET)
        # Either the restart's outbox drain queued it (then "duplicate" is the truth) or
        # the redelivery did: never a "duplicate" of something not in the queue.
        assert queue.ledger.unqueued_triggers() == []
        drained_at_start = any("a crash had kept back" in line for line in server.output)
        assert drained_at_start
        assert answer.status == 200 and answer.json()["status"] == "duplicate"
    finally:
        server.stop()
    ran = process_all(tmp_path, fake_github, url)
    assert [(j.repo, j.pr, j.head_sha) for j in ran] == [(REPO, 9, sha)]
    assert [r["conclusion"] for r in repo.check_runs.values()] == ["success"]


@pytest.mark.parametrize("window", ["after-park", "after-identity", "after-enqueue"])
def test_redelivery_after_a_crash_is_queued_not_answered_duplicate(
    tmp_path: Path, fake_github: FakeGitHub, window: str
) -> None:
    """GitHub's redelivery reaching the intake before any restart drained the outbox."""
    sha = "6f" * 20
    repo = fake_github.repo(REPO)
    repo.pulls[10] = PullRequest(10, sha, ["patchsets/linux/6.1/0001-a.patch"])
    repo.permissions["alice"] = "write"
    url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    from tests.helpers.webhook_client import deliver

    crashing = Serve(tmp_path, url, fault=window)
    with pytest.raises((ConnectionError, OSError)):
        deliver(crashing.url, "pull_request", pr_payload(10, sha), delivery="d-re",
                secret=SERVE_SECRET)
    crashing.proc.wait(timeout=10)
    queue = JobQueue(url)
    trigger = Trigger("d-re", "pull_request", REPO, Command.CHECK, actor="alice", pr=10,
                      head_sha=sha, author="alice")
    assert str(queue.submit_trigger(trigger)) == "queued"  # the same code serve runs
    assert str(queue.submit_trigger(trigger)) == "duplicate"  # now it is in the queue
    ran = process_all(tmp_path, fake_github, url)
    assert [(j.pr, j.head_sha) for j in ran] == [(10, sha)]
