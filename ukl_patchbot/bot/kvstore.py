"""Small key-value stores with compare-and-set, for the job ledger.

SQLite (one table, `update` under ``BEGIN IMMEDIATE``) and Redis (``SET NX``
for markers, WATCH/MULTI for compare-and-set) offer the same five calls.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

Update = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class KV(Protocol):
    """What the ledger needs from a store."""

    def add(self, key: str, value: str, ttl: float) -> bool: ...
    def delete(self, key: str) -> None: ...
    def update(self, key: str, fn: Update) -> dict[str, Any] | None: ...
    def get(self, key: str) -> dict[str, Any] | None: ...
    def keys(self, prefix: str) -> Iterator[str]: ...


class SqliteKV:
    """Key-value rows in SQLite; `update` runs under ``BEGIN IMMEDIATE`` (a write lock)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS patchbot_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
                " expires REAL)"
            )

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, *rest: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> SqliteKV._Tx:
        return SqliteKV._Tx(self._db())

    def add(self, key: str, value: str, ttl: float) -> bool:
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM patchbot_kv WHERE key = ? AND expires < ?", (key, now))
            cur = db.execute(
                "INSERT OR IGNORE INTO patchbot_kv (key, value, expires) VALUES (?, ?, ?)",
                (key, value, now + ttl),
            )
            return cur.rowcount == 1

    def delete(self, key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM patchbot_kv WHERE key = ?", (key,))

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT value FROM patchbot_kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def update(self, key: str, fn: Update) -> dict[str, Any] | None:
        with self._tx() as db:
            row = db.execute("SELECT value FROM patchbot_kv WHERE key = ?", (key,)).fetchone()
            new = fn(json.loads(row[0]) if row else None)
            if new is not None:
                db.execute(
                    "INSERT OR REPLACE INTO patchbot_kv (key, value, expires) VALUES (?, ?, NULL)",
                    (key, json.dumps(new, sort_keys=True)),
                )
            return new

    def keys(self, prefix: str) -> Iterator[str]:
        rows = (
            self._db()
            .execute(
                "SELECT key FROM patchbot_kv WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            )
            .fetchall()
        )
        return iter([r[0] for r in rows])


class RedisKV:
    """The same interface on Redis: ``SET NX EX`` for markers, WATCH/MULTI for compare-and-set."""

    def __init__(self, url: str, namespace: str = "patchbot:") -> None:
        import redis

        self.r = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.ns = namespace

    def add(self, key: str, value: str, ttl: float) -> bool:
        return bool(self.r.set(self.ns + key, value, nx=True, px=max(1, int(ttl * 1000))))

    def delete(self, key: str) -> None:
        self.r.delete(self.ns + key)

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self.r.get(self.ns + key)
        return json.loads(raw) if raw else None

    def update(self, key: str, fn: Update) -> dict[str, Any] | None:
        import redis

        full = self.ns + key
        for _ in range(100):  # bounded: contention on one job key is rare and short
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(full)
                    raw: Any = pipe.get(full)  # immediate mode after WATCH: the value itself
                    new = fn(json.loads(raw) if raw else None)
                    pipe.multi()
                    if new is not None:
                        pipe.set(full, json.dumps(new, sort_keys=True))
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue
        raise RuntimeError(f"ledger: could not update {key} (too much contention)")

    def keys(self, prefix: str) -> Iterator[str]:
        n = len(self.ns)
        return (k.decode()[n:] for k in self.r.scan_iter(match=f"{self.ns}{prefix}*", count=500))
