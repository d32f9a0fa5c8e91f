"""Secrets never readable from /proc/<pid>/environ of `patchbot serve`, the worker or a child,
weak secrets refused, every secret redacted."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.fakes_github import PAT
from tests.helpers.gitrepo import REPO_ROOT
from ukl_patchbot.bot.jobqueue import JobQueue
from ukl_patchbot.core import secrets
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.jobs import Job, JobKind

WEBHOOK = "webhook-secret-for-the-environ-test"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBOT_")}
    env.update(PYTHONPATH=str(REPO_ROOT), PATCHBOT_CACHE_DIR=str(tmp_path / "cache"), **extra)
    return env


def test_serve_environ_holds_no_secret(tmp_path: Path) -> None:
    (tmp_path / "patchbot.toml").write_text("")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ukl_patchbot", "serve", "--port", "0"],
        cwd=tmp_path,
        env=_env(tmp_path, PATCHBOT_WEBHOOK_SECRET=WEBHOOK),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert "listening" in line, line
        assert "repositories served: none" in line, line
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        assert WEBHOOK.encode() not in environ
        assert b"PATCHBOT_WEBHOOK_SECRET" not in environ
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert WEBHOOK.encode() not in cmdline
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("via_file", [False, True])
def test_worker_and_its_children_cannot_read_the_token(tmp_path: Path, via_file: bool) -> None:
    (tmp_path / "patchbot.toml").write_text("[bot]\nsandbox = \"none\"\n")
    queue_url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    JobQueue(queue_url).submit_job(Job(JobKind.CHECK, component="linux", tag="v6.1.1"))
    extra = {"PATCHBOT_QUEUE_URL": queue_url, "PATCHBOT_TEST_RUNS": str(tmp_path / "runs")}
    if via_file:
        f = tmp_path / "token"
        f.write_text(PAT + "\n")
        f.chmod(0o600)
        extra["PATCHBOT_GITHUB_TOKEN_FILE"] = str(f)
    else:
        extra["PATCHBOT_GITHUB_TOKEN"] = PAT
    res = subprocess.run(
        [sys.executable, "-m", "ukl_patchbot", "worker", "--once", "--executor",
         "tests.helpers.envprobe:execute"],
        cwd=tmp_path, env=_env(tmp_path, **extra), capture_output=True, timeout=120, check=False,
    )
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
    own = (tmp_path / "runs" / "worker-environ").read_bytes()
    child = (tmp_path / "runs" / "child-view").read_text()
    assert child.strip(), "the probe saw nothing"
    assert b"PATCHBOT_QUEUE_URL" in own  # the probe read the real environ
    for text in (own.decode(errors="replace"), child):
        assert PAT not in text
        assert "PATCHBOT_GITHUB_TOKEN" not in text


def test_weak_secrets_are_refused(tmp_path: Path) -> None:
    for weak in (" ", "a", "short-secret", "\t\n   \t"):
        with pytest.raises(UserError, match="too weak"):
            secrets.read_secret("PATCHBOT_WEBHOOK_SECRET", {"PATCHBOT_WEBHOOK_SECRET": weak})
    f = tmp_path / "s"
    f.write_text("tiny\n")
    with pytest.raises(UserError, match="too weak"):
        secrets.read_secret("PATCHBOT_WEBHOOK_SECRET", {"PATCHBOT_WEBHOOK_SECRET_FILE": str(f)})
    good = "x" * secrets.MIN_LENGTH
    assert secrets.read_secret("PATCHBOT_WEBHOOK_SECRET", {"PATCHBOT_WEBHOOK_SECRET": good}) == good


def test_serve_refuses_a_weak_secret_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "patchbot.toml").write_text("")
    res = subprocess.run(
        [sys.executable, "-m", "ukl_patchbot", "serve", "--port", "0"],
        cwd=tmp_path, env=_env(tmp_path, PATCHBOT_WEBHOOK_SECRET="a"),
        capture_output=True, timeout=60, check=False,
    )
    assert res.returncode != 0
    assert b"too weak" in res.stderr + res.stdout


def test_every_secret_is_redacted_whatever_its_length(caplog: pytest.LogCaptureFixture) -> None:
    value = "q7-secret-value-of-some-length"
    secrets.read_secret("PATCHBOT_GITHUB_TOKEN", {"PATCHBOT_GITHUB_TOKEN": value})
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "token is %s", (value,), None)
    secrets.RedactingFilter().filter(record)
    assert value not in record.getMessage()
    assert secrets.REDACTED in record.getMessage()


def test_worker_refuses_to_start_without_a_working_sandbox(tmp_path: Path) -> None:
    (tmp_path / "patchbot.toml").write_text('[bot]\nrepositories = ["ukl/patches"]\n')
    res = subprocess.run(
        [sys.executable, "-m", "ukl_patchbot", "worker", "--once"],
        cwd=tmp_path,
        env=_env(tmp_path, PATCHBOT_GITHUB_TOKEN=PAT, PATH=str(tmp_path / "no-tools-here")),
        capture_output=True, timeout=120, check=False,
    )
    out = (res.stdout + res.stderr).decode()
    assert res.returncode != 0, out
    assert "sandbox does not work" in out and 'sandbox = "none"' in out
