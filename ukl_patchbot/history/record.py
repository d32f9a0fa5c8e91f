"""The hook every check passes through: run it, then record it in the history.

`checked` is what the CLI (`patchbot check`), the worker (`execute_job`) and
the weekly job (`track`) call instead of `pipeline.run_check`. Recording is a
side line: a history that cannot be opened or written is logged and the
check's result is returned all the same.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from ukl_patchbot.check import pipeline
from ukl_patchbot.check.report import CheckReport
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.jobs import Job
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.history.model import Origin, Source, record_of
from ukl_patchbot.history.store import open_for

log = logging.getLogger(__name__)

DISABLE_ENV = "PATCHBOT_HISTORY"  # "off" records nothing (e.g. throwaway benchmark runs)


def series_digests(cfg: Config) -> dict[str, str | None]:
    """The digest of each component's series as ``cfg`` (maybe a pull request's) has it."""
    from ukl_patchbot.series import patchset

    out: dict[str, str | None] = {}
    for name, comp in sorted(cfg.components.items()):
        try:
            out[name] = patchset.load_series(comp.series_dir, name).digest
        except Exception as exc:  # noqa: BLE001 - a missing series only leaves a blank
            log.debug("no %s series digest: %s", name, exc)
            out[name] = None
    return out


def origin_of(source: Source, job: Job | None) -> Origin:
    if job is None:
        return Origin(source)
    return Origin(source, job.key, job.repo, job.pr, job.head_sha)


def record_check(history_cfg: Config, report: CheckReport, origin: Origin,
                 series_cfg: Config | None = None) -> int | None:
    """Record ``report``; the new row's id, or None when recording failed (logged, not raised).

    ``history_cfg`` says where the history is (the bot's own configuration);
    ``series_cfg`` which series was checked (a pull request's, when it differs).
    """
    if os.environ.get(DISABLE_ENV, "").lower() == "off":
        return None
    try:
        series_cfg = series_cfg or history_cfg
        prefix = series_cfg.components["linux"].tag_prefix if "linux" in series_cfg.components \
            else "v"
        rec = record_of(report, origin, series_digests(series_cfg), datetime.now(UTC),
                        tag_prefix=prefix)
        store = open_for(history_cfg)
        try:
            check_id = store.record(rec, keep_existing=report.from_cache)
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - recording must never turn a check into a failure
        log.warning("could not record the check of %s %s in the history: %s",
                    report.component, report.tag, exc)
        return None
    log.info("recorded the check of %s %s in the history as #%d (%s)",
             report.component, report.tag, check_id, rec.verdict.value)
    return check_id


def checked(cfg: Config, req: pipeline.CheckRequest, *, source: Source, job: Job | None = None,
            progress: Progress | None = None, history_cfg: Config | None = None) -> CheckReport:
    """`pipeline.run_check`, then the report recorded in the history (see `record_check`)."""
    report = pipeline.run_check(cfg, req, progress=progress)
    record_check(history_cfg or cfg, report, origin_of(source, job), series_cfg=cfg)
    return report
