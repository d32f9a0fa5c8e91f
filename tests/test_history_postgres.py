"""The history on a real PostgreSQL server (started and stopped here): migrations, records,
retries from two machines at once, the dashboard reading it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.helpers import history as seeded
from tests.helpers import reports
from tests.helpers.postgres import pg_bindir, postgres_server
from ukl_patchbot.dashboard import render, views
from ukl_patchbot.history import model, schema, store
from ukl_patchbot.history.model import Origin, Source

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(pg_bindir() is None, reason="needs Debian's postgresql")]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def test_migrates_records_and_reads_back(pg_url: str) -> None:
    h = store.open_store(pg_url)
    with h.engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        assert ctx.get_current_revision() == "0001"
        assert compare_metadata(ctx, schema.metadata) == []
    seeded.seed(h)
    checks = h.checks()
    assert len(checks) == 6 and checks[0].recorded_at.tzinfo is not None
    m = views.matrix(checks)
    assert [g.line for g in m.groups] == ["6.12", "6.1"]
    page = render.findings_page(checks)
    assert "&lt;script&gt;alert(" in page and "<script" not in page
    h.close()


def test_the_same_job_from_two_machines_is_recorded_once(pg_url: str) -> None:
    stores = [store.open_store(pg_url) for _ in range(4)]  # four workers, one history
    origin = Origin(Source.WORKER, "retried-job")
    rec = model.record_of(reports.report("v6.1.200"), origin, {"linux": "x"}, datetime.now(UTC))
    barrier = threading.Barrier(len(stores))
    ids: list[int] = []
    errors: list[BaseException] = []

    def worker(h: store.HistoryStore) -> None:
        barrier.wait()
        try:
            ids.append(h.record(rec))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(h,)) for h in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(set(ids)) == 1
    assert [c.tag for c in stores[0].checks() if c.tag == "v6.1.200"] == ["v6.1.200"]
    for h in stores:
        h.close()


def test_workers_opening_a_new_history_at_once_migrate_it_once(pg_url: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE race"))
    admin.dispose()
    url = pg_url.rsplit("/", 1)[0] + "/race"
    barrier = threading.Barrier(4)
    opened: list[int] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        barrier.wait()
        try:
            h = store.open_store(url)
            opened.append(h.count())
            h.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and opened == [0, 0, 0, 0]
