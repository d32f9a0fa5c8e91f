"""What the history holds about one check, as frozen dataclasses.

`record_of` turns a `CheckReport` (plus who asked: CLI, worker or weekly job,
and which pull request) into a `CheckRecord`; the store writes and reads
these, the dashboard only reads them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from ukl_patchbot.check import report as cr
from ukl_patchbot.check.report import CheckReport, VariantResult, Verdict
from ukl_patchbot.core import versions


class Source(StrEnum):
    CLI = "cli"  # patchbot check
    WORKER = "worker"  # a queued job (pull request or /patchbot command)
    TRACK = "track"  # the weekly job


class HistoryVerdict(StrEnum):
    """The check verdict, with a pass whose boots disagreed between attempts told apart."""

    PASS = "pass"
    FAIL = "fail"
    FLAKY = "flaky"  # passed, but some boot needed a retry
    ERROR = "error"


@dataclass(frozen=True)
class Origin:
    """Who asked for the check; ``job_key`` is what a retried job keeps."""

    source: Source
    job_key: str | None = None
    repo: str | None = None
    pr: int | None = None
    head_sha: str | None = None

    @property
    def pr_url(self) -> str | None:
        if self.repo and self.pr:
            return f"https://github.com/{self.repo}/pull/{self.pr}"
        return None


@dataclass(frozen=True)
class VariantRecord:
    variant: str
    ok: bool
    failed_step: str | None
    config_status: str
    build_status: str
    build_duration: float | None
    image_size: int | None
    boot_status: str
    flaky: bool
    time_to_marker: float | None
    ns_per_call: float | None


@dataclass(frozen=True)
class FindingRecord:
    variant: str
    fingerprint: str
    kind: str
    summary: str


@dataclass(frozen=True)
class CheckRecord:
    run_key: str
    recorded_at: datetime
    origin: Origin
    component: str
    tag: str
    line: str | None
    glibc_tag: str | None
    linux_series: str | None
    glibc_series: str | None
    tree_id: str | None
    verdict: HistoryVerdict
    attribution: str
    attribution_text: str
    title: str
    syscall_ratio: float | None
    accel: str | None
    duration: float | None
    from_cache: bool
    out_dir: str | None
    report_md: str
    logs: tuple[tuple[str, str], ...] = ()  # (label, path)
    variants: tuple[VariantRecord, ...] = ()
    findings: tuple[FindingRecord, ...] = ()
    id: int | None = None  # set when read back

    def variant(self, name: str) -> VariantRecord | None:
        return next((v for v in self.variants if v.variant == name), None)

    @property
    def build_duration(self) -> float | None:
        """Build time of all variants together (cached builds count as 0)."""
        times = [v.build_duration for v in self.variants if v.build_duration is not None]
        return sum(times) if times else None


def history_verdict(report: CheckReport) -> HistoryVerdict:
    if report.verdict == Verdict.PASS:
        flaky = any(v.boot.flaky for v in report.variants)
        return HistoryVerdict.FLAKY if flaky else HistoryVerdict.PASS
    return HistoryVerdict(report.verdict.value)


def tag_line(tag: str, prefix: str) -> str | None:
    """The tracked line a tag belongs to: ``6.1`` for ``v6.1.192``."""
    v = versions.tag_version(tag, prefix)
    if v is None or not v.release:
        return None
    return ".".join(str(p) for p in v.release[:2])


def run_key(report: CheckReport, origin: Origin, series: dict[str, str | None]) -> str:
    """Identifies a check by what it checked and the job that asked, not by when it ran.

    A retried job (same job key) and a repeated CLI check of the same inputs get
    the same key, so each is recorded once.
    """
    ident = {"job": origin.job_key or origin.source.value, "component": report.component,
             "tag": report.tag, "glibc": report.glibc_tag, "tree": report.tree_id,
             "series": series, "variants": [v.variant for v in report.variants],
             "rebase": report.rebase.applied_ref if report.rebase else None}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _variant_record(v: VariantResult) -> VariantRecord:
    built = v.build.status.value in ("ok", "failed")  # cached or skipped builds took no time
    return VariantRecord(v.variant, v.ok, v.failed_step, v.config.status.value,
                         v.build.status.value, v.build.duration if built else None,
                         v.build.image_size, v.boot.status.value, v.boot.flaky,
                         v.boot.time_to_marker, v.boot.ns_per_call)


def _logs(report: CheckReport) -> tuple[tuple[str, str], ...]:
    """The logs a reader of the report opens, as absolute paths where the run dir is known."""
    base = Path(report.out_dir) if report.out_dir else None
    out: list[tuple[str, str]] = []

    def add(label: str, path: str | None) -> None:
        if not path:
            return
        p = Path(path)
        if not p.is_absolute() and base is not None:
            p = base / p
        out.append((label, str(p)))

    if base is not None:
        add("report.md", "report.md")
        add("report.json", "report.json")
    for v in report.variants:
        add(f"{v.variant} config", v.config.log_path)
        add(f"{v.variant} build", v.build.log_path)
        for i, a in enumerate(v.boot.attempts, 1):
            add(f"{v.variant} boot {i}", a.log_path)
    return tuple(dict.fromkeys(out))


def record_of(report: CheckReport, origin: Origin, series: dict[str, str | None],
              recorded_at: datetime, *, tag_prefix: str = "v") -> CheckRecord:
    """The history's view of a finished check."""
    findings = []
    for v in report.variants:
        decisive = v.boot.decisive
        for f in decisive.findings if decisive is not None else ():
            findings.append(FindingRecord(v.variant, f.fingerprint, f.kind.value, f.summary))
    return CheckRecord(
        run_key=run_key(report, origin, series), recorded_at=recorded_at, origin=origin,
        component=report.component, tag=report.tag, line=tag_line(report.tag, tag_prefix),
        glibc_tag=report.glibc_tag, linux_series=series.get("linux"),
        glibc_series=series.get("glibc"), tree_id=report.tree_id,
        verdict=history_verdict(report), attribution=report.attribution.value,
        attribution_text=report.attribution_text, title=cr.title(report),
        syscall_ratio=report.syscall_ratio, accel=report.accel, duration=report.duration,
        from_cache=report.from_cache, out_dir=report.out_dir,
        report_md=cr.render_markdown(report), logs=_logs(report),
        variants=tuple(_variant_record(v) for v in report.variants),
        findings=tuple(findings))
