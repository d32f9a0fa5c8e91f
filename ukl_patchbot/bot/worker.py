"""What `patchbot worker` does with each task: resolve triggers into jobs, run jobs, report.

The pipeline itself is not here: a job is handed to an *executor*,
``(Job, Config) -> JobOutcome``, by default
`ukl_patchbot.dispatch.execute.execute_job` (imported when first needed), the same
function `patchbot check` and `patchbot rebase` use. Tests and other
deployments pass their own.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol, Self

from ukl_patchbot.bot.jobqueue import JobQueue
from ukl_patchbot.bot.ledger import JobRecord, JobState
from ukl_patchbot.bot.routing import Command, Trigger
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import InfraError, PatchbotError, UserError
from ukl_patchbot.core.jobs import Job, JobKind, JobOutcome
from ukl_patchbot.core.secrets import redact
from ukl_patchbot.github.publish import denied_reply, error_outcome, safe_repo_path

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
        self, job: Job, check_run_id: int | None, *, queued: bool = False
    ) -> int | None: ...
    def publish(
        self, outcome: JobOutcome, check_run_id: int | None, logs_hint: str | None = None
    ) -> list[str]: ...


@dataclass(frozen=True)
class WorkerSettings:
    lease: float = 120.0  # a dead worker's job is taken back this long after its last heartbeat
    max_attempts: int = 3  # a job that kills its worker this often is marked failed
    lock_retry_delay: float = 30.0  # wait when another job holds the series lock
    retry_delay: float = 60.0  # wait after an infrastructure error or GitHub outage
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


class _Heartbeat:
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


class BotWorker:
    """Executes queue tasks. One instance per worker process; thread-safe."""

    def __init__(
        self,
        queue: JobQueue,
        cfg: Config,
        reporter: Reporter | None,
        executor: Executor = default_executor,
        settings: WorkerSettings | None = None,
        owner: str | None = None,
    ) -> None:
        self.queue = queue
        self.ledger = queue.ledger
        self.cfg = cfg
        self.reporter = reporter
        self.executor = executor
        self.settings = settings or WorkerSettings()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        queue.attach(self.handle)

    def handle(self, kind: str, key: str) -> None:
        if kind == "trigger":
            self.resolve(key)
        elif kind == "job":
            self.run_job(key)
        elif kind == "gave_up":
            self.give_up(key)

    # -- triggers -------------------------------------------------------------
    def resolve(self, delivery_id: str) -> None:
        """Turn a parked trigger into jobs (permission check, files, head sha)."""
        raw = self.ledger.start(delivery_id, self.owner, self.settings.lease, ns="trg")
        if raw is None:
            return  # resolved already, or another worker is at it
        trigger = Trigger.from_dict(raw["trigger"])
        try:
            for job in self.jobs_for(trigger):
                if self.queue.submit_job(job, again=trigger.command == Command.RETRY):
                    self._announce(job)
        except InfraError as exc:
            if int(raw["attempts"]) < self.settings.max_attempts:
                log.warning("delivery %s: %s; will retry", delivery_id, exc)
                self.ledger.requeue(delivery_id, self.owner, ns="trg")
                self.queue.enqueue_trigger_id(delivery_id, delay=self.settings.retry_delay)
                return
            log.error("delivery %s: giving up: %s", delivery_id, exc)
            self.ledger.finish(delivery_id, self.owner, JobState.FAILED, ns="trg")
            return
        self.ledger.finish(delivery_id, self.owner, JobState.DONE, ns="trg")

    def jobs_for(self, t: Trigger) -> list[Job]:
        """The jobs a trigger asks for (possibly none, e.g. a PR that touches no series)."""
        rep = self._need_reporter()
        if t.event == "issue_comment":
            return self._comment_jobs(rep, t)
        if t.event == "pull_request" and t.pr is not None:
            comps = self.components_touched(rep.pr_files(t.repo, t.pr))
        else:
            comps = (
                self.components_touched(t.changed_paths)
                if t.changed_paths is not None
                else sorted(self.cfg.components)
            )
        if not comps:
            log.info(
                "delivery %s: %s changes no patch series or kconfig fragment", t.delivery_id, t.repo
            )
        return [
            Job(
                JobKind.CHECK,
                component=c,
                repo=t.repo,
                pr=t.pr,
                head_sha=t.head_sha,
                requested_by=t.actor or None,
                delivery_id=t.delivery_id,
            )
            for c in comps
        ]

    def _comment_jobs(self, rep: Reporter, t: Trigger) -> list[Job]:
        assert t.pr is not None
        if t.actor.lower() == rep.bot_login(t.repo).lower():
            log.info("delivery %s: our own comment, ignored", t.delivery_id)
            return []
        if t.command == Command.DENY or not rep.may_command(t.repo, t.actor):
            log.info(
                "delivery %s: %s may not command the bot on %s", t.delivery_id, t.actor, t.repo
            )
            rep.reply(t.repo, t.pr, denied_reply(t.actor, t.comment or str(t.command)))
            return []
        head = rep.pr_head(t.repo, t.pr)
        if t.command == Command.RETRY:
            last = self.ledger.last_job_for(t.repo, t.pr)
            if last is None:
                rep.reply(
                    t.repo,
                    t.pr,
                    f"@{t.actor} there is no earlier patchbot job on this pull request to retry.",
                )
                return []
            return [
                replace(last.job, head_sha=head, requested_by=t.actor, delivery_id=t.delivery_id)
            ]
        kind = JobKind.REBASE if t.command == Command.REBASE else JobKind.CHECK
        comps = (
            [self.component_for_tag(t.tag)]
            if t.tag
            else self.components_touched(rep.pr_files(t.repo, t.pr)) or ["linux"]
        )
        return [
            Job(
                kind,
                component=c,
                tag=t.tag,
                repo=t.repo,
                pr=t.pr,
                head_sha=head,
                requested_by=t.actor,
                delivery_id=t.delivery_id,
            )
            for c in comps
        ]

    def components_touched(self, paths: tuple[str, ...] | list[str]) -> list[str]:
        """Components whose series directory (or, for linux, ``kconfigs/``) a path lies in."""
        found: set[str] = set()
        roots = [
            (name, d.relative_to(self.cfg.root).as_posix())
            for name, c in self.cfg.components.items()
            for d in c.series_dirs()
            if d.is_relative_to(self.cfg.root)
        ]
        for p in paths:
            safe = safe_repo_path(p)
            if safe is None:
                log.warning("ignoring unsafe path %r in a change", p[:200])
                continue
            for name, root in roots:
                if safe.startswith(root + "/"):
                    found.add(name)
            if safe.startswith("kconfigs/") and "linux" in self.cfg.components:
                found.add("linux")
        return sorted(found)

    def component_for_tag(self, tag: str) -> str:
        """The component whose tag prefix matches ``tag`` best (``glibc-2.36`` → glibc)."""
        best = max(
            self.cfg.components.values(),
            key=lambda c: len(c.tag_prefix) if tag.startswith(c.tag_prefix) else -1,
        )
        return best.name

    def series_line(self, job: Job) -> str:
        """The line a job works on, for the per-series lock (``linux:6.1``)."""
        comp = self.cfg.components.get(job.component)
        if job.tag and comp:
            line = comp.line_for_tag(job.tag)
            return line.name if line else job.tag.removeprefix(comp.tag_prefix)
        tracked = comp.tracked if comp else ()
        return tracked[0] if len(tracked) == 1 else "newest"

    def _announce(self, job: Job) -> None:
        """Show the job as queued on GitHub (check run) as soon as it is accepted."""
        if self.reporter is None:
            return
        try:
            cid = self.reporter.start_check(job, None, queued=True)
            if cid is not None:
                self.ledger.set_meta(job.key, check_run_id=cid)
        except Exception as exc:  # noqa: BLE001 - "queued" is a courtesy, never worth the job
            log.warning("job %s: could not show it as queued: %s", job.key, exc)

    # -- jobs -------------------------------------------------------------------
    def run_job(self, key: str) -> None:
        rec = self.ledger.get(key)
        if rec is None or rec.state != JobState.QUEUED:
            return  # done already, or running elsewhere: never twice
        job = rec.job
        lock = f"series:{job.component}:{self.series_line(job)}"
        # The lock belongs to this job, not to the process: two threads of one worker
        # must not run two jobs of one series either.
        holder = f"{self.owner}/{key}"
        lease = self.settings.lease
        if not self.ledger.acquire(lock, holder, lease):
            log.info(
                "job %s: %s busy, retrying in %.0fs", key, lock, self.settings.lock_retry_delay
            )
            self.ledger.touch_queued(key)  # still waiting, not lost: the reaper leaves it be
            self.queue.enqueue_job_key(key, delay=self.settings.lock_retry_delay)
            return
        try:
            raw = self.ledger.start(key, self.owner, lease)
            if raw is None:
                return
            rec = JobRecord.from_raw(raw)
            if rec.attempts > self.settings.max_attempts:
                self.ledger.finish(key, self.owner, JobState.FAILED)
                self._report(error_outcome(job, f"gave up after {rec.attempts - 1} attempts"), rec)
                return

            def beat() -> None:
                self.ledger.heartbeat(key, self.owner, lease)
                self.ledger.acquire(lock, holder, lease)

            with _Heartbeat(beat, every=max(lease / 4, 0.2)):
                self._execute(rec)
        finally:
            self.ledger.release(lock, holder)

    def _execute(self, rec: JobRecord) -> None:
        job = rec.job
        cid = rec.meta.get("check_run_id")
        if self.reporter is not None:
            try:
                cid = self.reporter.start_check(job, cid)
                self.ledger.set_meta(job.key, check_run_id=cid)
            except Exception as exc:  # noqa: BLE001 - the job runs and reports anyway
                log.warning("job %s: could not mark it in progress: %s", job.key, exc)
        log.info(
            "job %s: %s %s (tag %s) attempt %d",
            job.key,
            job.kind,
            job.component,
            job.tag,
            rec.attempts,
        )
        try:
            outcome = self.executor(job, self.cfg)
        except UserError as exc:
            outcome = error_outcome(job, str(exc), title="patchbot cannot run this")
        except Exception as exc:  # an infrastructure problem, or a bug: retried, then reported
            log.exception("job %s: attempt %d failed", job.key, rec.attempts)
            if rec.attempts < self.settings.max_attempts:
                self.ledger.requeue(job.key, self.owner)
                self.queue.enqueue_job_key(job.key, delay=self.settings.retry_delay)
                return
            msg = str(exc) if isinstance(exc, PatchbotError) else f"{type(exc).__name__}: {exc}"
            outcome = error_outcome(job, msg)
        self._report(
            outcome, JobRecord.from_raw({**_raw(rec), "meta": {**rec.meta, "check_run_id": cid}})
        )
        self.ledger.finish(job.key, self.owner, JobState.DONE)

    def _report(self, outcome: JobOutcome, rec: JobRecord) -> None:
        job = outcome.job
        # A log tail or exception text in the report must not carry a secret to GitHub.
        outcome = replace(
            outcome, title=redact(outcome.title), summary_md=redact(outcome.summary_md)
        )
        if self.reporter is None or not job.repo:
            log.info("job %s: %s (%s), not reported", job.key, outcome.conclusion, outcome.title)
            return
        hint = f"{self.settings.logs_url}/{job.key}/" if self.settings.logs_url else outcome.out_dir
        failures = self.reporter.publish(outcome, rec.meta.get("check_run_id"), hint)
        self.ledger.set_meta(job.key, conclusion=str(outcome.conclusion), report_failures=failures)

    def give_up(self, key: str) -> None:
        """Report a job the reaper marked failed because it kept killing its worker."""
        rec = self.ledger.get(key)
        if rec is None:
            return
        n = rec.attempts
        self._report(
            error_outcome(
                rec.job, f"the worker died {n} times while running this job; it was not tried again"
            ),
            rec,
        )

    @property
    def stale_queued_after(self) -> float:
        """How long a queued record may go untouched before the reaper sends it again."""
        return max(10 * self.settings.lease, 5 * self.settings.lock_retry_delay, 5.0)

    def _need_reporter(self) -> Reporter:
        if self.reporter is None:
            raise InfraError("GitHub credentials are needed to handle webhook events")
        return self.reporter


def _raw(rec: JobRecord) -> dict[str, object]:
    return {
        "job": rec.job.to_dict(),
        "state": rec.state,
        "attempts": rec.attempts,
        "owner": rec.owner,
        "lease_until": rec.lease_until,
        "meta": rec.meta,
    }
