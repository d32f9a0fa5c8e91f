"""Open the history (migrating it to the newest schema), write checks, read them back.

The location is ``PATCHBOT_HISTORY_URL``, else ``[history] url`` in
patchbot.toml, else SQLite at ``<cache>/history.sqlite``. A PostgreSQL URL
(``postgresql+psycopg://user@host/db``) lets workers on several machines
share one history.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ukl_patchbot.core.config import CONFIG_NAME, Config
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.history import schema
from ukl_patchbot.history.model import (
    CheckRecord,
    FindingRecord,
    HistoryVerdict,
    Origin,
    Source,
    VariantRecord,
)

log = logging.getLogger(__name__)

URL_ENV = "PATCHBOT_HISTORY_URL"
SQLITE_NAME = "history.sqlite"
MIGRATIONS = "ukl_patchbot.history:migrations"
_IN_PROCESS = threading.Lock()
_VARIANT_FIELDS = tuple(f.name for f in dataclasses.fields(VariantRecord))
_FINDING_FIELDS = tuple(f.name for f in dataclasses.fields(FindingRecord))


def history_url(cfg: Config, env: Mapping[str, str] | None = None) -> str:
    """Where this checkout's history lives (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get(URL_ENV):
        return env[URL_ENV]
    toml = cfg.root / CONFIG_NAME
    try:
        data = tomllib.loads(toml.read_text()) if toml.is_file() else {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{toml}: cannot read [history]: {exc}") from None
    url = data.get("history", {}).get("url")
    if url is not None and (not isinstance(url, str) or not url):
        raise UserError(f"{toml}: [history] url must be a non-empty string",
                        hint='e.g. url = "postgresql+psycopg://patchbot@db.example/patchbot"')
    return url or f"sqlite:///{cfg.cache_dir / SQLITE_NAME}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")  # a worker and `patchbot check` may write at once
    cur.close()


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any unparsable URL is shown as a placeholder
        return "<unparsable URL>"


def migrate(conn: Connection) -> None:
    """Bring the schema on ``conn`` to the newest Alembic revision (``upgrade head``)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    acfg = AlembicConfig()
    acfg.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(acfg).get_current_head()
    if MigrationContext.configure(conn).get_current_revision() == head:
        return
    acfg.attributes["connection"] = conn
    command.upgrade(acfg, "head")
    conn.commit()


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """This process's migration lock and, for SQLite, a file lock beside the database.

    SQLite DDL takes no lock up front, so two processes opening a new history
    at once would both create its tables. (PostgreSQL takes
    an advisory lock in the migration environment instead.)"""
    # Alembic runs its env.py through module-level proxies: one migration per process at a time.
    with _IN_PROCESS:
        if not url.startswith("sqlite:///"):
            yield
            return
        import fcntl

        with open(url.removeprefix("sqlite:///") + ".migrate-lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


class HistoryStore:
    """One history database. Thread-safe: each call takes its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        return _redacted(str(self.engine.url))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def record(self, rec: CheckRecord, *, keep_existing: bool = False) -> int:
        """Write ``rec``; an earlier record with the same run key keeps its id, takes the new content.

        With ``keep_existing`` an earlier record stays as it is (a check answered
        from the cache must not replace the run that measured it).
        """
        for attempt in (1, 2):
            try:
                with self._tx() as conn:
                    return self._replace(conn, rec, keep_existing)
            except IntegrityError:
                # Another machine recorded the same run key between our delete and insert.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _replace(self, conn: Connection, rec: CheckRecord, keep_existing: bool) -> int:
        old = conn.execute(select(schema.checks.c.id)
                           .where(schema.checks.c.run_key == rec.run_key)).scalar()
        if old is not None and keep_existing:
            return int(old)
        o = rec.origin
        row = {
            "run_key": rec.run_key, "recorded_at": rec.recorded_at, "source": o.source.value,
            "component": rec.component, "tag": rec.tag, "line": rec.line,
            "glibc_tag": rec.glibc_tag, "linux_series": rec.linux_series,
            "glibc_series": rec.glibc_series, "tree_id": rec.tree_id,
            "verdict": rec.verdict.value, "attribution": rec.attribution,
            "attribution_text": rec.attribution_text, "title": rec.title,
            "syscall_ratio": rec.syscall_ratio, "accel": rec.accel, "duration": rec.duration,
            "from_cache": rec.from_cache, "out_dir": rec.out_dir,
            "logs": json.dumps([list(x) for x in rec.logs]), "repo": o.repo, "pr": o.pr,
            "head_sha": o.head_sha, "report_md": rec.report_md,
        }
        if old is None:
            check_id = int(conn.execute(insert(schema.checks).values(**row)
                                        .returning(schema.checks.c.id)).scalar_one())
        else:  # the same check again: its id (and links to it) stay, its content is replaced
            check_id = int(old)
            conn.execute(delete(schema.findings).where(schema.findings.c.check_id == check_id))
            conn.execute(delete(schema.check_variants)
                         .where(schema.check_variants.c.check_id == check_id))
            conn.execute(update(schema.checks).where(schema.checks.c.id == check_id)
                         .values(**row))
        if rec.variants:
            conn.execute(insert(schema.check_variants), [
                {"check_id": check_id, **{k: getattr(v, k) for k in _VARIANT_FIELDS}}
                for v in rec.variants])
        if rec.findings:
            conn.execute(insert(schema.findings), [
                {"check_id": check_id, **{k: getattr(f, k) for k in _FINDING_FIELDS}}
                for f in rec.findings])
        return check_id

    def checks(self, *, limit: int | None = None, with_report: bool = False,
               check_id: int | None = None) -> list[CheckRecord]:
        """Recorded checks, newest first, with their variants and findings.

        The report and the log list, needed only for a check's own page, are read
        with ``with_report`` (the matrix of 500 checks stays fast without them).
        """
        c = schema.checks.c
        heavy = ("report_md", "logs")
        cols = [col for col in schema.checks.c if with_report or col.name not in heavy]
        q = select(*cols).order_by(c.recorded_at.desc(), c.id.desc())
        if check_id is not None:
            q = q.where(c.id == check_id)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            ids = [r["id"] for r in rows]
            variants: dict[int, list[VariantRecord]] = {i: [] for i in ids}
            found: dict[int, list[FindingRecord]] = {i: [] for i in ids}
            if ids:
                vt, ft = schema.check_variants.c, schema.findings.c
                # Columns in dataclass field order: rows become records positionally (fast).
                vq = select(vt.check_id, *(vt[k] for k in _VARIANT_FIELDS)).order_by(vt.id)
                fq = select(ft.check_id, *(ft[k] for k in _FINDING_FIELDS)).order_by(ft.id)
                if check_id is not None or limit is not None:
                    vq = vq.where(vt.check_id.in_(ids))
                    fq = fq.where(ft.check_id.in_(ids))
                for cid, *vals in conn.execute(vq):
                    if cid in variants:
                        variants[cid].append(VariantRecord(*vals))
                for cid, *vals in conn.execute(fq):
                    if cid in found:
                        found[cid].append(FindingRecord(*vals))
        return [_record(r, variants[r["id"]], found[r["id"]]) for r in rows]

    def count(self) -> int:
        """How many checks are recorded."""
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.checks)).scalar_one())

    def version(self) -> tuple[int, int | None, datetime | None]:
        """Changes whenever a check is recorded or replaced (for caching rendered pages)."""
        from sqlalchemy import func

        c = schema.checks.c
        with self.engine.connect() as conn:
            n, top, last = conn.execute(select(func.count(), func.max(c.id),
                                               func.max(c.recorded_at))).one()
        return int(n), top, last

    def check(self, check_id: int) -> CheckRecord | None:
        """One check with its report, or None."""
        found = self.checks(check_id=check_id, with_report=True)
        return found[0] if found else None


