"""Ledger decisions survive a retried compare-and-set (Redis WATCH lost to another worker).

Found by a cold CI run: two workers on one Redis both ran jobs of the same
series, because `acquire` remembered "got it" from an attempt whose
transaction was then lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ukl_patchbot.bot.kvstore import SqliteKV, Update
from ukl_patchbot.bot.ledger import Ledger
from ukl_patchbot.core.jobs import Job, JobKind


class LosesFirstRace:
    """A KV whose first compare-and-set on each key loses to another writer, as WATCH does."""

    def __init__(self, inner: SqliteKV, other_writes: dict[str, dict[str, Any]]) -> None:
        self.inner = inner
        self.other_writes = other_writes

    def add(self, key: str, value: str, ttl: float) -> bool:
        return self.inner.add(key, value, ttl)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.inner.get(key)

    def keys(self, prefix: str) -> Iterator[str]:
        return self.inner.keys(prefix)

    def update(self, key: str, fn: Update) -> dict[str, Any] | None:
        if key in self.other_writes:
            fn(self.inner.get(key))  # our attempt, computed on the old value ...
            theirs = self.other_writes.pop(key)
            self.inner.update(key, lambda _raw: theirs)  # ... loses: the other wrote first
        return self.inner.update(key, fn)  # the retry sees their value


def test_lost_race_does_not_grant_the_lock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = {"lock:series:linux:6.1": {"owner": "worker-b", "until": 9e12}}
    ledger = Ledger(LosesFirstRace(SqliteKV(str(tmp_path / "l.db")), other))
    assert ledger.acquire("series:linux:6.1", "worker-a", lease=60) is False
    assert ledger.kv.get("lock:series:linux:6.1")["owner"] == "worker-b"


def test_lost_race_does_not_register_the_job_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    job = Job(kind=JobKind.CHECK, repo="o/r", pr=1, head_sha="a" * 40)
    inner = SqliteKV(str(tmp_path / "l.db"))
    first = Ledger(inner)
    assert first.register(job) is True
    record = inner.get(f"job:{job.key}")
    assert record is not None
    inner.delete(f"job:{job.key}")
    ledger = Ledger(LosesFirstRace(inner, {f"job:{job.key}": record}))
    assert ledger.register(job) is False
