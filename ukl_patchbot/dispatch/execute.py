"""One queued job -> one outcome: the function the worker, the CLI and the weekly job share.

A job names a component, a tag and, for a pull request, the repository and
commit whose series and kconfig fragments to use (read through GitHub by
`prsource`). Checks go through `ukl_patchbot.check.pipeline`, rebases through
`ukl_patchbot.rebase.engine`; any user or result error becomes an ERROR outcome,
so a worker never crashes on a job, while an infrastructure error (GitHub
down) is raised for the worker's retry.
"""

from __future__ import annotations

import logging

from ukl_patchbot.check import pipeline
from ukl_patchbot.check import report as cr
from ukl_patchbot.check.report import CheckReport, Verdict
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import InfraError, PatchbotError
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind, JobOutcome, StatusLine
from ukl_patchbot.core.markdown import fence
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.dispatch import prsource
from ukl_patchbot.dispatch.annotate import check_annotations, rebase_annotations
from ukl_patchbot.history import record as history_record  # issue 14
from ukl_patchbot.history.model import Source  # issue 14
from ukl_patchbot.rebase import engine as rebase
from ukl_patchbot.rebase import report as rebase_report
from ukl_patchbot.upstream import mirror as upstream

log = logging.getLogger(__name__)


def outcome_for(job: Job, report: CheckReport, cfg: Config | None = None) -> JobOutcome:
    """What the GitHub side publishes for a finished check."""
    conclusion = {Verdict.PASS: Conclusion.SUCCESS, Verdict.FAIL: Conclusion.FAILURE,
                  Verdict.ERROR: Conclusion.ERROR}[report.verdict]
    statuses = []
    for v in report.variants:
        state = "success" if v.ok else "failure"
        desc = "built and booted" if v.ok else f"{v.failed_step} failed"
        if v.ok and v.boot.ns_per_call is not None:
            desc += f", getppid {v.boot.ns_per_call:.0f} ns"
        statuses.append(StatusLine(f"patchbot/{v.variant}", state, desc))
    annotations = check_annotations(cfg, report) if cfg is not None else ()
    return JobOutcome(job, conclusion, cr.title(report), cr.render_markdown(report),
                      annotations, tuple(statuses), report.out_dir)


def error_outcome(job: Job, exc: PatchbotError) -> JobOutcome:
    """The ERROR outcome of a job that could not produce a result."""
    log.warning("job %s failed: %s", job.key, exc)
    return JobOutcome(job, Conclusion.ERROR, "patchbot could not run the check",
                      "patchbot could not produce a result:\n\n"
                      + "\n".join(fence([str(exc)])) + "\n")


def check_request(job: Job, cfg: Config) -> pipeline.CheckRequest:
    """What a check job checks: a glibc tag is checked with Linux at its series base."""
    if job.component == "glibc":
        return pipeline.CheckRequest(tag=upstream.series_base(cfg.component("linux")),
                                     glibc_tag=job.tag)
    return pipeline.CheckRequest(tag=job.tag)


def execute_job(job: Job, cfg: Config) -> JobOutcome:
    """The worker's executor interface: `run_job` without progress output."""
    return run_job(job, cfg)


def run_job(job: Job, cfg: Config, progress: Progress | None = None,
            source: Source = Source.WORKER) -> JobOutcome:
    """Run one queued job; an error becomes an ERROR outcome (the worker never crashes on it).

    A job on a commit of a GitHub repository (``repo`` and ``head_sha``, e.g. a
    pull request) uses that commit's series and kconfig fragments, read through
    the API and checked by `ukl_patchbot.dispatch.prsource`, with this checkout's code and
    probe; a bad path there is an ERROR outcome naming it, and nothing is built.
    GitHub failing while those files are read is raised, so the worker retries.
    A glibc job checks glibc at the job's tag with Linux at the Linux series base.
    """
    bot_cfg = cfg  # issue 14: the history is where the bot's config says, never a PR's
    if job.repo and job.head_sha:
        try:
            cfg = prsource.pr_config(cfg, job.repo, job.head_sha)
        except InfraError:
            raise
        except PatchbotError as exc:
            return error_outcome(job, exc)
    if job.tag and job.component in cfg.components:
        cfg = cfg.for_tag(job.component, job.tag)  # the tag's line picks the series
    try:
        if job.kind == JobKind.REBASE:
            return _rebase_job(job, cfg)
        # issue 14: run and record in the results history
        report = history_record.checked(cfg, check_request(job, cfg), source=source, job=job,
                                        progress=progress, history_cfg=bot_cfg)
        return outcome_for(job, report, cfg)
    except PatchbotError as exc:
        return error_outcome(job, exc)


def _rebase_job(job: Job, cfg: Config) -> JobOutcome:
    tag = job.tag or pipeline.newest_tag(cfg, job.component)
    cfg = cfg.for_tag(job.component, tag)  # the tag's line picks the series
    rep = rebase.rebase_series(cfg, job.component, tag, write=False)
    conclusion = Conclusion.SUCCESS if rep.ok else Conclusion.FAILURE
    return JobOutcome(job, conclusion, rebase_report.summary_line(rep),
                      rebase_report.render_markdown(rep), rebase_annotations(cfg, rep))