def _record(r: Any, variants: list[VariantRecord], found: list[FindingRecord]) -> CheckRecord:
    at = r["recorded_at"]
    if at.tzinfo is None:  # SQLite keeps no time zone; we always write UTC
        at = at.replace(tzinfo=UTC)
    origin = Origin(Source(r["source"]), None, r["repo"], r["pr"], r["head_sha"])
    return CheckRecord(
        run_key=r["run_key"], recorded_at=at, origin=origin, component=r["component"],
        tag=r["tag"], line=r["line"], glibc_tag=r["glibc_tag"], linux_series=r["linux_series"],
        glibc_series=r["glibc_series"], tree_id=r["tree_id"],
        verdict=HistoryVerdict(r["verdict"]), attribution=r["attribution"],
        attribution_text=r["attribution_text"], title=r["title"],
        syscall_ratio=r["syscall_ratio"], accel=r["accel"], duration=r["duration"],
        from_cache=bool(r["from_cache"]), out_dir=r["out_dir"],
        report_md=r.get("report_md") or "",
        logs=tuple((str(a), str(b)) for a, b in json.loads(r.get("logs") or "[]")),
        variants=tuple(variants), findings=tuple(found), id=r["id"])


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean our PostgreSQL driver (psycopg 3)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


def open_store(url: str) -> HistoryStore:
    """Connect to the history at ``url`` and migrate it to the newest schema."""
    url = normalize_url(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql+psycopg://"):
        try:
            import psycopg  # noqa: F401 - the driver SQLAlchemy loads for this URL
        except ImportError:
            raise UserError("the PostgreSQL history needs psycopg",
                            hint="reinstall: .venv/bin/pip install -e .") from None
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise UserError(f"history URL {_redacted(url)} is not usable: {exc}",
                        hint=f"set {URL_ENV} or [history] url to a sqlite:/// or "
                             "postgresql+psycopg:// URL") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with _migration_lock(url), engine.connect() as conn:
            migrate(conn)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise InfraError(f"cannot open the history at {_redacted(url)}: {exc}",
                         hint="check that the database is reachable and the user may create "
                              "tables") from None
    return HistoryStore(engine)


def open_for(cfg: Config) -> HistoryStore:
    """The history of this checkout (see `history_url`)."""
    return open_store(history_url(cfg))
