"""What `patchbot worker` does with each task: resolve triggers into jobs, run jobs, report.

Which jobs a trigger asks for, and whether its author may have them built, is
decided by `ukl_patchbot.bot.triggers`; the worker leases the trigger, submits
those jobs and retries or reports when that fails.

The pipeline itself is not here: a job is handed to an *executor*,
``(Job, Config) -> JobOutcome``, by default
`ukl_patchbot.dispatch.execute.execute_job` (imported when first needed), the same
function `patchbot check` and `patchbot rebase` use. Tests and other
deployments pass their own.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import replace

from ukl_patchbot.bot.jobqueue import JobQueue
from ukl_patchbot.bot.ledger import JobRecord, JobState
from ukl_patchbot.bot.routing import Command, Trigger
from ukl_patchbot.bot.runtime import (
    Executor,
    Heartbeat,
    Reporter,
    WorkerSettings,
    default_executor,
)
from ukl_patchbot.bot.triggers import JobPlanner
from ukl_patchbot.bot.trust import BotPolicy
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import InfraError, PatchbotError, UserError
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind, JobOutcome
from ukl_patchbot.core.secrets import redact
from ukl_patchbot.github.publish import Published, error_outcome

log = logging.getLogger(__name__)


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
        policy: BotPolicy | None = None,
    ) -> None:
        """``policy`` names the repositories served; None leaves that check to the webhook."""
        self.queue = queue
        self.policy = policy
        self.ledger = queue.ledger
        self.cfg = cfg
        self.reporter = reporter
        self.planner = JobPlanner(cfg, self.ledger, self._need_reporter, self._report)
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
        if self.policy is not None and not self.policy.allows(trigger.repo):
            log.warning("delivery %s: %s is not one of our repositories; refused",
                        delivery_id, trigger.repo)
            self.ledger.finish(delivery_id, self.owner, JobState.DONE, ns="trg")
            return
        try:
            for job in self.planner.jobs_for(trigger):
                again = (trigger.command in (Command.RETRY, Command.RERUN)
                         or self._failed_before(job))
                if self.queue.submit_job(job, again=again):
                    self._announce(job)
        except Exception as exc:  # GitHub down, or a bug: retried, then reported
            transient = isinstance(exc, InfraError) and not _is_final(exc)
            if transient and int(raw["attempts"]) < self.settings.max_attempts:
                log.warning("delivery %s: %s; will retry", delivery_id, exc)
                self.ledger.requeue(delivery_id, self.owner, ns="trg")
                self.queue.enqueue_trigger_id(delivery_id, delay=self.settings.retry_delay)
                return
            log.error("delivery %s: giving up: %s", delivery_id, exc, exc_info=not transient)
            self.ledger.finish(delivery_id, self.owner, JobState.FAILED, ns="trg")
            self._report_trigger_failure(trigger, exc)
            return
        self.ledger.finish(delivery_id, self.owner, JobState.DONE, ns="trg")

    def _failed_before(self, job: Job) -> bool:
        """True when ``job`` ran before and the bot could not produce a result (run again)."""
        rec = self.ledger.get(job.key)
        return rec is not None and (
            rec.state == JobState.FAILED or rec.meta.get("conclusion") == str(Conclusion.ERROR)
        )

    def _report_trigger_failure(self, t: Trigger, exc: Exception) -> None:
        """A trigger that could not be handled ends in a visible error, with what to do."""
        if self.reporter is None or (t.pr is None and t.head_sha is None):
            return
        job = Job(JobKind.CHECK, repo=t.repo, pr=t.pr, head_sha=t.head_sha,
                  requested_by=t.actor or None, delivery_id=t.delivery_id)
        msg = str(exc) if isinstance(exc, PatchbotError) else f"{type(exc).__name__}: {exc}"
        detail = (
            f"patchbot could not handle the {t.event} event (delivery {t.delivery_id}):\n\n"
            f"```\n{msg}\n```\n\nTo run it again: redeliver the event from the webhook's"
            " settings, or comment `/patchbot retry`. To reproduce locally:"
            f" `patchbot check` on a checkout of {t.head_sha or 'the pull request head'}."
        )
        try:
            self._report(error_outcome(job, detail, title="patchbot could not handle this event"),
                         JobRecord(job, JobState.FAILED, 0, None, 0.0, {}))
        except Exception as report_exc:  # noqa: BLE001 - GitHub may be what failed
            log.error("delivery %s: the failure could not be reported either: %s",
                      t.delivery_id, report_exc)

    def series_line(self, job: Job) -> str:
        """The line a job works on, for the per-series lock (``linux:6.1``)."""
        comp = self.cfg.components.get(job.component)
        if job.tag and comp:
            line = comp.line_for_tag(job.tag)
            return line.name if line else job.tag.removeprefix(comp.tag_prefix)
        # No tag: the job uses the component's default series (the config chose it: the
        # newest line that has one), so it takes that line's lock.
        owners = [ln.name for ln in comp.lines if comp.line_series(ln) == comp.series_dir] \
            if comp else []
        if owners:
            return owners[-1]
        tracked = comp.tracked if comp else ()
        return tracked[0] if len(tracked) == 1 else "newest"

    def _announce(self, job: Job) -> None:
        """Show the job as queued on GitHub (check run) as soon as it is accepted."""
        if self.reporter is None:
            return
        rec = self.ledger.get(job.key)
        # A job run again keeps its last (completed) check run id: the reporter makes a new run.
        old = rec.meta.get("check_run_id") if rec else None
        try:
            cid = self.reporter.start_check(
                job, old, queued=True, details_url=self._details_url(job)
            )
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
            if rec.meta.get("pending_report"):
                self._publish_pending(rec)
                return
            if rec.attempts > self.settings.max_attempts:
                self.ledger.finish(key, self.owner, JobState.FAILED)
                self._report(error_outcome(job, f"gave up after {rec.attempts - 1} attempts"), rec)
                return

            def beat() -> None:
                self.ledger.heartbeat(key, self.owner, lease)
                self.ledger.acquire(lock, holder, lease)

            with Heartbeat(beat, every=max(lease / 4, 0.2)):
                self._execute(rec)
        finally:
            self.ledger.release(lock, holder)

    def _execute(self, rec: JobRecord) -> None:
        job = rec.job
        cid = rec.meta.get("check_run_id")
        if self.reporter is not None:
            try:
                cid = self.reporter.start_check(job, cid, details_url=self._details_url(job))
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
        rec = JobRecord.from_raw({**_raw(rec), "meta": {**rec.meta, "check_run_id": cid}})
        self._finish_with_report(outcome, rec)

    def _finish_with_report(self, outcome: JobOutcome, rec: JobRecord) -> None:
        """Publish ``outcome`` and finish the job, or, when GitHub rate limited the report,
        keep the outcome and publish it again once GitHub allows (the job is not re-run)."""
        key = rec.job.key
        published = self._report(outcome, rec)
        tries = int(rec.meta.get("report_tries", 0)) + 1
        if published.retry_after is not None and tries < self.settings.max_report_tries:
            self.ledger.set_meta(key, pending_report=_redacted(outcome).to_json(),
                                 report_tries=tries)
            self.ledger.requeue(key, self.owner)
            self.queue.enqueue_job_key(key, delay=published.retry_after)
            log.info("job %s: report rate limited, publishing again in %.0fs", key,
                     published.retry_after)
            return
        if rec.meta.get("pending_report"):
            self.ledger.set_meta(key, pending_report=None, report_tries=0)
        self.ledger.finish(key, self.owner, JobState.DONE)

    def _publish_pending(self, rec: JobRecord) -> None:
        """Publish the outcome a rate limit held back (the job itself ran already)."""
        outcome = JobOutcome.from_json(str(rec.meta["pending_report"]))
        self._finish_with_report(outcome, rec)

    def _details_url(self, job: Job) -> str | None:
        """Where the job's logs are served (the check run's "Details" link), if anywhere."""
        return f"{self.settings.logs_url}/{job.key}/" if self.settings.logs_url else None

    def _report(self, outcome: JobOutcome, rec: JobRecord) -> Published:
        job = outcome.job
        # A log tail or exception text in the report must not carry a secret to GitHub.
        outcome = _redacted(outcome)
        if self.reporter is None or not job.repo:
            log.info("job %s: %s (%s), not reported", job.key, outcome.conclusion, outcome.title)
            return Published()
        hint = self._details_url(job) or outcome.out_dir
        published = self.reporter.publish(outcome, rec.meta.get("check_run_id"), hint)
        self.ledger.set_meta(job.key, conclusion=str(outcome.conclusion),
                             report_failures=list(published.failures))
        if outcome.conclusion == Conclusion.ERROR and job.delivery_id:
            self.ledger.fail_trigger(job.delivery_id)  # a redelivery may run it again
        return published

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


def _redacted(outcome: JobOutcome) -> JobOutcome:
    return replace(outcome, title=redact(outcome.title), summary_md=redact(outcome.summary_md))


def _raw(rec: JobRecord) -> dict[str, object]:
    return {
        "job": rec.job.to_dict(),
        "state": rec.state,
        "attempts": rec.attempts,
        "owner": rec.owner,
        "lease_until": rec.lease_until,
        "meta": rec.meta,
    }


def _is_final(exc: BaseException) -> bool:
    """True when GitHub's answer will not change on a retry (the PR or repository is gone)."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "status", None) in (404, 410, 422):
            return True
        seen = seen.__cause__
    return False
