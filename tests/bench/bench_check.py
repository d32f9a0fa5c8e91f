"""Benchmark `patchbot check` against the bare commands, measured in the same run.

    .venv/bin/python tests/bench/bench_check.py [--tag v6.1.192] [--variant classic ...]

Measures, on the real tree from the test mirror (see tests/conftest.py):
  bare build   one plain `make -j2` of one variant: tinyconfig + the same
               fragments + olddefconfig + bzImage in a fresh directory, no ccache
  bare boot    one plain QEMU boot of that image with the probe, until QEMU exits
  cold check   `patchbot check` with empty kernel, ccache and check caches
               (mirrors and the glibc build are reused: glibc has its own cache)
  warm check   the same check again, nothing changed (answered from cache)
and prints the ratios. Goals: cold (both variants) <= 1.5x bare build,
warm <= 10 s, each boot <= 2 s to its marker under TCG.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ukl_patchbot.check import boot, kbuild, pipeline, uklapp, variants
from ukl_patchbot.core import config
from ukl_patchbot.core.progress import PlainProgress


def real_cfg(cache: Path) -> config.Config:
    """The checkout's config with a fresh cache that reuses the test mirrors and glibc builds."""
    shared = Path(os.environ.get("PATCHBOT_TEST_CACHE", "/var/tmp/ukl-patchbot-test"))
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("mirrors", "glibc", "downloads"):
        (shared / name).mkdir(parents=True, exist_ok=True)
        (cache / name).symlink_to(shared / name)
    return dataclasses.replace(config.load(REPO / "patchbot.toml"), cache_dir=cache)


def bare_build(cfg: config.Config, tag: str, variant: str, work: Path) -> tuple[float, Path]:
    """Plain make of one variant of ``tag`` (no patches applied, no ccache)."""
    from ukl_patchbot.upstream import gitops

    src = work / "src"
    gitops.export_tree(cfg.mirror_dir("linux"), f"refs/tags/{tag}", src)
    out = work / "out"
    frags = variants.fragments_for(cfg.root / "kconfigs", variant)
    start = time.monotonic()
    for argv in kbuild.configure_commands(src, out, frags, kbuild.BuildEnv()):
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(argv, cwd=out, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(kbuild.build_command(src, out, kbuild.BuildEnv()), cwd=out, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - start, out / kbuild.IMAGE_REL


def bare_boot(image: Path, work: Path) -> float:
    """Plain QEMU with the classic probe as /init, until QEMU exits by itself."""
    init = uklapp.compile_probe("classic", work / "probe")
    initrd = uklapp.make_initramfs(init, work / "initramfs.cpio")
    argv = boot.qemu_argv(image, initrd, accel=boot.detect_accel())
    start = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=120)
    return time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tag", default="v6.1.192")
    ap.add_argument("--variant", action="append", choices=["classic", "ukl"])
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    wanted = tuple(args.variant or variants.VARIANTS)
    scratch = Path(tempfile.mkdtemp(prefix="bench-check-"))
    try:
        cfg = real_cfg(scratch / "cache")
        print(f"load before: {os.getloadavg()[0]:.1f}", flush=True)
        t_build, image = bare_build(cfg, args.tag, "classic", scratch / "bare")
        print(f"bare build (classic, make -j2, no ccache): {t_build:.1f}s", flush=True)
        t_boot = bare_boot(image, scratch / "bare")
        print(f"bare boot (QEMU {boot.detect_accel()}, until QEMU exits): {t_boot:.2f}s", flush=True)

        req = pipeline.CheckRequest(tag=args.tag, variants=wanted, out_dir=scratch / "cold")
        progress = PlainProgress(sys.stdout)
        start = time.monotonic()
        cold = pipeline.run_check(cfg, req, progress=progress)
        t_cold = time.monotonic() - start
        start = time.monotonic()
        warm = pipeline.run_check(cfg, dataclasses.replace(req, out_dir=scratch / "warm"))
        t_warm = time.monotonic() - start

        print()
        print(f"cold check ({'+'.join(wanted)}): {t_cold:.1f}s verdict={cold.verdict}  "
              f"ratio to bare build {t_cold / t_build:.2f}x (goal <= 1.5x)")
        for v in cold.variants:
            print(f"  {v.variant}: build {v.build.status} {v.build.duration:.1f}s, boot "
                  f"{v.boot.status}, marker after "
                  f"{v.boot.time_to_marker if v.boot.time_to_marker is not None else float('nan'):.2f}s "
                  f"(goal <= 2 s), getppid {v.boot.ns_per_call} ns/call")
            a = v.boot.decisive
            if a is not None:
                print(f"    boot total {a.duration:.2f}s vs bare boot {t_boot:.2f}s "
                      f"= {a.duration / t_boot:.2f}x")
        if cold.syscall_ratio is not None:
            print(f"  UKL/classic syscall ratio {cold.syscall_ratio:.3f}")
        if cold.boot_ratio is not None:
            print(f"  UKL/classic boot to marker ratio {cold.boot_ratio:.2f} (goal <= 1)")
        print(f"warm check: {t_warm:.1f}s from_cache={warm.from_cache} (goal <= 10 s)")
        print(f"load after: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {scratch}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
