"""Console log classification on recorded logs (tests/data/console/, see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ukl_patchbot.check import console
from ukl_patchbot.check.results import BootStatus, ConsoleAnalysis, FindingKind

DATA = Path(__file__).parent / "data" / "console"


def lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def kinds(analysis: ConsoleAnalysis) -> list[FindingKind]:
    return [f.kind for f in analysis.findings]


def test_classic_pass_parses_all_markers() -> None:
    a = console.classify(lines("classic-pass.log"), expected_variant="classic")
    assert a.status == BootStatus.PASS
    assert a.markers.variant == "classic" and a.markers.cpl == 3 and a.markers.pid == 1
    assert a.markers.bench_syscall == "getppid" and a.markers.bench_calls == 20000
    assert a.markers.ns_per_call is not None and 10 < a.markers.ns_per_call < 100000
    assert a.markers.done_status == 0
    assert FindingKind.PANIC not in kinds(a)


def test_same_log_expected_as_ukl_fails_on_variant_and_cpl() -> None:
    a = console.classify(lines("classic-pass.log"), expected_variant="ukl")
    assert a.status == BootStatus.FAIL
    assert FindingKind.WRONG_VARIANT in kinds(a)
    assert FindingKind.WRONG_CPL in kinds(a)


def test_marker_with_wrong_cpl() -> None:
    # A classic kernel running a probe that claims to be the UKL one: right
    # name, but user mode, so the oracle must refuse it.
    a = console.classify(lines("claims-ukl-cpl3.log"), expected_variant="ukl")
    assert a.status == BootStatus.FAIL
    assert FindingKind.WRONG_CPL in kinds(a)
    assert FindingKind.WRONG_VARIANT not in kinds(a)
    wrong = next(f for f in a.findings if f.kind == FindingKind.WRONG_CPL)
    assert "cpl=3" in wrong.summary and "cpl=0" in wrong.summary


def test_no_init_panics_and_marker_missing() -> None:
    a = console.classify(lines("panic-no-init.log"), expected_variant="classic")
    assert a.status == BootStatus.FAIL
    assert kinds(a)[0] == FindingKind.PANIC
    assert FindingKind.MARKER_MISSING in kinds(a)
    assert "No working init found" in a.findings[0].summary


def test_init_exit_panics_even_after_done_line() -> None:
    a = console.classify(lines("panic-init-exited.log"), expected_variant="classic")
    assert a.markers.done_status == 0
    assert a.status == BootStatus.FAIL
    assert FindingKind.PANIC in kinds(a)
    assert any("Attempted to kill init" in f.summary for f in a.findings)


def test_hang_is_a_timeout_with_last_lines() -> None:
    log = lines("timeout-hang.log")
    a = console.classify(log, expected_variant="classic", timed_out=True, timeout=8)
    assert a.status == BootStatus.TIMEOUT
    first = a.findings[0]
    assert first.kind == FindingKind.TIMEOUT and "8s" in first.summary
    assert len(a.tail) == console.TAIL_LINES
    assert a.tail[-1] == log[-1].rstrip()
    assert FindingKind.DONE_MISSING in kinds(a)


def test_halted_without_poweroff_still_passes_with_a_note() -> None:
    a = console.classify(lines("timeout-halted.log"), expected_variant="classic")
    assert a.status == BootStatus.PASS
    assert FindingKind.HALTED in kinds(a)


def test_qemu_failing_to_start() -> None:
    a = console.classify(lines("qemu-bad-kernel.log"), expected_variant="classic", qemu_returncode=1)
    assert a.status == BootStatus.QEMU_ERROR
    assert a.findings[0].kind == FindingKind.QEMU_FAILED
    assert a.findings[0].summary == "QEMU failed: invalid kernel header"
    assert kinds(a) == [FindingKind.QEMU_FAILED]


def test_qemu_nonzero_exit_without_kernel_output() -> None:
    a = console.classify(["some noise"], expected_variant="ukl", qemu_returncode=134)
    assert a.status == BootStatus.QEMU_ERROR
    assert "134" in a.findings[0].summary


def test_oops_is_one_event_with_function_and_trace() -> None:
    a = console.classify(lines("ukl-oops.log"), expected_variant="ukl")
    assert a.status == BootStatus.FAIL
    ks = kinds(a)
    # BUG line, Oops line, RIP and call trace are one event; then the panic.
    assert ks == [FindingKind.BUG, FindingKind.PANIC, FindingKind.DONE_MISSING]
    bug = a.findings[0]
    assert "NULL pointer dereference" in bug.summary and "in ukl_app_main" in bug.summary
    # "? rest_init" is an unreliable frame and is left out.
    assert "(called from ukl_libc_start_main <- ukl_run_application <- kernel_init)" in bug.summary
    assert a.findings[1].summary == "Kernel panic - not syncing: Fatal exception"


def test_call_trace_outside_an_event_is_its_own_finding() -> None:
    log = ["[    1.0] INFO: task swapper:1 blocked for more than 120 seconds.",
           "[    1.1] Call Trace:", "[    1.2]  <TASK>", "[    1.3]  schedule+0x40/0xa0",
           "[    1.4]  ukl_wait+0x10/0x20", "[    1.5]  </TASK>"]
    a = console.classify(log, expected_variant="ukl", timed_out=True)
    trace = next(f for f in a.findings if f.kind == FindingKind.CALL_TRACE)
    assert trace.summary == "Call Trace: schedule <- ukl_wait"


def test_fingerprints_are_stable_across_runs_of_the_same_crash() -> None:
    a = console.classify(lines("ukl-oops.log"), expected_variant="ukl")
    b = console.classify(lines("ukl-oops-rerun.log"), expected_variant="ukl")
    assert [f.fingerprint for f in a.findings] == [f.fingerprint for f in b.findings]
    assert all(len(f.fingerprint.rsplit("-", 1)[1]) == 8 for f in a.findings)


def test_different_crashes_get_different_fingerprints() -> None:
    a = console.classify(lines("ukl-oops.log"), expected_variant="ukl")
    c = console.classify(lines("ukl-bug-at.log"), expected_variant="ukl")
    assert {f.fingerprint for f in a.findings if f.kind == FindingKind.BUG}.isdisjoint(
        f.fingerprint for f in c.findings if f.kind == FindingKind.BUG)


def test_kernel_bug_at_line() -> None:
    a = console.classify(lines("ukl-bug-at.log"), expected_variant="ukl")
    bug = next(f for f in a.findings if f.kind == FindingKind.BUG)
    assert "mm/slub.c" in bug.summary
    assert "in kfree" in bug.summary and "ukl_sys_munmap" in bug.summary


def test_warning_is_reported_but_does_not_fail() -> None:
    a = console.classify(lines("classic-warning.log"), expected_variant="classic")
    assert a.status == BootStatus.PASS
    warn = next(f for f in a.findings if f.kind == FindingKind.WARNING)
    assert "kernel/fork.c" in warn.summary
    assert a.markers.ns_per_call == pytest.approx(212.4)


def test_probe_nonzero_status_fails() -> None:
    log = lines("classic-pass.log")
    bad = [x.replace("done status=0", "done status=3") for x in log]
    a = console.classify(bad, expected_variant="classic")
    assert a.status == BootStatus.FAIL
    assert FindingKind.PROBE_FAILED in kinds(a)


def test_normalize_removes_run_noise() -> None:
    x = console.normalize("[   12.345678] CPU: 1 PID: 77 at ffffffff81234567 0x10")
    assert x == console.normalize("[    0.000001] CPU: 0 PID: 1 at ffffffff8abcdef0 0x2f")
    assert "ffff" not in x


def test_real_ukl_crash_is_one_bug_event_then_panic() -> None:
    # Recorded from tests/test_check_e2e.py: the UKL probe writes to address 8
    # in kernel mode (tinyconfig has no kallsyms, so RIP is a bare address).
    a = console.classify(lines("ukl-crash-real.log"), expected_variant="ukl")
    assert a.status == BootStatus.FAIL
    assert kinds(a) == [FindingKind.BUG, FindingKind.PANIC, FindingKind.DONE_MISSING]
    assert a.markers.cpl == 0 and a.markers.variant == "ukl"
    assert "NULL pointer dereference" in a.findings[0].summary
    # Same crash, same fingerprint as the hand-written log's first line says.
    assert a.findings[1].fingerprint == console.fingerprint(FindingKind.PANIC, "Fatal exception")


def test_abi_lines_become_data_and_each_fail_a_finding() -> None:
    a = console.classify(lines("ukl-abi-fail.log"), expected_variant="ukl")
    assert a.status == BootStatus.FAIL
    names = [c.name for c in a.markers.abi]
    assert names == ["files", "fds", "pipe", "memory", "time", "tcp", "fpu", "signals"]
    failed = {c.name: c for c in a.markers.abi_failed}
    assert sorted(failed) == ["fds", "fpu"]
    assert failed["fpu"].reason == "after read AF_ALG #17: xmm9 changed"
    assert failed["fds"].reason.endswith("errno=11 (Resource temporarily unavailable)")
    assert failed["fpu"].line == 16
    abi = [f for f in a.findings if f.kind == FindingKind.ABI_FAILED]
    assert [f.summary for f in abi] == [
        "ABI check fds failed: " + failed["fds"].reason,
        "ABI check fpu failed: after read AF_ALG #17: xmm9 changed"]
    assert abi[1].line == 16
    assert FindingKind.PANIC in kinds(a) and FindingKind.DONE_MISSING in kinds(a)


def test_an_abi_fail_fails_the_boot_even_with_the_done_line() -> None:
    base = lines("classic-pass.log")
    at = next(i for i, x in enumerate(base) if "ukl-probe: done" in x)
    ok = [*base[:at], "ukl-probe: abi files ok", *base[at:]]
    assert console.classify(ok, expected_variant="classic").status == BootStatus.PASS
    bad = [*base[:at], "ukl-probe: abi files ok", "ukl-probe: abi time FAIL time: errno=38 (x)",
           *base[at:]]
    a = console.classify(bad, expected_variant="classic")
    assert a.status == BootStatus.FAIL and a.markers.done_status == 0
    assert [f.kind for f in a.findings] == [FindingKind.ABI_FAILED]


def test_abi_fingerprint_ignores_the_iteration_but_not_the_register() -> None:
    def fp(line: str) -> str:
        a = console.classify(["ukl-probe: start variant=ukl cpl=0 pid=1", line],
                             expected_variant="ukl")
        return next(f.fingerprint for f in a.findings if f.kind == FindingKind.ABI_FAILED)

    assert fp("ukl-probe: abi fpu FAIL after read AF_ALG #17: xmm9 changed") == \
        fp("ukl-probe: abi fpu FAIL after read AF_ALG #230: xmm9 changed")
    assert fp("ukl-probe: abi fpu FAIL after read AF_ALG #17: xmm9 changed") != \
        fp("ukl-probe: abi fpu FAIL after read AF_ALG #17: xmm12 changed")


def test_a_hang_names_the_last_abi_check_that_finished() -> None:
    hang = ["ukl-probe: start variant=ukl cpl=0 pid=1", "ukl-probe: abi files ok",
            "ukl-probe: abi tcp ok"]
    a = console.classify(hang, expected_variant="ukl", timed_out=True, timeout=30)
    assert a.status == BootStatus.TIMEOUT
    assert a.findings[0].summary == "no power-off within 30s, hung after ABI check tcp"


def test_parse_abi_rejects_other_lines() -> None:
    assert console.parse_abi("ukl-probe: abi files ok") is not None
    assert console.parse_abi("ukl-probe: abi files maybe") is None
    assert console.parse_abi("ukl-probe: bench syscall=getppid calls=1 ns_per_call=2") is None


def test_real_classic_boot_with_every_abi_check_ok() -> None:
    a = console.classify(lines("classic-abi-pass.log"), expected_variant="classic")
    assert a.status == BootStatus.PASS and a.findings == ()
    assert [(c.name, c.status.value) for c in a.markers.abi] == [
        (n, "ok") for n in ("files", "fds", "pipe", "memory", "time", "tcp", "fpu", "signals")]
    assert a.markers.done_status == 0 and a.markers.bench_calls == 1000000
