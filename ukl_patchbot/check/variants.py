"""Building and booting the kernel variants of one source tree, with the kernel image cache.

A variant is data (`variant_records`): its kconfig fragments, options computed
at run time (the path of the archive linked into vmlinux) and what it boots
with (an initramfs with /init and the probe's data, or only the data when the
application is inside vmlinux).

Both variants build in turn in one build directory of the workspace (see
`Workspace.build_dir`), through ccache under a shared ``CCACHE_BASEDIR``; a
finished image is stored in the content cache under a key of everything that
went into it, so a repeat skips the build.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ukl_patchbot.check import boot as bootmod
from ukl_patchbot.check import kbuild, variant_records
from ukl_patchbot.check.kbuild import BuildEnv
from ukl_patchbot.check.results import (
    BootResult,
    BootStatus,
    BuildResult,
    BuildStatus,
    ConfigResult,
    ConfigStatus,
    VariantResult,
)
from ukl_patchbot.check.variant_records import Initramfs
from ukl_patchbot.core.cache import ContentCache, cache_key, hash_file, hash_files
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.core.runner import run

log = logging.getLogger(__name__)

VARIANTS = variant_records.NAMES


@dataclass(frozen=True)
class VariantSpec:
    name: str
    fragments: tuple[Path, ...]
    extra: Mapping[str, str] = field(default_factory=dict)  # run-time kconfig options
    extra_inputs: Mapping[str, str] = field(default_factory=dict)  # content hashes behind `extra`
    initrd: Path | None = None
    profile: str | None = None  # kconfigs/profile-<profile>.config is among the fragments


def fragments_for(kconfig_dir: Path, variant: str) -> tuple[Path, ...]:
    """The record's fragments (``base.config``, ``<variant>.config``) that exist in ``kconfig_dir``."""
    frags = [kconfig_dir / name for name in variant_records.get(variant).fragments]
    return tuple(f for f in frags if f.is_file())


def profile_fragment(kconfig_dir: Path, profile: str | None) -> Path | None:
    """``kconfig_dir/profile-<profile>.config``; a clear error if there is no such profile.

    Flat beside the other fragments: a pull request's kconfigs are read one
    level deep (dispatch/prsource.py).
    """
    if profile is None:
        return None
    path = kconfig_dir / f"profile-{profile}.config"
    if "/" in profile or not path.is_file():
        known = sorted(p.stem.removeprefix("profile-") for p in kconfig_dir.glob("profile-*.config"))
        raise UserError(f"no kconfig profile {profile!r} ({path} does not exist)",
                        hint=f"known profiles: {', '.join(known) or 'none'}")
    return path


def spec_for(variant: str, kconfig_dir: Path, *, initrd: Path | None = None,
             data_initrd: Path | None = None, ukl_archive: Path | None = None,
             profile: str | None = None) -> VariantSpec:
    """The spec of ``variant``: its record picks what it boots and links.

    ``initrd`` holds /init and the probe's data, ``data_initrd`` only the
    data (for a variant whose probe is inside vmlinux); ``ukl_archive`` is
    linked into vmlinux by a variant with an archive option.
    """
    record = variant_records.get(variant)
    extra: dict[str, str] = {}
    inputs: dict[str, str] = {}
    if record.archive_option is not None and ukl_archive is not None:
        extra[record.archive_option] = kbuild.kconfig_string(str(ukl_archive.resolve()))
        inputs["ukl_archive"] = hash_file(ukl_archive)
    boots = initrd if record.initramfs is Initramfs.INIT_AND_DATA else data_initrd
    frags = list(fragments_for(kconfig_dir, variant))
    extra_frag = profile_fragment(kconfig_dir, profile)
    if extra_frag is not None:  # after base.config, before the variant's own fragment
        frags.insert(1 if frags and frags[0].name == "base.config" else 0, extra_frag)
    return VariantSpec(variant, tuple(frags), extra, inputs, boots, profile)


@dataclass(frozen=True)
class Workspace:
    """Where one source tree is built: ``root/build/<variant>``, ccache in ``ccache``.

    ``basedir`` is the longest directory holding the source and the build
    directories; ccache rewrites absolute paths below it to relative ones.
    """

    root: Path
    src: Path
    ccache_dir: Path | None
    jobs: int = 2

    def build_dir(self, variant: str, profile: str | None = None) -> Path:
        """One build directory per variant (and profile), kept from one tag to the next.

        The UKL series changes headers most objects include (uaccess.h,
        thread_info.h) under CONFIG_UNIKERNEL_LINUX, so switching one
        directory between classic and UKL recompiled most of the kernel
        every time (measured on 6.1.170 with the whole-ABI series: 2-3 min
        for the UKL build after classic, on a loaded machine). Kept apart,
        each directory rebuilds only what the next tag changes.
        """
        return self.root / "build" / (variant if profile is None else f"{variant}-{profile}")

    def benv(self) -> BuildEnv:
        base = Path(os.path.commonpath([self.src.resolve(), self.root.resolve()]))
        return BuildEnv(jobs=self.jobs, ccache_dir=self.ccache_dir,
                        ccache_basedir=base if base != Path("/") else None)


