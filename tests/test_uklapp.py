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


def _unpack(archive: Path, dest: Path) -> list[str]:
    dest.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet"], input=archive.read_bytes(), cwd=dest, check=True)
    listing = subprocess.run(["cpio", "-itv"], input=archive.read_bytes(), capture_output=True,
                             check=True)
    return listing.stdout.decode().splitlines()


def test_initramfs_holds_init_and_the_probe_data(tmp_path: Path) -> None:
    init = tmp_path / "prog"
    init.write_bytes(b"\x7fELF-not-really")
    out = uklapp.make_initramfs(init, tmp_path / "initrd.cpio")
    lines = _unpack(out, tmp_path / "x")
    assert [x.split()[-1] for x in lines] == ["init", "probe", "probe/data.bin"]
    assert lines[0].startswith("-rwxr-xr-x") and lines[1].startswith("drwxr-xr-x")
    assert (tmp_path / "x" / "init").read_bytes() == init.read_bytes()
    data = (tmp_path / "x" / "probe" / "data.bin").read_bytes()
    assert len(data) == uklapp.PROBE_DATA_SIZE
    assert data[:4] == bytes([0, 131, 6, 137]) and data[256] == (256 * 131 ^ 1) & 0xFF
    assert not list(tmp_path.glob(".initrd.cpio*"))  # no temporary left behind
    again = uklapp.make_initramfs(init, tmp_path / "again.cpio")
    assert again.read_bytes() == out.read_bytes()  # same inputs, same archive


def test_data_only_initramfs_has_no_init(tmp_path: Path) -> None:
    out = uklapp.make_initramfs(None, tmp_path / "data.cpio",
                                files={"probe/a/b.txt": b"b", "probe/c.txt": b"c"})
    lines = _unpack(out, tmp_path / "x")
    assert [x.split()[-1] for x in lines] == ["probe", "probe/a", "probe/a/b.txt", "probe/c.txt"]
    assert (tmp_path / "x" / "probe" / "a" / "b.txt").read_bytes() == b"b"
    with pytest.raises(UserError, match=r"'\.\./etc' is not a plain relative path"):
        uklapp.make_initramfs(None, tmp_path / "bad.cpio", files={"../etc": b""})
    assert not (tmp_path / "bad.cpio").exists()


def test_classic_probe_runs_in_user_mode(tmp_path: Path) -> None:
    # Outside a namespace and without its data only the markers matter here;
    # tests/test_probe_abi.py runs the ABI checks.
    exe = uklapp.compile_probe("classic", tmp_path)
    res = subprocess.run([exe], check=False, capture_output=True, text=True, timeout=60,
                         env={"UKL_PROBE_DATA": str(tmp_path / "none")})
    assert "ukl-probe: start variant=classic cpl=3 " in res.stdout
    assert "ukl-probe: write ok" in res.stdout
    assert "ukl-probe: abi files FAIL open data file: errno=2 " in res.stdout
    assert "ukl-probe: done" not in res.stdout and res.returncode == 1


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


def _fake_glibc_src(root: Path, makefile: str) -> Path:
    """A source tree whose configure writes ``makefile`` into the object directory."""
    root.mkdir()
    (root / "Makefile.in").write_text(makefile)
    conf = root / "configure"
    conf.write_text(f'#!/bin/sh\necho "$@" > configure.args\ncp {root}/Makefile.in Makefile\n')
    conf.chmod(0o755)
    return root


def test_glibc_build_makes_only_the_lib_and_start_file_targets(tmp_path: Path) -> None:
    from ukl_patchbot.check import glibc

    src = _fake_glibc_src(tmp_path / "src", (
        "lib:\n\techo lib >> targets; printf '!<arch>\\n' > libc.a\n"
        "csu/others:\n\techo csu/others >> targets; mkdir -p csu; "
        "touch csu/crt1.o csu/crti.o csu/crtn.o\n"
        "all:\n\techo all >> targets; false\n"))
    built = glibc.build_glibc(src, tmp_path / "cache", "tree-2", log_path=tmp_path / "log")
    assert (built.objdir / "targets").read_text().split() == ["lib", "csu/others"]
    assert all(built.start_file(c).is_file() for c in glibc.START_FILES)
    assert (built.objdir / "configparms").read_text() == "ukl = yes\n"


def test_glibc_build_without_start_files_names_them_and_leaves_no_entry(tmp_path: Path) -> None:
    from ukl_patchbot.check import glibc
    from ukl_patchbot.core.errors import InfraError

    src = _fake_glibc_src(tmp_path / "src", (
        "lib:\n\tprintf '!<arch>\\n' > libc.a\ncsu/others:\n\tmkdir -p csu; touch csu/crti.o\n"))
    with pytest.raises(InfraError, match=r"produced no csu/crt1\.o, csu/crtn\.o"):
        glibc.build_glibc(src, tmp_path / "cache", "tree-3", log_path=tmp_path / "log")
    assert glibc.cached_glibc(tmp_path / "cache", "tree-3") is None
    assert list((tmp_path / "cache").iterdir()) == []
