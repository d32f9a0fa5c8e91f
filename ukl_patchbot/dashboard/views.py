"""The dashboard's pages as data: the matrix, the trends, the findings, one check.

Pure functions from recorded checks to frozen view models; `render` turns
them into HTML. Upstream checks (no pull request) make the matrix and the
trends, where each tag shows its newest check; every check, pull requests
included, counts for the findings and the list of recent checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ukl_patchbot.check import variant_records
from ukl_patchbot.core import versions
from ukl_patchbot.history.model import CheckRecord, HistoryVerdict

VARIANT_ORDER = variant_records.NAMES  # the records' order: baseline first


@dataclass(frozen=True)
class Cell:
    """One variant of one check: its state in a word, and the CSS class for its colour."""

    text: str
    css: str
    href: str
    note: str = ""  # the attribution, for a failing check


@dataclass(frozen=True)
class MatrixRow:
    tag: str
    check: CheckRecord
    runs: int
    cells: tuple[Cell, ...]
    overall: Cell


@dataclass(frozen=True)
class LineGroup:
    component: str
    line: str
    rows: tuple[MatrixRow, ...]


@dataclass(frozen=True)
class Matrix:
    variants: tuple[str, ...]
    groups: tuple[LineGroup, ...]
    recent: tuple[CheckRecord, ...]


@dataclass(frozen=True)
class FindingRow:
    fingerprint: str
    kind: str
    summary: str
    variants: tuple[str, ...]
    first_tag: str
    first_seen: datetime
    last_tag: str
    last_seen: datetime
    count: int
    last_check: int | None


@dataclass(frozen=True)
class TrendPoint:
    tag: str
    check: CheckRecord


def check_href(check: CheckRecord) -> str:
    return f"checks/{check.id}.html"


def _tag_version(tag: str) -> versions.Version | None:
    return versions.tag_version(tag, "v") or versions.parse(tag)


def sort_tags(tags: Iterable[str], *, newest_first: bool) -> list[str]:
    """Tags in version order (tags that name no version sort last, by name)."""
    parsed = {t: _tag_version(t) for t in set(tags)}
    known = sorted((t for t, v in parsed.items() if v is not None),
                   key=lambda t: (parsed[t], t), reverse=newest_first)
    return known + sorted(t for t, v in parsed.items() if v is None)


def _line_key(line: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in line.split("."))
    except ValueError:
        return ()


def upstream_checks(checks: Iterable[CheckRecord]) -> list[CheckRecord]:
    """Checks of the maintained series (not of a pull request's)."""
    return [c for c in checks if c.origin.pr is None]


def latest_by_tag(checks: Iterable[CheckRecord]) -> dict[tuple[str, str], tuple[CheckRecord, int]]:
    """(component, tag) -> its newest check and how many checks it had."""
    out: dict[tuple[str, str], tuple[CheckRecord, int]] = {}
    for c in checks:
        key = (c.component, c.tag)
        if key in out:
            newest, n = out[key]
            out[key] = (c if c.recorded_at > newest.recorded_at else newest, n + 1)
        else:
            out[key] = (c, 1)
    return out


def variant_cell(check: CheckRecord, name: str) -> Cell:
    v = check.variant(name)
    href = check_href(check)
    if v is None:
        if check.verdict == HistoryVerdict.FAIL and check.attribution == "rebase":
            return Cell("not built", "fail", href, "rebase")
        return Cell("–", "none", href)
    if v.ok:
        return Cell("flaky" if v.flaky else "pass", "flaky" if v.flaky else "pass", href)
    if v.boot_status == "skipped" and v.build_status == "skipped" and v.config_status == "skipped":
        return Cell("skipped", "none", href)
    return Cell(f"{v.failed_step or 'check'} failed", "fail", href, check.attribution)


def overall_cell(check: CheckRecord) -> Cell:
    note = "" if check.attribution == "none" else check.attribution
    return Cell(check.verdict.value, check.verdict.value, check_href(check), note)


def variants_of(checks: Iterable[CheckRecord]) -> tuple[str, ...]:
    names = {v.variant for c in checks for v in c.variants}
    rest = sorted(names - set(VARIANT_ORDER))
    return tuple(v for v in VARIANT_ORDER if v in names or not names) + tuple(rest)


def matrix(checks: Sequence[CheckRecord], recent: int = 25) -> Matrix:
    """Tags (newest first, grouped by component and line) by variants; newest check per tag."""
    ups = upstream_checks(checks)
    names = variants_of(ups)
    latest = latest_by_tag(ups)
    groups: dict[tuple[str, str], list[str]] = {}
    for (component, tag), (c, _n) in latest.items():
        groups.setdefault((component, c.line or "other"), []).append(tag)
    out = []
    for (component, line) in sorted(groups, key=lambda k: (k[0], _line_key(k[1])), reverse=True):
        rows = []
        for tag in sort_tags(groups[(component, line)], newest_first=True):
            c, n = latest[(component, tag)]
            rows.append(MatrixRow(tag, c, n, tuple(variant_cell(c, v) for v in names),
                                  overall_cell(c)))
        out.append(LineGroup(component, line, tuple(rows)))
    newest = sorted(checks, key=lambda c: c.recorded_at, reverse=True)[:recent]
    return Matrix(names, tuple(out), tuple(newest))


def trend_points(checks: Sequence[CheckRecord]) -> list[TrendPoint]:
    """One point per upstream tag (its newest check), oldest tag first."""
    latest = latest_by_tag(upstream_checks(checks))
    by_tag = {tag: c for (_comp, tag), (c, _n) in latest.items()}
    return [TrendPoint(t, by_tag[t]) for t in sort_tags(by_tag, newest_first=False)]


def findings(checks: Sequence[CheckRecord]) -> list[FindingRow]:
    """Each fingerprint: first and last tag seen, in how many checks, newest first."""
    seen: dict[str, list[tuple[CheckRecord, str, str, str]]] = {}
    for c in checks:
        for f in c.findings:
            seen.setdefault(f.fingerprint, []).append((c, f.variant, f.kind, f.summary))
    rows = []
    for fp, hits in seen.items():
        tags = sort_tags({c.tag for c, *_ in hits}, newest_first=False)
        first = min(hits, key=lambda h: h[0].recorded_at)[0]
        last_hit = max(hits, key=lambda h: h[0].recorded_at)
        rows.append(FindingRow(
            fingerprint=fp, kind=last_hit[2], summary=last_hit[3],
            variants=tuple(sorted({h[1] for h in hits})), first_tag=tags[0],
            first_seen=first.recorded_at, last_tag=tags[-1],
            last_seen=last_hit[0].recorded_at, count=len({c.id for c, *_ in hits}),
            last_check=last_hit[0].id))
    return sorted(rows, key=lambda r: (r.last_seen, r.fingerprint), reverse=True)
