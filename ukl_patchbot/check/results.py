"""The results of the check stage as data: config, build, console, boot, and one variant.

These frozen dataclasses are what the runners (`kbuild`, `console`, `boot`)
return and what the report model (`report`) renders; they live here, apart
from the code that runs things, so the report and its readers need none of
the runners. A failed build or boot is one of these values, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# ---------------------------------------------------------------- kernel config and build

class ConfigStatus(StrEnum):
    OK = "ok"
    DROPPED = "dropped"  # an option a fragment asked for did not survive
    FAILED = "failed"  # make/merge_config itself failed
    SKIPPED = "skipped"


class BuildStatus(StrEnum):
    OK = "ok"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class DroppedOption:
    name: str
    requested: str  # value as the fragment wrote it; "n" for "is not set"
    actual: str  # value in the final .config; "n" when unset
    fragment: str  # which fragment asked for it


@dataclass(frozen=True)
class ConfigResult:
    status: ConfigStatus
    fragments: tuple[str, ...] = ()
    dropped: tuple[DroppedOption, ...] = ()
    duration: float = 0.0
    log_path: str | None = None
    error_lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == ConfigStatus.OK


@dataclass(frozen=True)
class BuildResult:
    status: BuildStatus
    duration: float = 0.0
    warnings: int = 0
    first_errors: tuple[str, ...] = ()
    image: str | None = None
    image_size: int | None = None
    log_path: str | None = None
    reproduce: str = ""
    ccache: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (BuildStatus.OK, BuildStatus.CACHED)


# ---------------------------------------------------------------- console


class FindingKind(StrEnum):
    PANIC = "panic"
    OOPS = "oops"
    BUG = "bug"
    WARNING = "warning"
    CALL_TRACE = "call-trace"
    TIMEOUT = "timeout"
    QEMU_FAILED = "qemu-failed"
    MARKER_MISSING = "marker-missing"
    WRONG_VARIANT = "wrong-variant"
    WRONG_CPL = "wrong-cpl"
    PROBE_FAILED = "probe-failed"
    ABI_FAILED = "abi-failed"  # one of the probe's ABI checks said FAIL
    DONE_MISSING = "done-missing"
    HALTED = "halted"  # the kernel halted instead of powering off (no ACPI power-off)


class BootStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # the system ran but the oracle did not hold
    TIMEOUT = "timeout"
    QEMU_ERROR = "qemu-error"  # QEMU itself did not start or died
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    summary: str  # one line a maintainer reads first
    fingerprint: str  # "<kind>-<8 hex>", stable across runs
    line: int = 0  # 1-based line in the console log, 0 if not from one line
    excerpt: tuple[str, ...] = field(default_factory=tuple)


class AbiStatus(StrEnum):
    OK = "ok"
    FAIL = "fail"


@dataclass(frozen=True)
class AbiCheck:
    """One ``ukl-probe: abi <name> ok|FAIL <reason>`` line."""

    name: str
    status: AbiStatus
    reason: str = ""  # the probe's words after FAIL (the call and its errno)
    line: int = 0  # 1-based line in the console log


@dataclass(frozen=True)
class ProbeMarkers:
    """What the probe said. ``None`` where the line never appeared."""

    variant: str | None = None
    cpl: int | None = None
    pid: int | None = None
    start_line: int = 0
    bench_syscall: str | None = None
    bench_calls: int | None = None
    ns_per_call: float | None = None
    done_status: int | None = None
    abi: tuple[AbiCheck, ...] = ()  # the ABI checks in the order the probe ran them

    @property
    def abi_failed(self) -> tuple[AbiCheck, ...]:
        return tuple(c for c in self.abi if c.status is AbiStatus.FAIL)


@dataclass(frozen=True)
class ConsoleAnalysis:
    status: BootStatus
    markers: ProbeMarkers
    findings: tuple[Finding, ...]
    tail: tuple[str, ...]  # last lines of the log, for timeouts and unexplained failures


# ---------------------------------------------------------------- boot


@dataclass(frozen=True)
class BootAttempt:
    status: BootStatus
    duration: float
    time_to_marker: float | None  # seconds from QEMU start to the probe's start line
    accel: str
    returncode: int
    log_path: str | None
    markers: ProbeMarkers
    findings: tuple[Finding, ...] = ()
    tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class BootResult:
    status: BootStatus
    attempts: tuple[BootAttempt, ...] = ()
    flaky: bool = False
    reproduce: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status == BootStatus.PASS

    @property
    def decisive(self) -> BootAttempt | None:
        """The attempt the status comes from: the passing one, else the last."""
        for a in self.attempts:
            if a.status == BootStatus.PASS:
                return a
        return self.attempts[-1] if self.attempts else None

    @property
    def ns_per_call(self) -> float | None:
        a = self.decisive
        return a.markers.ns_per_call if a else None

    @property
    def time_to_marker(self) -> float | None:
        a = self.decisive
        return a.time_to_marker if a else None


# ---------------------------------------------------------------- one variant


@dataclass(frozen=True)
class VariantResult:
    variant: str
    config: ConfigResult
    build: BuildResult
    boot: BootResult

    @property
    def ok(self) -> bool:
        return self.config.ok and self.build.ok and self.boot.ok

    @property
    def failed_step(self) -> str | None:
        """The first step that failed; a step that was never reached is not blamed."""
        if self.config.status in (ConfigStatus.DROPPED, ConfigStatus.FAILED):
            return "config"
        if self.build.status == BuildStatus.FAILED:
            return "build"
        if self.boot.status not in (BootStatus.PASS, BootStatus.SKIPPED):
            return "boot"
        return None if self.ok else "config"


# ---------------------------------------------------------------- a real program as the app


class AppStatus(StrEnum):
    PASS = "pass"  # it answered the request with the expected document, byte for byte
    FAIL = "fail"  # it answered, wrongly (HTTP status or body)
    NO_ANSWER = "no-answer"  # no answer before the deadline (did not start, died, no network)
    QEMU_ERROR = "qemu-error"  # QEMU itself did not start or died before the kernel ran
    BUILD_FAILED = "build-failed"  # the program, its UKL link or the kernel did not build
    SKIPPED = "skipped"  # the variant itself failed, so its program was not tried


@dataclass(frozen=True)
class AppResult:
    """One real program booted in one variant and judged by a request it answers."""

    app: str
    variant: str
    status: AppStatus
    version: str = ""  # the source package version it was built from
    detail: str = ""  # one line: what it answered, or what failed first
    program_seconds: float | None = None  # building the program; None when taken from the cache
    kernel: BuildResult = field(default_factory=lambda: BuildResult(BuildStatus.SKIPPED))
    answer_after: float | None = None  # seconds from QEMU start to the correct answer
    attempts: int = 0
    log_path: str | None = None
    reproduce: str = ""
    tail: tuple[str, ...] = ()  # the console's last lines when it did not pass

    @property
    def ok(self) -> bool:
        return self.status == AppStatus.PASS
