"""The UKL application tooling: syscall scan, initramfs, classic probe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ukl_patchbot.check import uklapp
from ukl_patchbot.core.errors import UserError


def _obj(tmp_path: Path, name: str, body: str) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(body)
    obj = tmp_path / f"{name}.o"
    subprocess.run(["gcc", "-O2", "-c", "-o", obj, src], check=True)
    return obj


SYSCALL_FN = (
    "long f(long n){long r; __asm__ volatile(\"syscall\":\"=a\"(r):\"a\"(n)"
    ":\"rcx\",\"r11\",\"memory\"); return r;}\n"
)


def test_scan_finds_syscall_instruction(tmp_path: Path) -> None:
    with_sc = _obj(tmp_path, "a", SYSCALL_FN)
    without = _obj(tmp_path, "b", "long g(long n){return n*3;}\n")
    found = uklapp.find_syscall_instructions(with_sc)
    assert len(found) == 1 and found[0].startswith(".text+0x")
    assert uklapp.find_syscall_instructions(without) == []


def test_gas_macro_turns_syscall_into_call(tmp_path: Path) -> None:
    # The glibc series relies on an assembler macro shadowing the instruction.
    src = tmp_path / "m.c"
    src.write_text(
        '__asm__(".ifndef .Lukl_syscall\\n.set .Lukl_syscall, 1\\n'
        '.macro syscall\\ncall __ukl_syscall\\n.endm\\n.endif");\n'
        + SYSCALL_FN
    )
    obj = tmp_path / "m.o"
    subprocess.run(["gcc", "-O2", "-mno-red-zone", "-c", "-o", obj, src], check=True)
    assert uklapp.find_syscall_instructions(obj) == []
    syms = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    assert "U __ukl_syscall" in syms


def test_initramfs_holds_init(tmp_path: Path) -> None:
    init = tmp_path / "prog"
    init.write_bytes(b"\x7fELF-not-really")
    out = uklapp.make_initramfs(init, tmp_path / "initrd.cpio")
    listing = subprocess.run(["cpio", "-itv"], input=out.read_bytes(), capture_output=True, check=True)
    lines = listing.stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0].split()[-1] == "init" and lines[0].startswith("-rwxr-xr-x")
    assert not list(tmp_path.glob(".initrd.cpio*"))  # no temporary left behind


def test_classic_probe_runs_in_user_mode(tmp_path: Path) -> None:
    exe = uklapp.compile_probe("classic", tmp_path)
    out = subprocess.run([exe], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "ukl-probe: start variant=classic cpl=3 " in out
    assert "ukl-probe: bench syscall=getppid calls=1000000 ns_per_call=" in out
    assert out.rstrip().endswith("ukl-probe: done status=0")


def test_unknown_variant_and_missing_glibc(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown variant"):
        uklapp.compile_probe("bsd", tmp_path)
    with pytest.raises(UserError, match="needs a UKL glibc"):
        uklapp.compile_probe("ukl", tmp_path)


def test_glibc_cache_hit_and_stale_build_cleanup(tmp_path: Path) -> None:
    from ukl_patchbot.check import glibc

    cache = tmp_path / "glibc"
    key = glibc.glibc_key("tree-1")
    done = cache / f"glibc-{key}"
    (done / "build").mkdir(parents=True)
    (done / "build" / "libc.a").write_bytes(b"!<arch>\n")
    (done / "DONE").write_text("tree-1\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = cache / f".glibc-{key}.tmp-{dead.pid}"
    live = cache / f".glibc-{key}.tmp-{os.getpid()}"
    stale.mkdir()
    live.mkdir()
    # A finished entry answers without building (no source tree needed) ...
    hit = glibc.build_glibc(tmp_path / "no-src", cache, "tree-1", log_path=tmp_path / "log")
    assert hit.root == done and hit.libc_a.is_file()
    # ... and a killed build's leftover is gone, a running build's is kept.
    assert not stale.exists() and live.exists()
    # A half-built entry (no DONE) is not a hit.
    (done / "DONE").unlink()
    assert glibc.cached_glibc(cache, "tree-1") is None
