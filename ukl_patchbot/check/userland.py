"""The userland of each variant, made by the recipe its record names.

A stock-static variant (classic) links the probe against the system's glibc
(a static /init in an initramfs); a linked-app variant (UKL) needs the patched
glibc first, then the probe object linked with it into the application object
its kernel links into vmlinux. A
glibc or probe build error fails that variant as a result, with its first
error lines; it is not a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ukl_patchbot.check import glibc, uklapp, variant_records
from ukl_patchbot.check.results import (
    BootResult,
    BootStatus,
    BuildResult,
    BuildStatus,
    ConfigResult,
    ConfigStatus,
    VariantResult,
)
from ukl_patchbot.check.variant_records import Initramfs, Userland
from ukl_patchbot.check.variants import Workspace
from ukl_patchbot.check.workspace import export_once
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import CommandFailed, UserError
from ukl_patchbot.core.progress import Progress

# Under the workspace's probe/ directory.
INIT_INITRD = "initramfs.cpio"  # /init and the probe's data files
DATA_INITRD = "data.cpio"       # the probe's data files only

_Step = Callable[[str, Callable[[], Path], str, Path], "Path | None"]


def _failed_variant(name: str, step: str, lines: tuple[str, ...], log_path: str | None
                    ) -> VariantResult:
    """A variant that could not even be built because its userland (glibc, probe) failed."""
    b = BuildResult(BuildStatus.FAILED, 0.0, 0, (f"{step} failed:", *lines), None, None, log_path)
    return VariantResult(name, ConfigResult(ConfigStatus.SKIPPED), b, BootResult(BootStatus.SKIPPED))


def build(cfg: Config, ws: Workspace, glibc_ref: str | None, glibc_tree: str | None,
          out_dir: Path, wanted: tuple[str, ...], progress: Progress
          ) -> tuple[dict[str, Path], dict[str, VariantResult]]:
    """The probe for each variant: classic /init in an initramfs, the UKL application object.

    Classic links the probe against the system's stock glibc; UKL needs the
    patched glibc first. Returns the artifacts ("initrd": /init and the probe's
    data; "data_initrd": only the data, for a variant whose probe is inside
    vmlinux; "ukl_archive") and,
    for variants whose userland failed to build, a ready failed result: a
    glibc or probe build error fails that variant, it is not a traceback.
    """
    arts: dict[str, Path] = {}
    failed: dict[str, VariantResult] = {}
    probe_dir = ws.root / "probe"

    def step(name: str, fn: Callable[[], Path], variant: str, log_path: Path) -> Path | None:
        progress.step(name)
        start = time.monotonic()
        try:
            path = fn()
        except (CommandFailed, UserError) as exc:
            tail = exc.tail if isinstance(exc, CommandFailed) else exc.message
            failed[variant] = _failed_variant(variant, name, tuple(tail.splitlines()[-10:]),
                                              str(log_path))
            progress.finish(name, "failed", time.monotonic() - start)
            return None
        progress.finish(name, "ok", time.monotonic() - start)
        return path

    records = [r for r in variant_records.RECORDS if r.name in wanted]
    if any(r.initramfs is Initramfs.DATA_ONLY for r in records):
        arts["data_initrd"] = uklapp.make_initramfs(None, probe_dir / DATA_INITRD,
                                                    log_path=out_dir / "initramfs-data.log")
    for record in records:
        if record.userland is Userland.STOCK_STATIC:
            _stock_probe(record, probe_dir, out_dir, step, arts)
        elif glibc_ref is not None and glibc_tree is not None:
            _linked_app(cfg, ws, record, glibc_tree, glibc_ref, probe_dir, out_dir, step, arts)
    return arts, failed


def _stock_probe(record: variant_records.Variant, probe_dir: Path, out_dir: Path, step: _Step,
                 arts: dict[str, Path]) -> None:
    """The probe linked against the system's glibc, as /init of an initramfs."""
    name = record.name
    log_path = out_dir / f"probe-{name}.log"
    init = step(f"probe {name}", lambda: uklapp.compile_probe(
        name, probe_dir / name, log_path=log_path), name, log_path)
    if init is not None:
        arts["initrd"] = uklapp.make_initramfs(init, probe_dir / INIT_INITRD,
                                               log_path=log_path)


def _linked_app(cfg: Config, ws: Workspace, record: variant_records.Variant, glibc_tree: str,
                glibc_ref: str, probe_dir: Path, out_dir: Path, step: _Step,
                arts: dict[str, Path]) -> None:
    """The patched glibc, then the probe linked with it into the application object."""
    name = record.name
    glibc_src = ws.root / "src" / "glibc"
    export_once(cfg, "glibc", glibc_ref, glibc_tree, glibc_src)
    log_g = out_dir / "build-glibc.log"
    built: list[glibc.GlibcBuild] = []

    def build_glibc() -> Path:
        built.append(glibc.build_glibc(glibc_src, cfg.cache_dir / "glibc", glibc_tree,
                                       log_path=log_g))
        return built[0].root

    if step(f"glibc ({record.label})", build_glibc, name, log_g) is None:
        return
    gl = built[0]
    log_u = out_dir / f"probe-{name}.log"

    def app() -> Path:
        obj = uklapp.compile_probe(name, probe_dir / name, glibc=gl, log_path=log_u)
        return uklapp.link_application([obj], gl, probe_dir / name / f"{name}-app.o",
                                       log_path=log_u)

    archive = step(f"probe {name}", app, name, log_u)
    if archive is not None:
        arts["ukl_archive"] = archive
