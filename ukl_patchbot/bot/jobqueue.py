"""The durable queue between `patchbot serve` and `patchbot worker`.

huey carries two kinds of task: ``patchbot.trigger`` (resolve a webhook
trigger into jobs) and ``patchbot.job`` (run one job). SQLite is the embedded
default; a ``redis://`` queue URL lets several worker machines share the work.
The `ukl_patchbot.bot.ledger.Ledger` stored next to the queue de-duplicates
deliveries, triggers and jobs and keeps the lease-based lifecycle that makes
jobs survive a worker being killed.

Configuration: ``PATCHBOT_QUEUE_URL`` (``sqlite:////abs/path.db`` or
``redis://host:port/db``); default ``sqlite:///<cache dir>/queue.sqlite3``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path

from huey import Huey, RedisHuey
from huey.storage import SqliteStorage

from ukl_patchbot.bot.ledger import JobState, Ledger, open_ledger, sqlite_path
from ukl_patchbot.bot.routing import Trigger
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.jobs import Job

log = logging.getLogger(__name__)

QUEUE_NAME = "ukl-patchbot"
TRIGGER_TASK = "patchbot.trigger"
JOB_TASK = "patchbot.job"

Handler = Callable[[str, str], None]  # (task kind, key)
# Fault injection for the crash tests: kill this process at the named intake step.
_FAULT_POINT = os.environ.get("PATCHBOT_FAULT_POINT", "")


def _fault(step: str) -> None:
    if step == _FAULT_POINT:
        os.kill(os.getpid(), signal.SIGKILL)


class Submitted(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


def queue_url_from_env(cache_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """The queue URL from ``PATCHBOT_QUEUE_URL``, else an SQLite file in ``cache_dir``."""
    env = os.environ if env is None else env
    url = env.get("PATCHBOT_QUEUE_URL", "").strip()
    if not url:
        return f"sqlite:///{cache_dir / 'queue.sqlite3'}"
    if sqlite_path(url):
        return url
    if url.startswith(("redis://", "rediss://", "unix://")):
        return url
    raise UserError(
        f"PATCHBOT_QUEUE_URL={url!r} is not a queue URL I know",
        hint="use sqlite:////absolute/path/queue.db or redis://host:port/0",
    )


class _SqliteStorage(SqliteStorage):
    """huey's SQLite storage in WAL mode with ``synchronous=NORMAL``.

    huey offers FULL (an fsync per commit, ~4 ms here, which queues up the
    webhook's answers under load) or OFF (corruptible on power loss). NORMAL in
    WAL mode cannot corrupt the file and survives any crash of the process; a
    power loss may drop the last commits, as with most queues.
    """

    def _create_connection(self):  # type: ignore[no-untyped-def]
        conn = super()._create_connection()
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn


def make_huey(url: str) -> Huey:
    """A huey instance for ``url`` (no result store: outcomes go to GitHub, not to huey)."""
    file = sqlite_path(url)
    if file:
        path = Path(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        return Huey(
            QUEUE_NAME, storage_class=_SqliteStorage, filename=str(path), results=False, timeout=30
        )
    return RedisHuey(QUEUE_NAME, url=url, results=False)


class JobQueue:
    """Producer and consumer side of the queue. The worker attaches a handler; serve does not."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.huey = make_huey(url)
        self.ledger: Ledger = open_ledger(url)
        self._handler: Handler | None = None
        # SQLite allows one writer; waiting on a Python lock is FIFO-ish and wakes at once,
        # where SQLite's busy handler sleeps in growing steps (long tails under load).
        self._submit_lock = threading.Lock() if sqlite_path(url) else None

        @self.huey.task(name=TRIGGER_TASK)
        def trigger_task(delivery_id: str) -> None:
            self._dispatch("trigger", delivery_id)

        @self.huey.task(name=JOB_TASK)
        def job_task(key: str) -> None:
            self._dispatch("job", key)

        self._trigger_task = trigger_task
        self._job_task = job_task

    def attach(self, handler: Handler) -> None:
        """Give the queue the function that executes tasks (the worker's)."""
        self._handler = handler

    def _dispatch(self, kind: str, key: str) -> None:
        if self._handler is None:
            raise RuntimeError("no worker attached to this queue")
        self._handler(kind, key)

    # -- producer side (the webhook) --------------------------------------
    def submit_trigger(self, trigger: Trigger) -> Submitted:
        """Queue ``trigger`` unless its delivery id (or job identity) was seen before."""
        if self._submit_lock is None:
            return self._submit(trigger)
        with self._submit_lock:
            return self._submit(trigger)

    def _submit(self, trigger: Trigger) -> Submitted:
        """Record, then queue. Crash-safe at every step (see `drain_outbox`):

        1. the trigger is recorded under its delivery id (atomic; the record *is* the
           de-duplication, so no claim can outlive a failed record);
        2. its job identity is tied to it (a repeat of a live delivery is closed as a
           duplicate; one of a failed delivery runs again);
        3. it goes to the queue, 4. the record is marked queued.

        A kill between 1 and 4 leaves a record not marked queued: GitHub's redelivery
        queues it then (202), and so does the next start of `patchbot serve` or the
        worker's reaper. Only a delivery whose record exists and is queued is answered
        "duplicate".
        """
        did = trigger.delivery_id
        existing = self.ledger.park_new(did, trigger.to_dict())
        _fault("after-park")
        if existing is not None:
            if existing.get("enqueued", True):
                log.info("delivery %s: duplicate delivery id, dropped", did)
                return Submitted.DUPLICATE
            log.warning("delivery %s: recorded earlier but never queued; queuing it now", did)
            self._enqueue_parked(did)
            return Submitted.QUEUED
        dedup = trigger.dedup_key
        if dedup:
            holder = self.ledger.claim_identity(dedup, did)
            _fault("after-identity")
            if holder is not None:
                log.info(
                    "delivery %s: same repo/PR/sha/command as delivery %s, dropped", did, holder
                )
                self.ledger.drop_duplicate(did, holder)
                return Submitted.DUPLICATE
        self._enqueue_parked(did)
        return Submitted.QUEUED

    def _enqueue_parked(self, delivery_id: str) -> None:
        try:
            self._trigger_task(delivery_id)
            _fault("after-enqueue")
            self.ledger.mark_enqueued(delivery_id)
        except Exception as exc:
            # The record stays, not marked queued: a redelivery or the next drain queues it.
            raise InfraError(f"cannot enqueue delivery {delivery_id}: {exc}") from exc

    def drain_outbox(self, older_than: float | None = None) -> int:
        """Queue every recorded trigger that a crash kept from the queue; how many."""
        n = 0
        cutoff = None if older_than is None else time.time() - older_than
        for did in self.ledger.unqueued_triggers(cutoff):
            log.warning("delivery %s: recorded but not queued (a crash?); queuing it now", did)
            self._enqueue_parked(did)
            n += 1
        return n

    # -- worker side -------------------------------------------------------
    def submit_job(self, job: Job, *, again: bool = False, delay: float = 0) -> bool:
        """Record and queue ``job``; False if a job with the same key already exists."""
        if not self.ledger.register(job, again=again):
            log.info(
                "job %s (%s %s PR %s): already known, not queued again",
                job.key,
                job.kind,
                job.repo,
                job.pr,
            )
            return False
        self.enqueue_job_key(job.key, delay=delay)
        return True

    def enqueue_job_key(self, key: str, *, delay: float = 0) -> None:
        if delay > 0:
            self._job_task.schedule((key,), delay=delay)
        else:
            self._job_task(key)

    def enqueue_trigger_id(self, delivery_id: str, *, delay: float = 0) -> None:
        if delay > 0:
            self._trigger_task.schedule((delivery_id,), delay=delay)
        else:
            self._trigger_task(delivery_id)

    def reap(self, max_attempts: int, stale_queued_after: float | None = None) -> dict[str, int]:
        """Put the work of dead workers back in the queue; count what happened.

        Running records whose lease expired are queued again (or failed when out of
        attempts). With ``stale_queued_after``, queued records nobody has touched for
        that long are sent again too: a worker can die between taking a task from
        huey and recording that it started, and huey would not give the task back.
        A spare task is harmless: starting a job is a compare-and-set in the ledger.
        """
        # Records a crashed `serve` kept from the queue (older than an in-flight submit).
        counts = {"requeued": 0, "failed": 0, "resent": self.drain_outbox(5.0)}
        if stale_queued_after is not None:
            older_than = time.time() - stale_queued_after
            for ns in ("trg", "job"):
                for key in self.ledger.keys_in_state(JobState.QUEUED, ns):
                    if self.ledger.touch_queued(key, ns, older_than=older_than):
                        log.warning(
                            "%s %s: queued but untouched for %.0fs; sent again",
                            ns,
                            key,
                            stale_queued_after,
                        )
                        counts["resent"] += 1
                        if ns == "job":
                            self.enqueue_job_key(key)
                        else:
                            self.enqueue_trigger_id(key)
        for ns in ("trg", "job"):
            for key in self.ledger.running_keys(ns):
                state = self.ledger.reclaim_stale(key, max_attempts, ns)
                if state is None:
                    continue
                log.warning("%s %s: its worker died (lease expired); now %s", ns, key, state)
                if state == JobState.QUEUED:
                    counts["requeued"] += 1
                    if ns == "job":
                        self.enqueue_job_key(key)
                    else:
                        self.enqueue_trigger_id(key)
                else:
                    counts["failed"] += 1
                    if self._handler is not None and ns == "job":
                        self._handler("gave_up", key)
        return counts

    def drain(self, *, max_tasks: int = 1000, timeout: float = 60.0) -> int:
        """Run queued and due scheduled tasks in this thread until none is left (tests)."""
        done = 0
        deadline = time.monotonic() + timeout
        while done < max_tasks and time.monotonic() < deadline:
            for task in self.huey.read_schedule():
                self.huey.enqueue(task)
            task = self.huey.dequeue()
            if task is None:
                if not self.huey.scheduled():
                    break
                time.sleep(0.05)
                continue
            self.huey.execute(task)
            done += 1
        return done

    def pending(self) -> int:
        """Tasks waiting in the queue or the schedule."""
        return int(self.huey.pending_count()) + int(self.huey.scheduled_count())

