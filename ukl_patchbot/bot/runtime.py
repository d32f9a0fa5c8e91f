"""What the worker is given: its executor, its settings, the GitHub side it reports to.

Kept apart from `ukl_patchbot.bot.worker` (which resolves triggers and runs
jobs) so deployments and tests can build these without the worker's logic.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, Self

from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.jobs import Job, JobOutcome
from ukl_patchbot.github.publish import Published

log = logging.getLogger(__name__)

Executor = Callable[[Job, Config], JobOutcome]


def default_executor(job: Job, cfg: Config) -> JobOutcome:
    """The real pipeline, imported late so the webhook and tests need not load it."""
    from ukl_patchbot.dispatch.execute import execute_job  # type: ignore[import-not-found]

    return execute_job(job, cfg)  # type: ignore[no-any-return]


def load_executor(spec: str | None) -> Executor:
    """``module:function`` → that function; None → `default_executor`."""
    if not spec:
        return default_executor
    mod, _, func = spec.partition(":")
    if not mod or not func:
        raise UserError(f"--executor {spec!r}: expected MODULE:FUNCTION")
    try:
        fn = getattr(importlib.import_module(mod), func)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"--executor {spec!r}: {exc}") from None
    return fn  # type: ignore[no-any-return]


class Reporter(Protocol):
    """The GitHub side as the worker uses it (`ukl_patchbot.github.client.GitHubClient`)."""

    def bot_login(self, repo: str) -> str: ...
    def may_command(self, repo: str, user: str) -> bool: ...
    def pr_head(self, repo: str, pr: int) -> str: ...
    def pr_files(self, repo: str, pr: int) -> list[str]: ...
    def reply(self, repo: str, pr: int, body: str) -> None: ...
    def start_check(
        self,
        job: Job,
        check_run_id: int | None,
        *,
        queued: bool = False,
        details_url: str | None = None,
    ) -> int | None: ...
    def publish(
        self, outcome: JobOutcome, check_run_id: int | None, logs_hint: str | None = None
    ) -> Published: ...


@dataclass(frozen=True)
class WorkerSettings:
    lease: float = 120.0  # a dead worker's job is taken back this long after its last heartbeat
    max_attempts: int = 3  # a job that kills its worker this often is marked failed
    lock_retry_delay: float = 30.0  # wait when another job holds the series lock
    retry_delay: float = 60.0  # wait after an infrastructure error or GitHub outage
    max_report_tries: int = 5  # publishing a rate-limited report again at most this often
    logs_url: str | None = None  # where out dirs are served: "<logs_url>/<job key>/"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if env is None else env
        try:
            return cls(
                lease=float(env.get("PATCHBOT_JOB_LEASE") or cls.lease),
                max_attempts=int(env.get("PATCHBOT_MAX_ATTEMPTS") or cls.max_attempts),
                lock_retry_delay=float(
                    env.get("PATCHBOT_LOCK_RETRY_DELAY") or cls.lock_retry_delay
                ),
                retry_delay=float(env.get("PATCHBOT_RETRY_DELAY") or cls.retry_delay),
                logs_url=(env.get("PATCHBOT_LOGS_URL") or "").rstrip("/") or None,
            )
        except ValueError as exc:
            raise UserError(f"bad worker setting in the environment: {exc}") from None


class Heartbeat:
    """Renews the job lease and the series lock while a job runs."""

    def __init__(self, beat: Callable[[], None], every: float) -> None:
        self._beat, self._every = beat, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="patchbot-heartbeat", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except Exception:  # a missed beat is survivable; the lease is three beats long
                log.exception("heartbeat failed")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