def toolchain_id() -> str:
    """The compiler's version line: a different gcc means different objects."""
    res = run(["gcc", "--version"], capture=True, timeout=30)
    return res.stdout.splitlines()[0] if res.ok and res.stdout else "unknown"


def kernel_key(tree_id: str, spec: VariantSpec, base: str = "tinyconfig") -> str:
    """Cache key of a kernel image: tree, variant, fragment contents, run-time inputs, gcc."""
    frags = hash_files({f.name: f for f in spec.fragments})
    return cache_key("kernel", {"tree": tree_id, "variant": spec.name, "fragments": frags,
                                "extra_inputs": dict(spec.extra_inputs), "base": base,
                                "extra_names": sorted(spec.extra), "gcc": toolchain_id()})


def build_variant(
    src: Path,
    tree_id: str,
    spec: VariantSpec,
    ws: Workspace,
    images: ContentCache,
    out_dir: Path,
    progress: Progress,
) -> tuple[ConfigResult, BuildResult]:
    """Configure and build one variant, or take its image from the cache."""
    out_dir.mkdir(parents=True, exist_ok=True)
    key = kernel_key(tree_id, spec)
    hit = images.get(key)
    if hit is not None and (hit / "bzImage").is_file():
        meta = json.loads((hit / "meta.json").read_text())
        progress.finish(f"build {spec.name}", "cached", 0.0)
        if (hit / "config").is_file():  # the configuration it was built from, as a build leaves
            shutil.copy2(hit / "config", out_dir / f"config-{spec.name}")
        return (ConfigResult(ConfigStatus.OK, tuple(map(str, spec.fragments))),
                BuildResult(BuildStatus.CACHED, 0.0, meta.get("warnings", 0), (),
                            str(hit / "bzImage"), (hit / "bzImage").stat().st_size, None,
                            meta.get("reproduce", "")))
    out = ws.build_dir(spec.name, spec.profile)
    benv = ws.benv()
    kbuild.discard_if_interrupted(out)
    progress.step(f"config {spec.name}")
    cfg_res = kbuild.configure(src, out, spec.fragments, extra=spec.extra, benv=benv,
                               log_path=out_dir / f"config-{spec.name}.log", on_line=progress.line)
    progress.finish(f"config {spec.name}", cfg_res.status.value, cfg_res.duration)
    if not cfg_res.ok:
        return cfg_res, BuildResult(BuildStatus.SKIPPED)
    progress.step(f"build {spec.name}")
    b = kbuild.build(src, out, benv=benv, log_path=out_dir / f"build-{spec.name}.log",
                     on_line=progress.line)
    progress.finish(f"build {spec.name}", b.status.value, b.duration)
    if not b.ok or b.image is None:
        return cfg_res, b
    # Keep the image (and the config it came from) beside the logs and in the cache.
    shutil.copy2(out / ".config", out_dir / f"config-{spec.name}")
    with images.put(key) as stage:
        shutil.copy2(b.image, stage / "bzImage")
        shutil.copy2(out / ".config", stage / "config")
        (stage / "meta.json").write_text(json.dumps({"warnings": b.warnings,
                                                      "reproduce": b.reproduce}))
    return cfg_res, replace(b, image=str(images.path(key) / "bzImage"))


def boot_variant(image: Path, spec: VariantSpec, out_dir: Path, progress: Progress, *,
                 timeout: float, retries: int) -> BootResult:
    """Boot one variant's image and judge it (a failed boot is a result)."""
    progress.step(f"boot {spec.name}")
    start = time.monotonic()
    res = bootmod.boot(image, spec.initrd, spec.name, log_dir=out_dir, timeout=timeout,
                       retries=retries, on_line=progress.line)
    progress.finish(f"boot {spec.name}", res.status.value + (" (flaky)" if res.flaky else ""),
                    time.monotonic() - start)
    return res


def check_variants(
    src: Path,
    tree_id: str,
    specs: tuple[VariantSpec, ...],
    ws: Workspace,
    images: ContentCache,
    out_dir: Path,
    progress: Progress,
    *,
    boot_timeout: float = bootmod.DEFAULT_TIMEOUT,
    retries: int = 1,
) -> tuple[VariantResult, ...]:
    """Build then boot every variant of one tree; later variants reuse the earlier objects."""
    images.clean_stale()
    results = []
    for spec in specs:
        cfg_res, b = build_variant(src, tree_id, spec, ws, images, out_dir, progress)
        if b.ok and b.image:
            boot_res = boot_variant(Path(b.image), spec, out_dir, progress,
                                    timeout=boot_timeout, retries=retries)
        else:
            boot_res = BootResult(BootStatus.SKIPPED)
        results.append(VariantResult(spec.name, cfg_res, b, boot_res))
    return tuple(results)
