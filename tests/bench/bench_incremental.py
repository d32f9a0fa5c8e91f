"""Benchmark the check of the next stable tag after a checked one, against bare builds, in one run.

    nice -n 10 .venv/bin/python tests/bench/bench_incremental.py [--from A] [--to B] [--shared DIR]

A and B default to the two newest 6.1 versions apt offers (tests/helpers/realtrees);
DIR (default $PATCHBOT_TEST_CACHE) must hold a linux mirror with both tags, the
glibc mirror and the glibc build cache; they are reused, everything else (ccache,
kernel images, check results, the workspace) starts empty. Measured in order:

  bare classic A  plain `make -j2` of the upstream tree of A: tinyconfig + the
                  classic fragments + olddefconfig + bzImage, fresh directory, no ccache
  bare boot       plain QEMU of that image with the probe initramfs, until it exits
  check A         `patchbot check A` (classic + UKL, cold: empty ccache and caches)
  check B         `patchbot check B` right after, in the same workspace
  bare UKL A      plain make of the patched tree of A with check A's UKL .config
                  (fresh directory, no ccache), then plain QEMU of it

and prints the ccache hit rates of both checks and their ratios to the bare
build of A (classic + UKL builds + both boots).
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
from ukl_patchbot.check.report import CheckReport
from ukl_patchbot.core import config
from ukl_patchbot.core.progress import PlainProgress
from ukl_patchbot.upstream import gitops


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def real_cfg(cache: Path, shared: Path) -> config.Config:
    """The checkout's config with a fresh cache reusing ``shared``'s mirrors, downloads, glibc."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("mirrors", "glibc", "downloads"):
        (cache / name).symlink_to(shared / name)
    return dataclasses.replace(config.load(REPO / "patchbot.toml"), cache_dir=cache)


def plain_make(src: Path, out: Path, argvs: list[list[str]]) -> float:
    """Run ``argvs`` in ``out`` with the reproducible build identity and no ccache; seconds."""
    env = os.environ | kbuild.BuildEnv().env()
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    for argv in argvs:
        subprocess.run(argv, cwd=out, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def bare_classic(cfg: config.Config, tag: str, work: Path) -> tuple[float, Path]:
    src = gitops.export_tree(cfg.mirror_dir("linux"), f"refs/tags/{tag}", work / "src")
    out = work / "out"
    frags = variants.fragments_for(REPO / "kconfigs", "classic")
    benv = kbuild.BuildEnv()
    t = plain_make(src, out, [*kbuild.configure_commands(src, out, frags, benv),
                              kbuild.build_command(src, out, benv)])
    return t, out / kbuild.IMAGE_REL


def bare_ukl(cfg: config.Config, report: CheckReport, work: Path) -> tuple[float, Path]:
    """Plain make of the patched tree of ``report`` with the UKL .config its check used."""
    assert report.rebase is not None and report.rebase.applied_ref and report.out_dir
    src = gitops.export_tree(cfg.mirror_dir("linux"), report.rebase.applied_ref, work / "src")
    out = work / "out"
    out.mkdir(parents=True)
    shutil.copy2(Path(report.out_dir) / "config-ukl", out / ".config")
    benv = kbuild.BuildEnv()
    make = ["make", "-C", str(src), f"O={out}"]
    t = plain_make(src, out, [[*make, "olddefconfig"], kbuild.build_command(src, out, benv)])
    return t, out / kbuild.IMAGE_REL


def bare_boot(image: Path, initrd: Path | None) -> float:
    argv = boot.qemu_argv(image, initrd, accel=boot.detect_accel())
    start = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=300)
    return time.monotonic() - start


def timed_check(cfg: config.Config, tag: str, out: Path) -> tuple[CheckReport, float, str]:
    """One `patchbot check` of ``tag``; its report, seconds and ccache hit rate."""
    cc = cfg.cache_dir / "ccache"
    before = kbuild.ccache_stats(cc)
    start = time.monotonic()
    rep = pipeline.run_check(cfg, pipeline.CheckRequest(tag=tag, out_dir=out),
                             progress=PlainProgress(sys.stdout))
    t = time.monotonic() - start
    after = kbuild.ccache_stats(cc)
    calls = sum(after.get(k, 0) - before.get(k, 0)
                for k in ("direct_cache_hit", "preprocessed_cache_hit", "cache_miss"))
    rate = kbuild.hit_rate(before, after)
    hits = f"{rate:.0%} of {calls} compiler calls" if rate is not None else "no calls"
    return rep, t, hits


def default_tags() -> tuple[str, str]:
    from tests.helpers import realtrees

    return realtrees.linux_previous_tag(), realtrees.linux_new_tag()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--from", dest="a")
    ap.add_argument("--to", dest="b")
    ap.add_argument("--shared", type=Path, default=Path(
        os.environ.get("PATCHBOT_TEST_CACHE", "/var/tmp/ukl-patchbot-test")))
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    a, b = (args.a, args.b) if args.a and args.b else default_tags()
    scratch = Path(tempfile.mkdtemp(prefix="bench-incremental-", dir="/var/tmp"))
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    try:
        cfg = real_cfg(scratch / "cache", args.shared)
        for tag in (a, b):
            if gitops.rev_parse(cfg.mirror_dir("linux"), f"refs/tags/{tag}") is None:
                raise SystemExit(f"{args.shared}/mirrors/linux.git has no {tag}: run "
                                 f"PATCHBOT_CACHE_DIR={args.shared} patchbot upstream sync linux "
                                 f"--version {tag[1:]}")
        say(f"{a} -> {b}, ccache mode {kbuild.BuildEnv().ccache_mode}, "
            f"{os.cpu_count()} cpus, load {load()}")
        t_bc, image = bare_classic(cfg, a, scratch / "bare-classic")
        initrd = uklapp.make_initramfs(uklapp.compile_probe("classic", scratch / "probe"),
                                       scratch / "initramfs.cpio")
        t_bcb = bare_boot(image, initrd)
        say(f"bare classic {a}: build {t_bc:.1f}s boot {t_bcb:.1f}s (load {load()})")
        rep_a, t_a, hits_a = timed_check(cfg, a, scratch / "check-a")
        say(f"check {a}: {t_a:.1f}s verdict {rep_a.verdict}, ccache {hits_a} (load {load()})")
        rep_b, t_b, hits_b = timed_check(cfg, b, scratch / "check-b")
        say(f"check {b}: {t_b:.1f}s verdict {rep_b.verdict}, ccache {hits_b} (load {load()})")
        t_bu, ukl_image = bare_ukl(cfg, rep_a, scratch / "bare-ukl")
        t_bub = bare_boot(ukl_image, None)
        say(f"bare UKL {a}: build {t_bu:.1f}s boot {t_bub:.1f}s (load {load()})")
        bare = t_bc + t_bcb + t_bu + t_bub
        say("")
        say(f"bare {a} (classic + UKL builds + both boots): {bare:.1f}s")
        for name, rep, t in ((f"check {a} (cold)", rep_a, t_a), (f"check {b} (next)", rep_b, t_b)):
            parts = ", ".join(f"{v.variant} build {v.build.duration:.1f}s boot "
                              f"{v.boot.decisive.duration if v.boot.decisive else 0:.1f}s"
                              for v in rep.variants)
            say(f"{name}: {t:.1f}s = {t / bare:.2f}x bare ({parts})")
        say(f"goals: cold check <= 1.2x bare, next tag <= 0.5x bare; load now {load()}")
        (Path(os.environ.get("BENCH_OUT", scratch)) / "bench-incremental.txt").write_text(
            "\n".join(lines) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {scratch}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
