"""A small recorded history for the dashboard tests: tags of two lines, a failure, a hostile PR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.helpers import reports
from ukl_patchbot.history import model, store
from ukl_patchbot.history.model import Origin, Source

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
TAGS_61 = ("v6.1.190", "v6.1.191", "v6.1.192")
TAG_612 = "v6.12.9"


def seed(h: store.HistoryStore, run_dir: Path | None = None) -> None:
    """Record: three passing 6.1 tags with moving figures, a UKL failure on 6.12, a hostile
    CLI check (markup in its tag, patch name and finding) and a hostile PR check of v6.1.193."""
    out = str(run_dir) if run_dir else "/tmp/run"
    at = T0
    for i, tag in enumerate(TAGS_61):
        r = reports.report(tag, out=out,
                           classic=reports.variant("classic", ns=100.0 + i, ttm=1.2 + i / 10,
                                                   size=1_000_000 + i * 4096, out=out),
                           ukl=reports.variant("ukl", ns=40.0 - i, ttm=0.9, size=1_500_000,
                                               build_s=60.0 + i, out=out))
        h.record(model.record_of(r, Origin(Source.TRACK, f"job-{tag}"), {"linux": "aa"}, at))
        at += timedelta(hours=1)
    oops = reports.finding()
    r = reports.report(TAG_612, out=out, ukl=reports.variant("ukl", ok=False, findings=(oops,),
                                                          out=out))
    h.record(model.record_of(r, Origin(Source.TRACK, "job-612"), {"linux": "aa"}, at))
    at += timedelta(hours=1)
    h.record(model.record_of(reports.hostile(), Origin(Source.CLI), {}, at))
    at += timedelta(hours=1)
    h.record(model.record_of(reports.hostile("v6.1.193"), Origin(Source.WORKER, "pr-job", "owner/ukl", 7,
                                                       "cd" * 20), {}, at))
