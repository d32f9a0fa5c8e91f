"""The job ledger: de-duplication markers, job lifecycle with leases, and series locks.

huey moves messages; it does not acknowledge them (a task is deleted from the
queue when a worker takes it), so a worker killed mid job would lose it. The
ledger is the durable truth next to the queue: every job has a record
(queued → running → done | failed) with an attempt count and a lease that the
running worker keeps renewing. A record still "running" after its lease ran
out belongs to a dead worker; the reaper puts it back in the queue, or marks
it failed once it has used up its attempts.

Two backends (`ukl_patchbot.bot.kvstore`) share one key-value interface with compare-and-set:
SQLite (the embedded default, same file as the huey queue) and Redis (for
several worker machines).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ukl_patchbot.bot.kvstore import KV, RedisKV, SqliteKV
from ukl_patchbot.core.jobs import Job

__all__ = [
    "KV",
    "JobRecord",
    "JobState",
    "Ledger",
    "RedisKV",
    "SqliteKV",
    "open_ledger",
    "sqlite_path",
]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class JobRecord:
    job: Job
    state: JobState
    attempts: int
    owner: str | None
    lease_until: float
    meta: dict[str, Any]

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> JobRecord:
        return cls(
            job=Job.from_dict(raw["job"]),
            state=JobState(raw["state"]),
            attempts=int(raw["attempts"]),
            owner=raw.get("owner"),
            lease_until=float(raw.get("lease_until", 0)),
            meta=dict(raw.get("meta", {})),
        )


class Ledger:
    """Job lifecycle, de-duplication and locks on top of a `KV` store."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv

    # -- de-duplication -------------------------------------------------
    def claim(self, marker: str, ttl: float = 30 * 86400) -> bool:
        """True the first time ``marker`` (e.g. ``delivery:<id>``) is claimed within ``ttl``."""
        return self.kv.add(f"seen:{marker}", str(time.time()), ttl)

    def unclaim(self, marker: str) -> None:
        self.kv.delete(f"seen:{marker}")

    # -- approvals of untrusted pull requests --------------------------------
    def approve(self, repo: str, pr: int, sha: str, by: str) -> None:
        """Record that maintainer ``by`` approved building head ``sha`` of ``repo#pr``."""
        self.kv.update(
            f"approved:{repo.lower()}#{pr}@{sha}", lambda _raw: {"by": by, "at": time.time()}
        )

    def approved_by(self, repo: str, pr: int, sha: str) -> str | None:
        raw = self.kv.get(f"approved:{repo.lower()}#{pr}@{sha}")
        return str(raw["by"]) if raw else None

    # -- jobs -----------------------------------------------------------
    def park_trigger(self, delivery_id: str, data: dict[str, Any]) -> None:
        """Record a trigger so that it survives a worker dying while resolving it."""
        self.kv.update(
            f"trg:{delivery_id}",
            lambda _raw: {
                "trigger": data,
                "state": JobState.QUEUED,
                "attempts": 0,
                "owner": None,
                "lease_until": 0,
                "meta": {},
                "updated": time.time(),
            },
        )

    def park_new(self, delivery_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Record a new delivery's trigger, not yet in the queue (the intake's outbox).

        One atomic step that is also the delivery's de-duplication: returns None when
        the record was created (or re-created because the earlier attempt failed), else
        the existing record, which the caller may still have to queue (``enqueued``
        false: the process died between recording and queuing it).
        """
        existing: list[dict[str, Any]] = []

        def fn(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            existing.clear()  # decided afresh when the store retries fn
            if raw is not None and raw.get("state") != JobState.FAILED:
                existing.append(raw)
                return None
            return {
                "trigger": data,
                "state": JobState.QUEUED,
                "attempts": 0,
                "owner": None,
                "lease_until": 0,
                "meta": {"redelivered": raw is not None} if raw is not None else {},
                "enqueued": False,
                "updated": time.time(),
            }

        self.kv.update(f"trg:{delivery_id}", fn)
        return existing[0] if existing else None

    def mark_enqueued(self, delivery_id: str) -> None:
        def fn(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            if raw is None or raw.get("enqueued", True):
                return None
            return {**raw, "enqueued": True}

        self.kv.update(f"trg:{delivery_id}", fn)

    def unqueued_triggers(self, older_than: float | None = None) -> list[str]:
        """Delivery ids recorded but never handed to the queue (a crash in between)."""
        out = []
        for k in self.kv.keys("trg:"):
            raw = self.kv.get(k)
            if (
                raw
                and raw.get("enqueued", True) is False
                and raw["state"] == JobState.QUEUED
                and (older_than is None or float(raw.get("updated", 0)) < older_than)
            ):
                out.append(k.split(":", 1)[1])
        return out

    def claim_identity(self, ident: str, delivery_id: str) -> str | None:
        """Tie job identity ``ident`` (repo, PR, sha, command) to ``delivery_id``.

        Returns the delivery id already holding it (a duplicate), or None when this
        delivery now holds it: it was free, held by this delivery, or held by one
        whose handling failed (a close/reopen or redelivery then runs it again).
        """
        key = f"ident:{ident}"
        prev = self.kv.get(key)
        if prev and prev.get("delivery") != delivery_id:
            state = self.state_of(str(prev["delivery"]), ns="trg")
            if state is not None and state != JobState.FAILED:
                return str(prev["delivery"])
        self.kv.update(key, lambda _raw: {"delivery": delivery_id, "at": time.time()})
        return None

    def drop_duplicate(self, delivery_id: str, of: str) -> None:
        """Close a parked trigger that turned out to repeat delivery ``of``."""
        self._transition(
            f"trg:{delivery_id}",
            lambda r: r["state"] == JobState.QUEUED,
            {"state": JobState.DONE, "enqueued": True, "duplicate_of": of},
        )

    def fail_trigger(self, delivery_id: str) -> None:
        """Mark a resolved trigger failed because its job could not produce a result, so
        that its redelivery (or a reopen with the same identity) runs it again."""
        self._transition(
            f"trg:{delivery_id}", lambda r: r["state"] == JobState.DONE, {"state": JobState.FAILED}
        )

    def trigger_data(self, delivery_id: str) -> dict[str, Any] | None:
        raw = self.kv.get(f"trg:{delivery_id}")
        return raw["trigger"] if raw else None

    def register(self, job: Job, *, again: bool = False) -> bool:
        """Record ``job`` as queued; False if its key exists (unless ``again`` and finished)."""
        created = False

        def fn(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            # Decided afresh on every call: the store retries fn after a lost
            # compare-and-set, and a stale True would claim a job another took.
            nonlocal created
            created = False
            if raw is not None and not (again and raw["state"] in (JobState.DONE, JobState.FAILED)):
                return None
            created = True
            meta = raw.get("meta", {}) if raw else {}
            return {
                "job": job.to_dict(),
                "state": JobState.QUEUED,
                "attempts": 0,
                "owner": None,
                "lease_until": 0,
                "meta": meta,
                "updated": time.time(),
            }

        self.kv.update(f"job:{job.key}", fn)
        if created and job.repo and job.pr:
            self.kv.update(f"last:{job.repo}#{job.pr}", lambda _raw: {"key": job.key})
        return created

    def get(self, key: str) -> JobRecord | None:
        raw = self.kv.get(f"job:{key}")
        return JobRecord.from_raw(raw) if raw else None

    def state_of(self, key: str, ns: str = "job") -> JobState | None:
        raw = self.kv.get(f"{ns}:{key}")
        return JobState(raw["state"]) if raw else None

    def last_job_for(self, repo: str, pr: int) -> JobRecord | None:
        ref = self.kv.get(f"last:{repo}#{pr}")
        return self.get(ref["key"]) if ref else None

    def start(self, key: str, owner: str, lease: float, ns: str = "job") -> dict[str, Any] | None:
        """Move a queued job to running for ``owner``; None if it is not queued."""
        return self._transition(
            f"{ns}:{key}",
            lambda r: r["state"] == JobState.QUEUED,
            {
                "state": JobState.RUNNING,
                "owner": owner,
                "lease_until": time.time() + lease,
            },
            bump=True,
        )

    def heartbeat(self, key: str, owner: str, lease: float, ns: str = "job") -> bool:
        return (
            self._transition(
                f"{ns}:{key}",
                lambda r: r["state"] == JobState.RUNNING and r["owner"] == owner,
                {"lease_until": time.time() + lease},
            )
            is not None
        )

    def finish(self, key: str, owner: str | None, state: JobState, ns: str = "job") -> bool:
        """Mark done or failed; only the owner may (None: anyone, used by the reaper)."""
        return (
            self._transition(
                f"{ns}:{key}",
                lambda r: r["state"] == JobState.RUNNING and (owner is None or r["owner"] == owner),
                {"state": state, "owner": None, "lease_until": 0},
            )
            is not None
        )

    def requeue(self, key: str, owner: str, ns: str = "job") -> bool:
        """Give a running job back to the queue (e.g. an infrastructure error worth a retry)."""
        return (
            self._transition(
                f"{ns}:{key}",
                lambda r: r["state"] == JobState.RUNNING and r["owner"] == owner,
                {"state": JobState.QUEUED, "owner": None, "lease_until": 0},
            )
            is not None
        )

    def reclaim_stale(self, key: str, max_attempts: int, ns: str = "job") -> JobState | None:
        """If ``key`` runs on an expired lease: queued again, or failed when out of attempts."""
        result: list[JobState] = []
        now = time.time()

        def fn(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            if raw is None or raw["state"] != JobState.RUNNING or raw["lease_until"] >= now:
                return None
            state = JobState.FAILED if raw["attempts"] >= max_attempts else JobState.QUEUED
            result.append(state)
            return {
                **raw,
                "state": state,
                "owner": None,
                "lease_until": 0,
                "updated": now,
                "meta": {**raw.get("meta", {}), "crashed_owner": raw["owner"]},
            }

        self.kv.update(f"{ns}:{key}", fn)
        return result[0] if result else None

    def running_keys(self, ns: str = "job") -> list[str]:
        return self.keys_in_state(JobState.RUNNING, ns)

    def keys_in_state(self, state: JobState, ns: str = "job") -> list[str]:
        keys = []
        for k in self.kv.keys(f"{ns}:"):
            raw = self.kv.get(k)
            if raw and raw["state"] == state:
                keys.append(k.split(":", 1)[1])
        return keys

    def touch_queued(self, key: str, ns: str = "job", older_than: float | None = None) -> bool:
        """Mark a queued record as seen now; with ``older_than``, only if it was not seen since."""
        return (
            self._transition(
                f"{ns}:{key}",
                lambda r: (
                    r["state"] == JobState.QUEUED
                    and (older_than is None or float(r.get("updated", 0)) < older_than)
                ),
                {},
            )
            is not None
        )

    def set_meta(self, key: str, **values: Any) -> None:
        def fn(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            if raw is None:
                return None
            return {**raw, "meta": {**raw.get("meta", {}), **values}}

        self.kv.update(f"job:{key}", fn)

    def _transition(
        self,
        rkey: str,
        ok: Callable[[dict[str, Any]], bool],
        changes: dict[str, Any],
        bump: bool = False,
    ) -> dict[str, Any] | None:
        def fn(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            if raw is None or not ok(raw):
                return None
            new = {**raw, **changes, "updated": time.time()}
            if bump:
                new["attempts"] = raw["attempts"] + 1
            return new

        return self.kv.update(rkey, fn)

    # -- locks ----------------------------------------------------------
    def acquire(self, name: str, owner: str, lease: float) -> bool:
        """Take lock ``name`` for ``owner`` unless someone else holds an unexpired lease on it."""
        got = False
        now = time.time()

        def fn(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            # Decided afresh on every call: after a lost compare-and-set (Redis
            # WATCH) fn runs again, and a stale True let two workers hold one lock.
            nonlocal got
            got = False
            if raw is not None and raw["owner"] != owner and raw["until"] >= now:
                return None
            got = True
            return {"owner": owner, "until": now + lease}

        self.kv.update(f"lock:{name}", fn)
        return got

    def release(self, name: str, owner: str) -> None:
        def fn(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            if raw is None or raw["owner"] != owner:
                return None
            return {"owner": None, "until": 0}

        self.kv.update(f"lock:{name}", fn)


def sqlite_path(queue_url: str) -> str | None:
    """The file of an ``sqlite:////abs/path`` URL (four slashes: scheme, then an absolute path)."""
    if not queue_url.startswith("sqlite:///"):
        return None
    path = queue_url[len("sqlite:///") :]
    return path if path.startswith("/") else None


def open_ledger(queue_url: str) -> Ledger:
    """The ledger stored alongside the queue named by ``queue_url``."""
    path = sqlite_path(queue_url)
    if path:
        return Ledger(SqliteKV(path))
    if queue_url.startswith(("redis://", "rediss://", "unix://")):
        return Ledger(RedisKV(queue_url))
    raise ValueError(f"unsupported queue URL {queue_url!r}")
