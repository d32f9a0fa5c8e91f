"""The result of `patchbot check` as data, and pure renderers to JSON and Markdown.

Nothing here runs a command or touches the disk: the pipeline fills a
`CheckReport`, these functions turn it into text (golden-file tested), and
`report_from_json` reads one back (a repeated check answers from its cache).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from ukl_patchbot.check import variant_records
from ukl_patchbot.check.results import (
    AbiCheck,
    AbiStatus,
    AppResult,
    AppStatus,
    BootAttempt,
    BootResult,
    BootStatus,
    BuildResult,
    BuildStatus,
    ConfigResult,
    ConfigStatus,
    Finding,
    VariantResult,
)
from ukl_patchbot.check.variant_records import Role
from ukl_patchbot.core.markdown import fence

SCHEMA_VERSION = 1
EXCERPT_LINES = 30


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # a failed result: conflict, config drop, build or boot failure
    ERROR = "error"  # the bot could not produce a result


class Attribution(StrEnum):
    NONE = "none"  # everything passed
    REBASE = "rebase"  # the series does not apply; nothing was built
    UKL_DELTA = "ukl-delta"  # classic passes, UKL fails: the delta needs work
    UPSTREAM_OR_INFRA = "upstream-or-infra"  # classic fails too
    CLASSIC_ONLY = "classic-only"  # classic fails, UKL passes: classic config or probe


@dataclass(frozen=True)
class PatchRow:
    """One patch of the rebase: its file name, result and a short detail."""

    name: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class RebaseSummary:
    component: str
    old_base: str
    new_base: str
    ok: bool
    patches: tuple[PatchRow, ...] = ()
    range_diff: str = ""
    applied_ref: str | None = None
    message: str = ""


@dataclass(frozen=True)
class CheckReport:
    component: str
    tag: str
    verdict: Verdict
    attribution: Attribution
    attribution_text: str
    variants: tuple[VariantResult, ...] = ()
    rebase: RebaseSummary | None = None
    glibc_tag: str | None = None
    tree_id: str | None = None
    syscall_ratio: float | None = None  # UKL ns/call divided by classic ns/call
    reproduce: str = ""
    out_dir: str | None = None
    duration: float = 0.0
    from_cache: bool = False
    accel: str | None = None
    schema: int = SCHEMA_VERSION
    notes: tuple[str, ...] = field(default_factory=tuple)
    apps: tuple[AppResult, ...] = ()  # a real program in each variant (`check --app`)

    def variant(self, name: str) -> VariantResult | None:
        return next((v for v in self.variants if v.variant == name), None)

    @property
    def boot_ratio(self) -> float | None:
        """The delta's time to marker over the baseline's (below 1: UKL boots faster).

        Computed, never stored, so a report read back from an older JSON has it too.
        """
        t = {v.variant: v.boot.time_to_marker for v in self.variants if v.boot.ok}
        delta = t.get(variant_records.with_role(Role.DELTA).name)
        baseline = t.get(variant_records.with_role(Role.BASELINE).name)
        if delta is None or baseline is None or baseline <= 0:
            return None
        return delta / baseline


def syscall_ratio(variants: Iterable[VariantResult]) -> float | None:
    """The delta's ns/call over the baseline's (UKL over classic; below 1: UKL syscalls are cheaper)."""
    ns = {v.variant: v.boot.ns_per_call for v in variants}
    delta = ns.get(variant_records.with_role(Role.DELTA).name)
    baseline = ns.get(variant_records.with_role(Role.BASELINE).name)
    if delta is None or baseline is None or baseline <= 0:
        return None
    return delta / baseline


def attribute(
    variants: Iterable[VariantResult], rebase: RebaseSummary | None, tag: str
) -> tuple[Verdict, Attribution, str]:
    """The verdict and who is to blame, from the per-variant results."""
    if rebase is not None and not rebase.ok:
        return (Verdict.FAIL, Attribution.REBASE,
                f"the {rebase.component} series does not apply to {tag}; nothing was built")
    by = {v.variant: v for v in variants}
    base_rec = variant_records.with_role(Role.BASELINE)
    delta_rec = variant_records.with_role(Role.DELTA)
    base, delta = by.get(base_rec.name), by.get(delta_rec.name)
    b, d = base_rec.label, delta_rec.label
    failed = [v for v in by.values() if not v.ok]
    if not failed:
        return Verdict.PASS, Attribution.NONE, "all variants built, booted and proved themselves"
    if base is not None and not base.ok:
        if delta is not None and not delta.ok:
            return (Verdict.FAIL, Attribution.UPSTREAM_OR_INFRA,
                    (f"{b} fails too ({base.failed_step}) on {tag}: the breakage is "
                     f"upstream or in the infrastructure, not in the {d} delta"))
        if delta is not None:
            return (Verdict.FAIL, Attribution.CLASSIC_ONLY,
                    (f"only {b} fails ({base.failed_step}): look at {base_rec.fragments[-1]} or "
                     f"the {b} probe, not the {d} delta"))
        return (Verdict.FAIL, Attribution.UPSTREAM_OR_INFRA,
                f"{b} fails ({base.failed_step}) on {tag}: upstream or infrastructure")
    step = failed[0].failed_step
    return (Verdict.FAIL, Attribution.UKL_DELTA,
            f"{b} passes but {d} fails ({step}): the {d} delta needs work on {tag}")


def attribute_apps(judged: tuple[Verdict, Attribution, str], apps: Iterable[AppResult]
                   ) -> tuple[Verdict, Attribution, str]:
    """The verdict of `attribute` once the real program has run in the variants.

    A program that fails where its variant passed the probe fails the check:
    in the baseline, the program or its kernel fragment is at fault (the same
    program fails on stock Linux); only in the delta, the delta is.
    """
    verdict, attribution, text = judged
    failed = [a for a in apps if not a.ok and a.status != AppStatus.SKIPPED]
    if verdict != Verdict.PASS or not failed:
        return verdict, attribution, text
    base_rec = variant_records.with_role(Role.BASELINE)
    delta_rec = variant_records.with_role(Role.DELTA)
    by = {a.variant: a for a in failed}
    if base_rec.name in by:
        a = by[base_rec.name]
        return (Verdict.FAIL, Attribution.UPSTREAM_OR_INFRA,
                f"the probe passes but {a.app} fails in {base_rec.label} too ({a.status.value}): "
                f"look at the program's recipe or its kernel fragment, not the {delta_rec.label} "
                "delta")
    a = failed[0]
    return (Verdict.FAIL, Attribution.UKL_DELTA,
            f"the probe passes and {a.app} runs in {base_rec.label}, but not in "
            f"{variant_records.get(a.variant).label} ({a.status.value}): the delta needs work")


# ---------------------------------------------------------------- JSON


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, enums and tuples as plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj


def render_json(report: CheckReport) -> str:
    """The report as JSON (stable key order, so diffs between runs are readable)."""
    data = to_jsonable(report)
    data["passed"] = report.verdict == Verdict.PASS
    data["boot_ratio"] = report.boot_ratio
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _from_jsonable(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _from_jsonable(args[0], value)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        return tuple(_from_jsonable(inner, v) for v in value)
    if origin is dict:
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        kwargs = {f.name: _from_jsonable(hints[f.name], value[f.name])
                  for f in dataclasses.fields(tp) if f.name in value}
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    return value


def report_from_json(text: str) -> CheckReport:
    """Read back what `render_json` wrote."""
    data = json.loads(text)
    data.pop("passed", None)
    data.pop("boot_ratio", None)  # derived from the variants
    report: CheckReport = _from_jsonable(CheckReport, data)
    return report


# ---------------------------------------------------------------- Markdown


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s"


def _size(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024:.0f} KiB"


def _config_cell(c: ConfigResult) -> str:
    if c.status == ConfigStatus.DROPPED:
        return f"**dropped {len(c.dropped)}**"
    return c.status.value if c.status == ConfigStatus.OK else f"**{c.status.value}**"


def _build_cell(b: BuildResult) -> str:
    if b.status == BuildStatus.SKIPPED:
        return "skipped"
    word = {BuildStatus.OK: "ok", BuildStatus.CACHED: "cached", BuildStatus.FAILED: "**failed**"}
    dur = "" if b.status == BuildStatus.CACHED else f" {_dur(b.duration)}"
    return f"{word[b.status]}{dur}, {b.warnings} warning{'s' if b.warnings != 1 else ''}"


def _boot_cell(r: BootResult) -> str:
    if r.status == BootStatus.SKIPPED:
        return "skipped"
    text = r.status.value if r.ok else f"**{r.status.value}**"
    return text + (" (flaky)" if r.flaky else "")


def _ns(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def _finding_lines(variant: str, where: str, f: Finding) -> list[str]:
    out = [f"- **{variant}** {where}: `{f.fingerprint}` {f.summary}"]
    if f.excerpt:
        out += ["", *("  " + x for x in fence(f.excerpt[-EXCERPT_LINES:] if f.kind.value == "timeout"
                                               else f.excerpt[:EXCERPT_LINES]))]
    return out


def _attempt_findings(a: BootAttempt | None) -> tuple[Finding, ...]:
    return a.findings if a is not None else ()


def render_markdown(report: CheckReport) -> str:
    """The report a maintainer reads (and a later issue posts on the pull request)."""
    icon = {Verdict.PASS: "PASS", Verdict.FAIL: "FAIL", Verdict.ERROR: "ERROR"}[report.verdict]
    out = [f"## patchbot check {report.component} {report.tag}: {icon}", ""]
    out += [" · ".join(_facts(report)), "", f"**Attribution:** {report.attribution_text}", ""]
    out += _variant_table(report)
    out += _abi_table(report)
    out += _app_table(report.apps)
    problems = [line for v in report.variants for line in _variant_problems(v)]
    problems += [line for a in report.apps for line in _app_problems(a)]
    if problems:
        out += ["### Findings", "", *problems, ""]
    if report.rebase is not None:
        out += _rebase_section(report.rebase)
    out += _reproduce_section(report)
    if report.out_dir:
        out += [f"Logs and artifacts: `{report.out_dir}`", ""]
    for n in report.notes:
        out += [f"> {n}", ""]
    return "\n".join(out).rstrip() + "\n"


def _facts(report: CheckReport) -> list[str]:
    facts = [f"{report.component} `{report.tag}`"]
    if report.tree_id:
        facts.append(f"tree `{report.tree_id[:12]}`")
    if report.glibc_tag:
        facts.append(f"glibc `{report.glibc_tag}`")
    if report.accel:
        facts.append(f"QEMU {report.accel.upper()}")
    cached = " (answered from cache)" if report.from_cache else ""
    facts.append(f"took {_dur(report.duration)}{cached}")
    return facts


def _variant_table(report: CheckReport) -> list[str]:
    if not report.variants:
        return []
    out = ["| variant | config | build | image | boot | marker after | getppid ns/call |",
           "|---|---|---|---|---|---|---|"]
    for v in report.variants:
        out.append(f"| {v.variant} | {_config_cell(v.config)} | {_build_cell(v.build)} | "
                   f"{_size(v.build.image_size)} | {_boot_cell(v.boot)} | "
                   f"{_dur(v.boot.time_to_marker)} | {_ns(v.boot.ns_per_call)} |")
    out.append("")
    if report.syscall_ratio is not None:
        r = report.syscall_ratio
        how = f"{1 / r:.1f}x faster" if r < 1 else f"{r:.1f}x slower"
        # Under TCG the guest clock is emulated: the ratio moves between runs.
        caveat = "; TCG timings vary from run to run" if report.accel == "tcg" else ""
        d = variant_records.with_role(Role.DELTA).label
        b = variant_records.with_role(Role.BASELINE).label
        out += [(f"{d}/{b} syscall cost ratio: **{r:.3f}** "
                 f"({d} is {how} per getppid call{caveat})"), ""]
    if report.boot_ratio is not None:
        d = variant_records.with_role(Role.DELTA).label
        b = variant_records.with_role(Role.BASELINE).label
        out += [f"{d}/{b} boot to marker ratio: **{report.boot_ratio:.2f}**", ""]
    return out


def _abi_of(v: VariantResult) -> dict[str, AbiCheck]:
    a = v.boot.decisive
    return {c.name: c for c in a.markers.abi} if a is not None else {}


def _abi_table(report: CheckReport) -> list[str]:
    """The probe's ABI checks, one row each, one column per variant (when any ran)."""
    by_variant = {v.variant: _abi_of(v) for v in report.variants}
    names = list(dict.fromkeys(n for checks in by_variant.values() for n in checks))
    if not names:
        return []
    out = ["| ABI check | " + " | ".join(by_variant) + " |",
           "|---|" + "---|" * len(by_variant)]
    for name in names:
        cells = []
        for checks in by_variant.values():
            c = checks.get(name)
            cells.append("–" if c is None else "ok" if c.status is AbiStatus.OK
                         else f"**FAIL** {c.reason.replace('|', '/')}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def _app_table(apps: tuple[AppResult, ...]) -> list[str]:
    if not apps:
        return []
    out = ["| program | variant | version | program build | kernel | result | answered after |",
           "|---|---|---|---|---|---|---|"]
    for a in apps:
        prog = "cached" if a.program_seconds is None else _dur(a.program_seconds)
        if a.status == AppStatus.BUILD_FAILED and not a.kernel.log_path:
            prog = "**failed**"
        result = a.status.value if a.ok else f"**{a.status.value}**"
        out.append(f"| {a.app} | {a.variant} | `{a.version or '–'}` | {prog} | "
                   f"{_build_cell(a.kernel)} | {result} | {_dur(a.answer_after)} |")
    return [*out, ""]


def _app_problems(a: AppResult) -> list[str]:
    if a.ok or a.status == AppStatus.SKIPPED:
        return []
    out = [f"- **{a.app}** in **{a.variant}**: {a.detail}"]
    if a.tail:
        out += ["", *("  " + x for x in fence(a.tail))]
    return out


def _variant_problems(v: VariantResult) -> list[str]:
    problems = [f"- **{v.variant}** config: `{d.name}` asked `{d.requested}` by "
                f"`{d.fragment}`, got `{d.actual}` (a dependency is missing)"
                for d in v.config.dropped]
    if v.config.error_lines:
        problems += [f"- **{v.variant}** config failed:", "",
                     *("  " + x for x in fence(v.config.error_lines))]
    if v.build.first_errors:
        problems += [f"- **{v.variant}** build failed, first errors:", "",
                     *("  " + x for x in fence(v.build.first_errors))]
    for f in _attempt_findings(v.boot.decisive):
        problems += _finding_lines(v.variant, "boot", f)
    problems += [f"- **{v.variant}** boot: {n}" for n in v.boot.notes]
    return problems


def _rebase_section(rb: RebaseSummary) -> list[str]:
    out = [f"### Rebase of {rb.component}: {rb.old_base} → {rb.new_base}", ""]
    if rb.message:
        out += [rb.message, ""]
    if rb.patches:
        out += ["| patch | result | detail |", "|---|---|---|"]
        out += [f"| `{p.name}` | {p.status} | {p.detail.replace('|', '/')} |" for p in rb.patches]
        out.append("")
    if rb.range_diff.strip():
        out += ["<details><summary>range-diff</summary>", "",
                *fence(rb.range_diff.rstrip().splitlines()), "", "</details>", ""]
    return out


def _reproduce_section(report: CheckReport) -> list[str]:
    out = ["### Reproduce", "", *fence([report.reproduce]), ""]
    for v in report.variants:
        if not v.ok and v.build.reproduce:
            out += [f"<details><summary>{v.variant}: build and boot by hand</summary>", "",
                    *fence([v.build.reproduce, v.boot.reproduce] if v.boot.reproduce
                           else [v.build.reproduce]),
                    "", "</details>", ""]
    for a in report.apps:
        if not a.ok and a.reproduce:
            out += [f"<details><summary>{a.app} in {a.variant}: boot by hand</summary>", "",
                    *fence([a.reproduce]), "", "</details>", ""]
    return out


def title(report: CheckReport) -> str:
    """One line for a check run title or a terminal summary."""
    parts = [f"{v.variant} {'ok' if v.ok else f'{v.failed_step} failed'}" for v in report.variants]
    parts += [f"{a.app} in {a.variant} {a.status.value}" for a in report.apps]
    head = f"{report.component} {report.tag}: {report.verdict.value}"
    return head + (" (" + ", ".join(parts) + ")" if parts else "")
