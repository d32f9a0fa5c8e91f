"""Boot a kernel image in QEMU and judge the console against the probe's oracle.

The serial console goes to QEMU's stdout, which the runner streams into the
log file; watching the lines as they arrive gives the time to the marker.
``-no-reboot`` plus ``panic=-1`` turn a panic into QEMU exiting, and a hard
timeout bounds everything else. A failed boot is retried once; when the two
attempts disagree the result is marked flaky.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ukl_patchbot.check import console, variant_records
from ukl_patchbot.check.kbuild import require_tools
from ukl_patchbot.check.results import BootAttempt, BootResult, BootStatus, ConsoleAnalysis
from ukl_patchbot.core import cmdline
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.runner import run

log = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
DEFAULT_TIMEOUT = 60.0
# Kernel command line every boot gets. oops=panic: an Oops outside PID 1
# would otherwise leave a live but useless machine until the timeout.
BASE_APPEND = ("console=ttyS0", "panic=-1", "oops=panic", "loglevel=7")


def _kvm_works() -> bool:
    """Start QEMU with KVM, paused; it either stays up (KVM works) or dies at once."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    res = run([QEMU, "-accel", "kvm", "-cpu", "host", "-display", "none", "-nodefaults",
               "-no-reboot", "-S", "-monitor", "none", "-serial", "none"],
              timeout=2.0, capture=True)
    # Here KVM is "present but broken": QEMU aborts on an MSR write within
    # milliseconds. Still running after the timeout means it set up the vCPU.
    return res.timed_out


@functools.lru_cache(maxsize=1)
def detect_accel() -> str:
    """'kvm' when a probe shows KVM really works, else 'tcg'. PATCHBOT_QEMU_ACCEL overrides."""
    forced = os.environ.get("PATCHBOT_QEMU_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    accel = "kvm" if _kvm_works() else "tcg"
    log.info("QEMU accelerator: %s", accel)
    return accel


def qemu_argv(
    kernel: Path,
    initrd: Path | None,
    *,
    accel: str,
    append: Sequence[str] = (),
    memory: str = "256M",
    devices: Sequence[str] = (),
) -> list[str]:
    """The QEMU command line for one boot (serial console on stdout).

    ``devices`` are further QEMU options (a NIC and its network backend).
    """
    cpu = ["-cpu", "host"] if accel == "kvm" else []
    argv = [QEMU, "-accel", accel, *cpu, "-m", memory, "-smp", "1", "-nodefaults",
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", str(kernel)]
    if initrd is not None:
        argv += ["-initrd", str(initrd)]
    argv += [*devices, "-append", " ".join([*BASE_APPEND, *append])]
    return argv


def boot_once(
    kernel: Path,
    initrd: Path | None,
    variant: str,
    *,
    log_path: Path,
    timeout: float = DEFAULT_TIMEOUT,
    accel: str | None = None,
    append: Sequence[str] = (),
    on_line: Callable[[str], None] | None = None,
) -> BootAttempt:
    """One QEMU run, classified. Never raises for a failed boot."""
    accel = accel or detect_accel()
    argv = qemu_argv(kernel, initrd, accel=accel, append=append)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)
    lines: list[str] = []
    marker_at: list[float] = []
    start = time.monotonic()

    def watch(line: str) -> None:
        lines.append(line)
        if not marker_at and "ukl-probe: start " in line:
            marker_at.append(time.monotonic() - start)
        if on_line is not None:
            on_line(line)
        if console.HALT_LINE in line:
            # A halted kernel never powers off: stop QEMU now instead of
            # waiting for the timeout (the runner kills the process group).
            raise _Halted

    try:
        res = run(argv, log_path=log_path, timeout=timeout, on_line=watch)
        timed_out, rc = res.timed_out, res.returncode
    except _Halted:
        timed_out, rc = False, 0
    duration = time.monotonic() - start
    analysis: ConsoleAnalysis = console.classify(
        lines, expected_variant=variant, timed_out=timed_out, qemu_returncode=rc, timeout=timeout)
    return BootAttempt(analysis.status, duration, marker_at[0] if marker_at else None,
                       accel, rc, str(log_path), analysis.markers, analysis.findings, analysis.tail)


class _Halted(Exception):
    """Raised from the line watcher to stop QEMU once the kernel has halted."""


def boot(
    kernel: Path,
    initrd: Path | None,
    variant: str,
    *,
    log_dir: Path,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 1,
    append: Sequence[str] = (),
    on_line: Callable[[str], None] | None = None,
) -> BootResult:
    """Boot, retrying a failed boot ``retries`` times; flaky when attempts disagree."""
    variant_records.get(variant)  # an unknown variant is the caller's error, before QEMU runs
    if not kernel.is_file():
        raise UserError(f"kernel image {kernel} does not exist")
    require_tools([QEMU])
    attempts: list[BootAttempt] = []
    for n in range(1 + max(0, retries)):
        a = boot_once(kernel, initrd, variant, log_path=log_dir / f"boot-{variant}-{n + 1}.log",
                      timeout=timeout, append=append, on_line=on_line)
        attempts.append(a)
        if a.status == BootStatus.PASS:
            break
    statuses = {a.status for a in attempts}
    flaky = len(statuses) > 1
    status = BootStatus.PASS if BootStatus.PASS in statuses else attempts[-1].status
    repro = cmdline.shell_line(qemu_argv(kernel, initrd, accel=attempts[-1].accel, append=append))
    notes: tuple[str, ...] = ()
    if flaky:
        notes = ("flaky: attempts disagree (" + ", ".join(a.status.value for a in attempts) + ")",)
    return BootResult(status, tuple(attempts), flaky, repro, notes)
