"""Build the probe for both variants and the UKL application object.

classic: the probe linked statically against the system's stock glibc, to be
``/init`` of an initramfs. UKL: the probe compiled without red zone, linked
with the UKL glibc, libgcc and the start files into one relocatable object
whose symbols all get the ``ukl_app_`` prefix (so glibc's ``memcpy`` never
meets the kernel's); glibc's call of ``__ukl_syscall`` is pointed at the
kernel's ``ukl_syscall_entry``. The kernel links that object into vmlinux
(``CONFIG_UKL_ARCHIVE``).

The initramfs of either variant carries the probe's data files, generated
here (`probe_data_files`); classic's holds the probe as ``/init`` too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from ukl_patchbot.check import variant_records
from ukl_patchbot.check.glibc import GlibcBuild
from ukl_patchbot.check.variant_records import Userland
from ukl_patchbot.core import runner
from ukl_patchbot.core.errors import UserError

APP_PREFIX = "ukl_app_"
GLIBC_SYSCALL_SYMBOL = "__ukl_syscall"
KERNEL_SYSCALL_ENTRY = "ukl_syscall_entry"
PROBE_SOURCE = Path(__file__).parent / "probe" / "probe.c"
# How UKL application code is compiled (the probe and real programs alike): it
# runs in kernel mode, where an interrupt uses the stack below %rsp, so no
# red zone; the kernel's stack protector canary is not glibc's.
UKL_APP_CFLAGS = ("-mno-red-zone", "-fno-stack-protector")

SECTION_PREFIX = ".ukl"

# After prefixing: glibc's syscall call goes to the kernel's entry, and the
# GOT symbol is the linker's own and must keep its name. Every allocated
# section gets the ".ukl" prefix (.text -> .ukl.text, .init_array ->
# .ukl.init_array): the kernel's linker script places the application by
# that prefix alone, so its rules never take a kernel section (the retpoline
# thunks' .text..*, sanitizer constructors' .init_array) and the
# application's code has bounds the kernel can test an address against.
_FIXUPS = (
    "--redefine-sym", f"{APP_PREFIX}{GLIBC_SYSCALL_SYMBOL}={KERNEL_SYSCALL_ENTRY}",
    "--redefine-sym", f"{APP_PREFIX}_GLOBAL_OFFSET_TABLE_=_GLOBAL_OFFSET_TABLE_",
    f"--prefix-alloc-sections={SECTION_PREFIX}",
)


def _gcc_file(name: str) -> Path:
    res = runner.run(["gcc", f"-print-file-name={name}"], capture=True, check=True)
    return Path(res.stdout.strip())


def compile_probe(
    variant: str,
    out_dir: Path,
    *,
    glibc: GlibcBuild | None = None,
    source: Path = PROBE_SOURCE,
    log_path: Path | None = None,
    defines: tuple[str, ...] = (),
) -> Path:
    """Compile the probe: a static executable (classic) or an object file (ukl).

    ``defines`` are extra ``-D`` macros (``PROBE_CRASH`` builds a probe that
    faults right after its start marker, for the failure-is-loud tests).
    """
    record = variant_records.get(variant)
    if not source.is_file():
        raise UserError(f"probe source {source} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    common = ["gcc", "-O2", "-Wall", f'-DPROBE_VARIANT="{variant}"', *(f"-D{d}" for d in defines)]
    if record.userland is Userland.STOCK_STATIC:
        out = out_dir / f"probe-{variant}"
        runner.run([*common, "-static", "-o", out, source], log_path=log_path, timeout=300, check=True)
        return out
    if glibc is None:
        raise UserError("the UKL probe needs a UKL glibc build")
    out = out_dir / f"probe-{variant}.o"
    runner.run(
        [*common, *UKL_APP_CFLAGS, "-c", "-o", out, source],
        log_path=log_path, timeout=300, check=True,
    )
    return out


def link_application(app_objects: list[Path], glibc: GlibcBuild, out: Path, *,
                     log_path: Path | None = None) -> Path:
    """Link application objects with the UKL glibc into the UKL application object.

    The position-independent start files (crtbeginS/crtendS) are used: the
    static ones hold 32-bit absolute relocations that cannot reach kernel
    addresses.
    The result is written beside ``out`` and renamed into place, and it is
    checked: a ``syscall`` instruction left in it fails here, not at boot.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_name(f".{out.name}.raw-{os.getpid()}")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        runner.run(
            ["ld", "-r", "-d", "-o", raw,
             glibc.start_file("crt1.o"), glibc.start_file("crti.o"), _gcc_file("crtbeginS.o"),
             *app_objects,
             "--start-group", glibc.libc_a, _gcc_file("libgcc.a"), _gcc_file("libgcc_eh.a"),
             "--end-group",
             _gcc_file("crtendS.o"), glibc.start_file("crtn.o")],
            log_path=log_path, timeout=300, check=True,
        )
        runner.run(["objcopy", f"--prefix-symbols={APP_PREFIX}", raw, tmp],
                   log_path=log_path, timeout=300, check=True)
        runner.run(["objcopy", *_FIXUPS, tmp], log_path=log_path, timeout=300, check=True)
        left = find_syscall_instructions(tmp)
        if left:
            raise UserError(
                f"{out.name}: {len(left)} syscall instruction(s) left, first at {left[0]}",
                hint="the glibc was not built in UKL mode (configparms: ukl = yes)",
            )
        os.replace(tmp, out)
    finally:
        raw.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return out


