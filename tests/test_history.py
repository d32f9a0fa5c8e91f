"""The results history: recording, read back, run keys, migrations, where it lives, the hook."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.helpers import reports
from ukl_patchbot.check import pipeline
from ukl_patchbot.check.report import CheckReport
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.jobs import Job, JobKind
from ukl_patchbot.history import model, record, schema, store
from ukl_patchbot.history.model import HistoryVerdict, Origin, Source

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CLI = Origin(Source.CLI)


def sqlite_store(tmp_path: Path) -> store.HistoryStore:
    return store.open_store(f"sqlite:///{tmp_path / 'h' / 'history.sqlite'}")


def rec(report: CheckReport, origin: Origin = CLI, at: datetime = NOW,
        series: dict[str, str | None] | None = None) -> model.CheckRecord:
    return model.record_of(report, origin, series or {"linux": "aaaa", "glibc": "bbbb"}, at)


def test_round_trip_keeps_what_the_issue_lists(tmp_path: Path) -> None:
    h = sqlite_store(tmp_path)
    boom = reports.finding()
    r = reports.report("v6.1.192", ukl=reports.variant("ukl", ok=False, findings=(boom,)))
    origin = Origin(Source.WORKER, "jobkey", "owner/ukl", 42, "ab" * 20)
    check_id = h.record(rec(r, origin))
    got = h.check(check_id)
    assert got is not None
    assert (got.tag, got.line, got.glibc_tag) == ("v6.1.192", "6.1", "glibc-2.36")
    assert (got.linux_series, got.glibc_series) == ("aaaa", "bbbb")
    assert got.verdict == HistoryVerdict.FAIL and got.attribution == "ukl-delta"
    assert got.origin.pr_url == "https://github.com/owner/ukl/pull/42"
    assert got.accel == "tcg" and got.duration == 300.0 and got.out_dir == "/tmp/run"
    classic = got.variant("classic")
    assert classic is not None and classic.ns_per_call == 100.0 and classic.time_to_marker == 1.0
    assert classic.image_size == 1_000_000 and classic.build_duration == 100.0
    assert got.variant("ukl").failed_step == "boot"  # type: ignore[union-attr]
    assert [(f.variant, f.fingerprint, f.kind) for f in got.findings] == [
        ("ukl", "oops-1a2b3c4d", "oops")]
    assert got.syscall_ratio is None  # UKL did not finish its benchmark
    assert got.recorded_at == NOW
    assert "## patchbot check linux v6.1.192: FAIL" in got.report_md
    assert ("ukl boot 1", "/tmp/run/boot-ukl-1.log") in got.logs


def test_flaky_pass_is_told_apart_and_ratio_kept(tmp_path: Path) -> None:
    h = sqlite_store(tmp_path)
    r = reports.report(ukl=reports.variant("ukl", ns=40.0, flaky=True))
    got = h.check(h.record(rec(r)))
    assert got is not None and got.verdict == HistoryVerdict.FLAKY
    assert got.syscall_ratio == pytest.approx(0.4)


def test_retried_job_is_recorded_once_and_a_new_series_is_a_new_row(tmp_path: Path) -> None:
    h = sqlite_store(tmp_path)
    origin = Origin(Source.WORKER, "job-1")
    first = h.record(rec(reports.report(), origin))
    retry = reports.report(classic=reports.variant("classic", ns=120.0))
    second = h.record(rec(retry, origin, NOW + timedelta(minutes=5)))
    assert h.count() == 1 and second == first  # links to the check stay valid
    kept = h.check(second)
    assert kept is not None and kept.variant("classic").ns_per_call == 120.0  # type: ignore[union-attr]
    h.record(rec(reports.report(), origin, series={"linux": "cccc", "glibc": "bbbb"}))
    h.record(rec(reports.report(), Origin(Source.WORKER, "job-2")))
    assert h.count() == 3


def test_newest_first_and_children_only_of_their_check(tmp_path: Path) -> None:
    h = sqlite_store(tmp_path)
    for i, tag in enumerate(("v6.1.190", "v6.1.191", "v6.1.192")):
        h.record(rec(reports.report(tag), at=NOW + timedelta(hours=i)))
    got = h.checks(limit=2)
    assert [c.tag for c in got] == ["v6.1.192", "v6.1.191"]
    assert all(len(c.variants) == 2 for c in got) and got[0].report_md == ""


def test_migrations_reach_head_and_match_the_schema(tmp_path: Path) -> None:
    h = sqlite_store(tmp_path)
    with h.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0001"
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    h.close()
    again = sqlite_store(tmp_path)  # opening an up-to-date history migrates nothing
    assert again.count() == 0


def test_history_url_env_then_toml_then_cache(tmp_path: Path) -> None:
    cfg = Config(root=tmp_path, cache_dir=tmp_path / "cache")
    assert store.history_url(cfg, {}) == f"sqlite:///{tmp_path / 'cache' / 'history.sqlite'}"
    (tmp_path / "patchbot.toml").write_text('[history]\nurl = "postgresql+psycopg://u@db/h"\n')
    assert store.history_url(cfg, {}) == "postgresql+psycopg://u@db/h"
    assert store.history_url(cfg, {"PATCHBOT_HISTORY_URL": "sqlite:////x.db"}) == "sqlite:////x.db"
    (tmp_path / "patchbot.toml").write_text("[history]\nurl = 3\n")
    with pytest.raises(UserError, match=r"\[history\] url"):
        store.history_url(cfg, {})


def test_unusable_url_is_a_user_error_naming_it() -> None:
    with pytest.raises(UserError, match="nosuchdb://"):
        store.open_store("nosuchdb://x")


def test_recording_failure_is_logged_and_never_raised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PATCHBOT_HISTORY_URL", f"sqlite:///{blocker / 'sub' / 'h.sqlite'}")
    cfg = Config(root=tmp_path, cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        assert record.record_check(cfg, reports.report(), Origin(Source.CLI)) is None
    assert "could not record the check of linux v6.1.192" in caplog.text


def _fake_run_check(report: object) -> object:
    def run_check(cfg: Config, req: pipeline.CheckRequest, *, progress: object = None) -> object:
        return replace(report, tag=req.tag or "v6.1.192")  # type: ignore[type-var]
    return run_check


def test_worker_job_records_once_even_when_retried(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from ukl_patchbot.dispatch.execute import execute_job

    cfg = Config(root=tmp_path, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(pipeline, "run_check", _fake_run_check(reports.report()))
    job = Job(JobKind.CHECK, tag="v6.1.192", delivery_id="d1")
    for delivery in ("d1", "d2"):  # the same job, delivered and run twice
        outcome = execute_job(replace(job, delivery_id=delivery), cfg)
        assert outcome.conclusion.value == "success"
    h = store.open_for(cfg)
    assert h.count() == 1
    (only,) = h.checks()
    assert only.origin.source == Source.WORKER and only.tag == "v6.1.192"


def test_cli_check_records_and_history_off_records_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config(root=tmp_path, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(pipeline, "run_check", _fake_run_check(reports.report()))
    req = pipeline.CheckRequest(tag="v6.1.190")
    got = record.checked(cfg, req, source=Source.CLI)
    assert got.tag == "v6.1.190"
    monkeypatch.setenv("PATCHBOT_HISTORY", "off")
    record.checked(cfg, pipeline.CheckRequest(tag="v6.1.191"), source=Source.CLI)
    assert [c.tag for c in store.open_for(cfg).checks()] == ["v6.1.190"]


def test_a_cached_answer_does_not_replace_the_run_that_measured(tmp_path: Path) -> None:
    cfg = Config(root=tmp_path, cache_dir=tmp_path / "cache")
    measured = reports.report()
    first = record.record_check(cfg, measured, CLI)
    again = record.record_check(cfg, replace(measured, from_cache=True, duration=2.0), CLI)
    h = store.open_for(cfg)
    assert first == again and h.count() == 1
    kept = h.check(first)  # type: ignore[arg-type]
    assert kept is not None and kept.duration == 300.0 and not kept.from_cache
    h.close()
    # A cached answer with nothing recorded before (e.g. the worker reusing a CLI run) is kept.
    other = Origin(Source.WORKER, "job-x")
    assert record.record_check(cfg, replace(measured, from_cache=True), other) != first


def test_postgres_urls_mean_psycopg() -> None:
    assert store.normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert store.normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert store.normalize_url("sqlite:////x") == "sqlite:////x"


@pytest.mark.slow  # four Python processes: ~3 s idle, 13 s on a loaded machine
def test_processes_opening_a_new_history_at_once_all_succeed(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    code = ("import sys; from ukl_patchbot.history import store; "
            "h = store.open_store(sys.argv[1]); print(h.count())")
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["0"] * 4
