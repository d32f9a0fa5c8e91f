"""The probe's ABI checks, run for real in user mode (classic build, host glibc, static).

Each test runs the probe as root of a fresh user and network namespace
(`unshare`), where ``lo`` starts down, so the probe brings it up as it must
as PID 1. The host kernel decides one thing: without AF_ALG (some VM
kernels) the fpu check still runs its register checks over a pipe and then
fails with that errno, which the test accepts only when Python sees the
same errno.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.probe_run import host_af_alg_errno, probe_with_data, run_probe, unshare_skip_reason
from ukl_patchbot.check import uklapp
from ukl_patchbot.check.results import AbiStatus

CHECKS = ("files", "fds", "pipe", "memory", "time", "tcp", "fpu", "signals")

_skip = unshare_skip_reason()
pytestmark = pytest.mark.skipif(_skip is not None, reason=_skip or "")


def _expected_fpu_reason() -> str | None:
    e = host_af_alg_errno()
    return None if e is None else f"socket AF_ALG: errno={e} "


def test_every_abi_check_passes_in_a_fresh_namespace(tmp_path: Path) -> None:
    exe, data = probe_with_data(tmp_path)
    run = run_probe(exe, data)
    abi = run.abi()
    assert tuple(abi) == CHECKS, run.stdout
    fpu_reason = _expected_fpu_reason()
    for name, check in abi.items():
        if name == "fpu" and fpu_reason is not None:
            # The host kernel has no AF_ALG: only that may fail, after the register loop ran.
            assert check.status is AbiStatus.FAIL and check.reason.startswith(fpu_reason), check
            continue
        assert check.status is AbiStatus.OK, f"{name}: {check.reason}"
    if fpu_reason is None:
        assert run.returncode == 0 and run.markers.done_status == 0, run.stdout
    else:
        assert run.returncode == 1 and run.markers.done_status is None
    assert "ukl-probe: bench syscall=getppid" in run.stdout or fpu_reason is not None
    assert not (data / "scratch.txt").exists()  # the files check cleans up after itself


def test_a_clobbered_xmm_register_is_caught(tmp_path: Path) -> None:
    exe, data = probe_with_data(tmp_path, "PROBE_CLOBBER_XMM")
    run = run_probe(exe, data)
    fpu = run.abi()["fpu"]
    call = "sendmsg AF_ALG" if _expected_fpu_reason() is None else "write pipe"
    assert fpu.status is AbiStatus.FAIL and fpu.reason == f"after {call} #0: xmm11 changed"
    assert run.returncode != 0 and run.markers.done_status is None


def test_missing_or_changed_data_fails_the_file_checks(tmp_path: Path) -> None:
    exe, data = probe_with_data(tmp_path)
    (data / uklapp.PROBE_DATA_NAME).unlink()
    run = run_probe(exe, data)
    files = run.abi()["files"]
    assert files.status is AbiStatus.FAIL
    assert files.reason.startswith("open data file: errno=2 "), files
    assert run.returncode != 0 and run.markers.done_status is None

    blob = bytearray(uklapp.probe_data_files()[f"{uklapp.PROBE_DATA_DIR}/{uklapp.PROBE_DATA_NAME}"])
    blob[9000] ^= 1
    (data / uklapp.PROBE_DATA_NAME).write_bytes(bytes(blob))
    abi = run_probe(exe, data).abi()
    assert abi["files"].reason == "read: content differs from the generated data"
    assert abi["memory"].reason == "file mapping: content differs from the file"
    assert abi["tcp"].status is AbiStatus.OK and abi["signals"].status is AbiStatus.OK


def test_probe_source_and_pipeline_agree_on_the_data_file() -> None:
    src = uklapp.PROBE_SOURCE.read_text()
    assert f'#define DATA_DIR "/{uklapp.PROBE_DATA_DIR}"' in src
    assert f'#define DATA_NAME "{uklapp.PROBE_DATA_NAME}"' in src
    assert re.search(rf"#define DATA_SIZE {uklapp.PROBE_DATA_SIZE}\b", src)


def test_probe_object_has_no_syscall_instruction(tmp_path: Path) -> None:
    obj = tmp_path / "probe.o"
    subprocess.run(["gcc", "-O2", "-c", "-o", obj, uklapp.PROBE_SOURCE], check=True, timeout=120)
    assert uklapp.find_syscall_instructions(obj) == []
