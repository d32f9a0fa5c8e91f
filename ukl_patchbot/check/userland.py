"""The userland of each variant: the probe for classic, the UKL glibc and application for UKL.

Classic links the probe against the system's stock glibc (a static /init in
an initramfs); UKL needs the patched glibc first, then the probe object linked
with it into the application object the UKL kernel links into vmlinux. A
glibc or probe build error fails that variant as a result, with its first
error lines; it is not a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ukl_patchbot.check.boot import BootResult
from ukl_patchbot.check.console import BootStatus
from ukl_patchbot.check.kbuild import BuildResult, BuildStatus, ConfigResult, ConfigStatus
from ukl_patchbot.check.report import VariantResult
from ukl_patchbot.check.variants import Workspace
from ukl_patchbot.check.workspace import export_once
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import CommandFailed, UserError
from ukl_patchbot.core.progress import Progress


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
    patched glibc first. Returns the artifacts ("initrd", "ukl_archive") and,
    for variants whose userland failed to build, a ready failed result: a
    glibc or probe build error fails that variant, it is not a traceback.
    """
    from ukl_patchbot.check import glibc, uklapp

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

    if "classic" in wanted:
        log_c = out_dir / "probe-classic.log"
        init = step("probe classic", lambda: uklapp.compile_probe(
            "classic", probe_dir / "classic", log_path=log_c), "classic", log_c)
        if init is not None:
            arts["initrd"] = uklapp.make_initramfs(init, probe_dir / "initramfs.cpio",
                                                   log_path=log_c)
    if "ukl" in wanted and glibc_ref is not None and glibc_tree is not None:
        glibc_src = ws.root / "src" / "glibc"
        export_once(cfg, "glibc", glibc_ref, glibc_tree, glibc_src)
        log_g = out_dir / "build-glibc.log"
        built: list[glibc.GlibcBuild] = []

        def build_glibc() -> Path:
            built.append(glibc.build_glibc(glibc_src, cfg.cache_dir / "glibc", glibc_tree,
                                           log_path=log_g))
            return built[0].root

        if step("glibc (UKL)", build_glibc, "ukl", log_g) is not None:
            gl = built[0]
            log_u = out_dir / "probe-ukl.log"

            def app() -> Path:
                obj = uklapp.compile_probe("ukl", probe_dir / "ukl", glibc=gl, log_path=log_u)
                return uklapp.link_application([obj], gl, probe_dir / "ukl" / "ukl-app.o",
                                               log_path=log_u)

            archive = step("probe ukl", app, "ukl", log_u)
            if archive is not None:
                arts["ukl_archive"] = archive
    return arts, failed