def find_syscall_instructions(obj: Path) -> list[str]:
    """Offsets (``section+0xN``) of every ``syscall`` instruction in an object file."""
    res = runner.run(["objdump", "-d", "--no-show-raw-insn", obj], capture=True, check=True)
    found: list[str] = []
    section = "?"
    for line in res.stdout.splitlines():
        if line.startswith("Disassembly of section "):
            section = line.split()[-1].rstrip(":")
            continue
        parts = line.split(":", 1)
        if len(parts) == 2 and parts[1].strip().split()[:1] == ["syscall"]:
            found.append(f"{section}+0x{parts[0].strip()}")
    return found


# The probe's data files (probe.c: DATA_DIR, DATA_NAME, DATA_SIZE, data_byte):
# the pipeline writes them, the probe checks every byte.
PROBE_DATA_DIR = "probe"
PROBE_DATA_NAME = "data.bin"
PROBE_DATA_SIZE = 12411  # three pages and a partial one
# Fixed metadata, so the same inputs give the same archive bytes.
_CPIO_MTIME = 1_600_000_000


def probe_data_files() -> dict[str, bytes]:
    """The probe's data files by path inside the initramfs (byte i is ``(i*131) ^ (i>>8)``)."""
    data = bytes(((i * 131) ^ (i >> 8)) & 0xFF for i in range(PROBE_DATA_SIZE))
    return {f"{PROBE_DATA_DIR}/{PROBE_DATA_NAME}": data}


def write_probe_data(root: Path) -> Path:
    """Write the probe's data files under ``root``; returns the directory the probe reads.

    For running the probe outside an initramfs: pass the result as
    ``UKL_PROBE_DATA`` in its environment.
    """
    for rel, data in probe_data_files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root / PROBE_DATA_DIR


def _archive_names(files: Mapping[str, bytes], has_init: bool) -> list[str]:
    """Every path cpio must store, each directory before what it holds, in a fixed order."""
    names: set[str] = {"init"} if has_init else set()
    for rel in files:
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or ".." in parts or rel == "init":
            raise UserError(f"initramfs file name {rel!r} is not a plain relative path")
        names.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
    return sorted(names)


def make_initramfs(init_binary: Path | None, out: Path, *,
                   files: Mapping[str, bytes] | None = None,
                   log_path: Path | None = None) -> Path:
    """A newc cpio archive: ``init_binary`` as ``/init`` (if given) and ``files``.

    ``files`` maps relative paths to contents and defaults to the probe's
    data files (`probe_data_files`): classic boots /init plus the data, UKL
    (whose probe is inside vmlinux) only the data. Written, then renamed.
    """
    files = probe_data_files() if files is None else files
    names = _archive_names(files, init_binary is not None)
    stage = out.with_name(f".{out.name}.d-{os.getpid()}")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        if init_binary is not None:
            shutil.copy2(init_binary, stage / "init")
            (stage / "init").chmod(0o755)
        for rel, data in files.items():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_bytes(data)
            (stage / rel).chmod(0o644)
        for name in names:
            if (stage / name).is_dir():
                (stage / name).chmod(0o755)
            os.utime(stage / name, (_CPIO_MTIME, _CPIO_MTIME))
        with open(tmp, "wb") as f:
            runner.run(["cpio", "--quiet", "--reproducible", "-o", "-H", "newc", "-R", "0:0"],
                       cwd=stage, input="".join(f"{n}\n" for n in names).encode(),
                       stdout_file=f, log_path=log_path, timeout=60, check=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        tmp.unlink(missing_ok=True)
    return out
