"""The app stage of `patchbot check --app NAME`: a real program in every variant that passed.

For each variant (its record says how its userland is made): the program
built from its Debian source for that userland; classic boots it as /init of
an initramfs that also holds its files, UKL links it with the UKL glibc into
vmlinux and boots the same files as a data initramfs. The kernel is the
variant's, plus the recipe's kconfig fragment (a NIC, TCP/IP, epoll), built
in the check's workspace and cached like every image. The verdict is the
answer the program gives to a request from the host (`httpproof`).

Anything that stops a program from being tried (the source cannot be
fetched, the program or its kernel does not build) is that variant's failed
result, never an exception.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ukl_patchbot.check import glibc, uklapp, variant_records, variants
from ukl_patchbot.check.apps import build, httpproof, recipes, rootfs
from ukl_patchbot.check.apps.recipes import AppRecipe
from ukl_patchbot.check.results import AppResult, AppStatus, VariantResult
from ukl_patchbot.check.variant_records import Userland
from ukl_patchbot.core.cache import ContentCache
from ukl_patchbot.core.errors import CommandFailed, InfraError, PatchbotError
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.upstream import debsrc

DEFAULT_TIMEOUT = 90.0


@dataclasses.dataclass(frozen=True)
class StageInputs:
    """What the app stage needs from the check around it."""

    kconfig_dir: Path
    cache_dir: Path  # the patchbot cache: apps/ (sources, builds), kernels/, glibc/
    tree_id: str  # the Linux tree the variants were built from
    glibc_tree: str | None  # the UKL glibc's tree, when a variant links against it
    boot_timeout: float = DEFAULT_TIMEOUT
    retries: int = 1
    profile: str | None = None  # the check's kconfig profile, applied to the program's kernels too


def _first_line(exc: PatchbotError) -> str:
    text = exc.tail if isinstance(exc, CommandFailed) and exc.tail else exc.message
    lines = [x for x in text.splitlines() if x.strip()]
    return lines[-1] if lines else str(exc)


def run_stage(app: str, ws: variants.Workspace, done: tuple[VariantResult, ...],
              inputs: StageInputs, out_dir: Path, progress: Progress) -> tuple[AppResult, ...]:
    """Run program ``app`` in every variant of ``done`` (those that failed are skipped)."""
    recipe = recipes.get(app)
    app_dir = out_dir / f"app-{recipe.name}"
    app_dir.mkdir(parents=True, exist_ok=True)
    progress.step(f"fetch {recipe.source_package} source")
    t0 = time.monotonic()
    try:
        source = debsrc.fetch_source(recipe.source_package, inputs.cache_dir / "apps",
                                     log_path=app_dir / "fetch.log")
    except PatchbotError as exc:
        progress.finish(f"fetch {recipe.source_package} source", "failed", time.monotonic() - t0)
        return tuple(AppResult(recipe.name, v.variant, AppStatus.BUILD_FAILED,
                               detail=f"source: {_first_line(exc)}",
                               log_path=str(app_dir / "fetch.log")) for v in done)
    progress.finish(f"fetch {recipe.source_package} source", source.version,
                    time.monotonic() - t0)
    results = []
    for v in done:
        if not v.ok:
            results.append(AppResult(recipe.name, v.variant, AppStatus.SKIPPED, source.version,
                                     detail=f"the {v.variant} variant failed its own check"))
            continue
        results.append(_one_variant(recipe, source, v.variant, ws, inputs, app_dir, progress))
    return tuple(results)


def _one_variant(recipe: AppRecipe, source: debsrc.SourceTree, variant: str,
                 ws: variants.Workspace, inputs: StageInputs, app_dir: Path,
                 progress: Progress) -> AppResult:
    record = variant_records.get(variant)
    log_b = app_dir / f"build-{recipe.name}-{variant}.log"
    name = f"{recipe.name} {variant}"
    progress.step(f"build {name}")
    t0 = time.monotonic()
    try:
        prog = build.build_program(recipe, source, record.userland,
                                   inputs.cache_dir / "apps" / "build", log_path=log_b,
                                   jobs=ws.jobs)
        initrd, archive = _payload(recipe, prog, record.userland, inputs, app_dir, log_b)
    except PatchbotError as exc:
        progress.finish(f"build {name}", "failed", time.monotonic() - t0)
        return AppResult(recipe.name, variant, AppStatus.BUILD_FAILED, source.version,
                         detail=f"program: {_first_line(exc)}", log_path=str(log_b))
    progress.finish(f"build {name}", "cached" if prog.cached else "ok", time.monotonic() - t0)
    program_seconds = None if prog.cached else prog.seconds

    # The record picks what the variant boots: the archive with /init (classic)
    # or the same files as data only (UKL, whose program is inside vmlinux).
    spec = variants.spec_for(variant, inputs.kconfig_dir, initrd=initrd, data_initrd=initrd,
                             ukl_archive=archive, profile=inputs.profile)
    spec = dataclasses.replace(
        spec, fragments=(*spec.fragments, inputs.kconfig_dir / recipe.kconfig_fragment))
    images = ContentCache(inputs.cache_dir / "kernels")
    _cfg, kernel = variants.build_variant(ws.src, inputs.tree_id, spec, ws, images, app_dir,
                                          progress)
    if not kernel.ok or kernel.image is None:
        first = kernel.first_errors[0] if kernel.first_errors else "configuration failed"
        return AppResult(recipe.name, variant, AppStatus.BUILD_FAILED, source.version,
                         detail=f"kernel: {first}", program_seconds=program_seconds,
                         kernel=kernel, log_path=kernel.log_path)
    image = Path(kernel.image)
    expected = rootfs.proof_bytes(recipe)
    progress.step(f"boot {name}")
    t0 = time.monotonic()

    def boot(log_path: Path) -> httpproof.AppBoot:
        return httpproof.boot_and_ask(image, initrd, guest_port=recipe.guest_port,
                                      url_path=recipe.url_path, expected=expected,
                                      log_path=log_path, timeout=inputs.boot_timeout,
                                      on_line=progress.line)

    res, attempts = httpproof.with_retry(boot, app_dir, f"{recipe.name}-{variant}",
                                         inputs.retries)
    progress.finish(f"boot {name}", res.status.value, time.monotonic() - t0)
    return AppResult(recipe.name, variant, res.status, source.version, res.detail,
                     program_seconds, kernel, res.answer_after, attempts, res.log_path,
                     res.reproduce, res.tail)


def _payload(recipe: AppRecipe, prog: build.ProgramBuild, userland: Userland,
             inputs: StageInputs, app_dir: Path, log_path: Path) -> tuple[Path, Path | None]:
    """(initramfs, UKL archive or None): classic's /init archive, or UKL's object and data."""
    if userland is Userland.STOCK_STATIC:
        return rootfs.make_initramfs(recipe, app_dir / f"initramfs-{recipe.name}.cpio",
                                     init_binary=prog.artifact, log_path=log_path), None
    if inputs.glibc_tree is None:
        raise InfraError(f"{recipe.name}: the UKL program needs the UKL glibc")
    gl = glibc.cached_glibc(inputs.cache_dir / "glibc", inputs.glibc_tree)
    if gl is None:
        raise InfraError(f"{recipe.name}: the UKL glibc for tree {inputs.glibc_tree} was "
                         "not built by the check")
    archive = uklapp.link_application([prog.artifact], gl,
                                      app_dir / f"{recipe.name}-ukl-app.o", log_path=log_path)
    data = rootfs.make_initramfs(recipe, app_dir / f"data-{recipe.name}.cpio",
                                 log_path=log_path)
    return data, archive

