"""Reading a serial console log: the probe's markers and what went wrong.

A boot passes only on a positive oracle: the probe's start marker with the
expected variant and privilege level, and its final ``done status=0`` line;
any ``ukl-probe: abi <check> FAIL <reason>`` line fails it (a finding each).
Everything else in the log is evidence for *why* it did not pass: a panic,
an Oops, a BUG, WARNINGs, call traces, a timeout, QEMU refusing to start.

Each finding carries a short fingerprint computed from the log with the
run-specific noise (timestamps, addresses, pids, CPU numbers) removed, so the
same crash seen twice, or on two tags, gets the same fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from ukl_patchbot.check import variant_records
from ukl_patchbot.check.results import (
    AbiCheck,
    AbiStatus,
    BootStatus,
    ConsoleAnalysis,
    Finding,
    FindingKind,
    ProbeMarkers,
)

TAIL_LINES = 20

# After this line the machine does nothing more; the boot runner stops QEMU.
HALT_LINE = "reboot: System halted"


_START_RE = re.compile(r"ukl-probe: start variant=(\S+) cpl=(\d+) pid=(\d+)")
_BENCH_RE = re.compile(
    r"ukl-probe: bench syscall=(\S+) calls=(\d+) ns_per_call=([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?\d+)?)"
)
_DONE_RE = re.compile(r"ukl-probe: done status=(-?\d+)")
_ABI_RE = re.compile(r"ukl-probe: abi (\S+) (ok|FAIL)(?: (.*))?$")


def parse_abi(line: str, no: int = 0) -> AbiCheck | None:
    """One ``ukl-probe: abi <name> ok|FAIL <reason>`` line as data; None for other lines."""
    m = _ABI_RE.search(line.rstrip())
    if m is None:
        return None
    status = AbiStatus.OK if m.group(2) == "ok" else AbiStatus.FAIL
    return AbiCheck(m.group(1), status, (m.group(3) or "").strip(), no)


def parse_markers(lines: Sequence[str]) -> ProbeMarkers:
    """The probe's lines, wherever they are (kernel messages may interleave).

    Each ABI check counts once, by its first line: the probe prints each once.
    """
    variant = cpl = pid = calls = done = None
    syscall: str | None = None
    ns: float | None = None
    start_line = 0
    abi: dict[str, AbiCheck] = {}
    for no, line in enumerate(lines, 1):
        if variant is None and (m := _START_RE.search(line)):
            variant, cpl, pid, start_line = m.group(1), int(m.group(2)), int(m.group(3)), no
        elif (check := parse_abi(line, no)) is not None:
            abi.setdefault(check.name, check)
        elif ns is None and (m := _BENCH_RE.search(line)):
            syscall, calls, ns = m.group(1), int(m.group(2)), float(m.group(3))
        elif done is None and (m := _DONE_RE.search(line)):
            done = int(m.group(1))
    return ProbeMarkers(variant, cpl, pid, start_line, syscall, calls, ns, done,
                        tuple(abi.values()))


# Noise that differs between two runs of the same failure.
_NOISE = [
    (re.compile(r"^\[\s*\d+\.\d+\]\s?"), ""),  # printk timestamp
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<x>"),
    (re.compile(r"\b[0-9a-fA-F]{8,16}\b"), "<x>"),
    (re.compile(r"\b(CPU|PID|pid|cpu|Comm):?\s*\S+"), r"\1 <n>"),
    (re.compile(r"\b\d+\b"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalize(line: str) -> str:
    """``line`` without the parts that change from run to run."""
    out = line.strip()
    for pattern, repl in _NOISE:
        out = pattern.sub(repl, out)
    return out.strip()


def fingerprint(kind: FindingKind, *keys: str) -> str:
    """A short id for a finding: same kind and same normalised keys, same id."""
    digest = hashlib.sha256("\0".join([kind.value, *map(normalize, keys)]).encode()).hexdigest()
    return f"{kind.value}-{digest[:8]}"


_PANIC_RE = re.compile(r"Kernel panic - not syncing: ?(.*)")
_OOPS_RE = re.compile(r"\bOops: (.*)")
_BUG_RE = re.compile(r"\bBUG: (.*)|kernel BUG at (\S+)")
_WARN_RE = re.compile(r"WARNING: CPU: \d+ PID: \d+ at (\S+)")
_TRACE_RE = re.compile(r"\bCall Trace:")
_RIP_RE = re.compile(r"\bRIP: [0-9a-f]{4}:(\S+?)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?:\s|$)")
_FRAME_RE = re.compile(
    r"^\s*(?:\[\s*\d+\.\d+\]\s*)?(\?\s+)?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
_QEMU_ERR_RE = re.compile(r"^qemu(?:-system-\w+)?: (.*)")


def _strip_ts(line: str) -> str:
    return re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line).rstrip()


def _rip_after(lines: Sequence[str], start: int, limit: int = 40) -> str:
    """The function name in the first ``RIP:`` line after ``start`` (0-based)."""
    for line in lines[start : start + limit]:
        if m := _RIP_RE.search(line):
            return m.group(1)
    return ""


def _frames_after(lines: Sequence[str], start: int, limit: int = 60, count: int = 4) -> list[str]:
    """The first few function names of the call trace following ``start``."""
    frames: list[str] = []
    for line in lines[start + 1 : start + limit]:
        if m := _FRAME_RE.match(line):
            if not m.group(1):  # "? fn" frames are guesses from the stack, not the chain
                frames.append(m.group(2))
        elif frames and not line.strip():
            break
        if len(frames) >= count:
            break
    return frames


_END_TRACE = "---[ end trace"
EVENT_WINDOW = 60  # lines after a BUG/Oops/WARNING headline that still belong to it


def _scan_kernel(lines: Sequence[str]) -> list[Finding]:
    """Kernel crash evidence, one finding per event.

    A BUG line, the Oops line after it, the RIP and the call trace are one
    event (one finding, headed by the first line, identified by the faulting
    function and the first reliable frames); a call trace outside any such
    event is a finding of its own; each panic line is one too.
    """
    found: list[Finding] = []
    seen: set[str] = set()
    event_end = -1  # lines up to here belong to the current BUG/Oops/WARNING

    def add(kind: FindingKind, no: int, summary: str, *keys: str, end: int | None = None) -> None:
        fp = fingerprint(kind, *keys)
        if fp in seen:
            return
        seen.add(fp)
        stop = min(no + 30, end + 1) if end is not None else no + 8
        excerpt = tuple(_strip_ts(x) for x in lines[no:stop])
        found.append(Finding(kind, summary, fp, no + 1, excerpt))

    for no, raw in enumerate(lines):
        line = _strip_ts(raw).strip()
        if line.startswith("---[ end Kernel panic"):
            continue  # the panic's closing line repeats its message
        if m := _PANIC_RE.search(line):
            add(FindingKind.PANIC, no, line, m.group(1))
            continue
        if no <= event_end:
            continue
        event = _event_start(line)
        if event is None and _TRACE_RE.search(line):
            frames = _frames_after(lines, no)
            add(FindingKind.CALL_TRACE, no, "Call Trace: " + " <- ".join(frames or ["?"]), *frames,
                end=no + 2 + len(frames))
            continue
        if event is None:
            continue
        kind, what = event
        event_end = _event_end(lines, no)
        rip = _rip_after(lines, no, EVENT_WINDOW)
        frames = _trace_in(lines, no, event_end)
        summary = line + (f" in {rip}" if rip else "")
        if frames:
            summary += " (called from " + " <- ".join(frames[:3]) + ")"
        add(kind, no, summary, what, rip, *frames, end=event_end)
    return found


def _event_start(line: str) -> tuple[FindingKind, str] | None:
    """The kind and identifying text of a BUG, Oops or WARNING line; None for other lines."""
    if m := _BUG_RE.search(line):
        return FindingKind.BUG, m.group(1) or f"kernel BUG at {m.group(2)}"
    if m := _OOPS_RE.search(line):
        return FindingKind.OOPS, m.group(1)
    if m := _WARN_RE.search(line):
        return FindingKind.WARNING, m.group(1)
    return None


def _event_end(lines: Sequence[str], no: int) -> int:
    """The last line of the event starting at ``no``: its end-trace or panic line, or the window."""
    for k in range(no + 1, min(len(lines), no + EVENT_WINDOW)):
        if _END_TRACE in lines[k] or _PANIC_RE.search(lines[k]):
            return k
    return min(len(lines), no + EVENT_WINDOW) - 1


def _trace_in(lines: Sequence[str], no: int, end: int) -> list[str]:
    """The first reliable frames of the call trace between lines ``no`` and ``end``."""
    for k in range(no, end + 1):
        if _TRACE_RE.search(lines[k]):
            return _frames_after(lines, k)
    return []


def _qemu_errors(lines: Sequence[str]) -> list[str]:
    return [m.group(1) for x in lines if (m := _QEMU_ERR_RE.match(x.strip()))]


def classify(
    lines: Sequence[str],
    *,
    expected_variant: str,
    timed_out: bool = False,
    qemu_returncode: int | None = 0,
    timeout: float | None = None,
) -> ConsoleAnalysis:
    """Judge one boot from its console ``lines`` (serial output with QEMU's own messages)."""
    markers = parse_markers(lines)
    findings = _scan_kernel(lines)
    tail = tuple(x.rstrip() for x in lines[-TAIL_LINES:])
    oracle = _oracle_findings(markers, expected_variant)
    if any(HALT_LINE in x for x in lines):
        findings.append(Finding(FindingKind.HALTED,
                                "the kernel halted instead of powering off or restarting"
                                " (no power-off driver?)",
                                fingerprint(FindingKind.HALTED, expected_variant)))
    status, first = _boot_status(lines, markers, findings, oracle, tail, timed_out=timed_out,
                                 qemu_returncode=qemu_returncode, timeout=timeout)
    if first is not None:
        findings.insert(0, first)
    # Kernel evidence first (it explains the oracle failure), oracle findings after.
    # QEMU never ran the kernel: the missing markers say nothing more.
    if status in (BootStatus.PASS, BootStatus.QEMU_ERROR):
        oracle = []
    all_findings = tuple(findings + oracle)
    return ConsoleAnalysis(status, markers, all_findings, tail)


def _oracle_findings(markers: ProbeMarkers, expected_variant: str) -> list[Finding]:
    """What the probe's own lines say against the positive oracle of ``expected_variant``."""
    expected_cpl = variant_records.get(expected_variant).expected_cpl
    oracle: list[Finding] = []
    if markers.variant is None:
        oracle.append(Finding(FindingKind.MARKER_MISSING, "the probe's start marker never appeared",
                              fingerprint(FindingKind.MARKER_MISSING, expected_variant)))
        return oracle
    if markers.variant != expected_variant:
        oracle.append(Finding(
            FindingKind.WRONG_VARIANT,
            f"probe says variant={markers.variant}, expected {expected_variant}",
            fingerprint(FindingKind.WRONG_VARIANT, markers.variant, expected_variant),
            markers.start_line))
    if markers.cpl != expected_cpl:
        oracle.append(Finding(
            FindingKind.WRONG_CPL,
            f"probe runs at cpl={markers.cpl}, expected cpl={expected_cpl} for {expected_variant}",
            fingerprint(FindingKind.WRONG_CPL, str(markers.cpl), expected_variant),
            markers.start_line))
    # Each failed ABI check is a finding of its own (its reason names the
    # call and errno), even if a buggy probe printed its done line anyway.
    for check in markers.abi_failed:
        oracle.append(Finding(
            FindingKind.ABI_FAILED, f"ABI check {check.name} failed: {check.reason}",
            fingerprint(FindingKind.ABI_FAILED, expected_variant, check.name, check.reason),
            check.line))
    if markers.done_status is None:
        oracle.append(Finding(FindingKind.DONE_MISSING, "the probe started but never finished",
                              fingerprint(FindingKind.DONE_MISSING, expected_variant)))
    elif markers.done_status != 0:
        oracle.append(Finding(
            FindingKind.PROBE_FAILED, f"the probe finished with status={markers.done_status}",
            fingerprint(FindingKind.PROBE_FAILED, str(markers.done_status))))
    return oracle


def _boot_status(
    lines: Sequence[str],
    markers: ProbeMarkers,
    findings: list[Finding],
    oracle: list[Finding],
    tail: tuple[str, ...],
    *,
    timed_out: bool,
    qemu_returncode: int | None,
    timeout: float | None,
) -> tuple[BootStatus, Finding | None]:
    """The boot's status, and the finding that explains it first when it is not the kernel's."""
    if timed_out:
        # Identify a hang by how far the probe got; the last kernel line is
        # too often a late, unrelated message to tell hangs apart.
        stage = ("after the done line" if markers.done_status is not None
                 else "after the bench line" if markers.ns_per_call is not None
                 else f"after ABI check {markers.abi[-1].name}" if markers.abi
                 else "after the start marker" if markers.variant is not None
                 else "before the probe started")
        limit = f"within {timeout:g}s" if timeout else "before the timeout"
        return BootStatus.TIMEOUT, Finding(FindingKind.TIMEOUT, f"no power-off {limit}, hung {stage}",
                                           fingerprint(FindingKind.TIMEOUT, stage), 0, tail)
    qemu_errs = _qemu_errors(lines)
    if qemu_errs and markers.variant is None and not findings:
        return BootStatus.QEMU_ERROR, Finding(
            FindingKind.QEMU_FAILED, "QEMU failed: " + qemu_errs[0],
            fingerprint(FindingKind.QEMU_FAILED, qemu_errs[0]), 0, tail)
    if qemu_returncode not in (0, None) and not lines_have_kernel(lines):
        return BootStatus.QEMU_ERROR, Finding(
            FindingKind.QEMU_FAILED, f"QEMU exited with code {qemu_returncode} before the kernel spoke",
            fingerprint(FindingKind.QEMU_FAILED, str(qemu_returncode)), 0, tail)
    if oracle or findings_fatal(findings):
        return BootStatus.FAIL, None
    return BootStatus.PASS, None


_FATAL = {FindingKind.PANIC, FindingKind.OOPS, FindingKind.BUG}


def findings_fatal(findings: Iterable[Finding]) -> bool:
    """A panic, Oops or BUG fails a boot even if the probe's lines made it out."""
    return any(f.kind in _FATAL for f in findings)


def lines_have_kernel(lines: Sequence[str]) -> bool:
    """Whether the kernel printed anything (tells a QEMU failure from an early crash)."""
    return any("Linux version" in x or x.startswith("[") for x in lines)
