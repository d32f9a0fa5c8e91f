"""Benchmark: `patchbot rebase` of a 3-patch series on the real Linux tree vs plain `git am -3`.

Run: .venv/bin/python tests/bench/bench_rebase.py [--import] [--rounds N]

Uses the persistent test cache ($PATCHBOT_TEST_CACHE, default /var/tmp/ukl-patchbot-test;
it imports v6.1.170 and v6.1.192 first if missing). Measured in the same run:

- ``git am -3`` of the same 3 patches in an existing full checkout of v6.1.192 (the bare
  tool, checkout not timed), and ``git worktree add`` + ``git am -3`` (what applying onto a
  tag from a mirror costs by hand);
- ``patchbot rebase`` as a command (``--dry-run``, Python start-up included) and the
  library call `rebase_series` alone;
- with ``--import``: importing one Linux version into an empty mirror.

Goals: rebase <= 1.5x plain ``git am -3`` and < 5 s; one version imported < 90 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers.real_series import LDS, MAKEFILE, NEW, SYS_CONTEXT, make_real_series
from ukl_patchbot.core import config
from ukl_patchbot.rebase import engine as rebase
from ukl_patchbot.upstream import debian, gitops
from ukl_patchbot.upstream import mirror as upstream


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sh(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=600,
                   env={**os.environ, **(env or {})})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--import", dest="do_import", action="store_true",
                    help="also time importing one Linux version (about a minute)")
    args = ap.parse_args()
    cache = Path(os.environ.get("PATCHBOT_TEST_CACHE", "/var/tmp/ukl-patchbot-test"))
    cfg0 = dataclasses.replace(config.load(ROOT / "patchbot.toml"), cache_dir=cache)
    upstream.sync(cfg0, "linux", versions=["6.1.170", "6.1.192"], log_dir=cache / "logs")
    mirror = cfg0.mirror_dir("linux")
    ident = {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.org"}

    with tempfile.TemporaryDirectory(prefix="patchbot-bench-") as tmp_s:
        tmp = Path(tmp_s)
        sdir = make_real_series(mirror, tmp / "repo" / "patchsets" / "linux",
                                [LDS, MAKEFILE, SYS_CONTEXT])
        patches = sorted(str(p) for p in sdir.glob("*.patch"))
        comp = cfg0.component("linux").with_series(sdir)
        cfg = dataclasses.replace(cfg0, root=sdir.parent.parent,
                                  components={**cfg0.components, "linux": comp})
        (cfg.root / "patchbot.toml").write_text(
            f'[paths]\ncache_dir = "{cache}"\n[components.linux]\nseries = "patchsets/linux"\n')

        # Baseline 1: git am -3 in an existing full checkout (checkout not timed).
        full = tmp / "full"
        sh(["git", "-C", str(mirror), "worktree", "add", "-q", "--detach", str(full), NEW])
        tag_sha = gitops.out(mirror, "rev-parse", f"{NEW}^{{commit}}")
        am_times, wt_am_times, cli_times, lib_times = [], [], [], []
        try:
            for _ in range(args.rounds):
                sh(["git", "reset", "-q", "--hard", tag_sha], cwd=full)
                am_times.append(timed(lambda: sh(["git", "am", "-q", "-3", *patches], cwd=full,
                                                 env=ident)))
                # Baseline 2: a fresh worktree of the tag plus git am -3.
                wt = tmp / "wt-am"

                def wt_am(wt: Path = wt) -> None:
                    sh(["git", "-C", str(mirror), "worktree", "add", "-q", "--detach", str(wt), NEW])
                    sh(["git", "am", "-q", "-3", *patches], cwd=wt, env=ident)

                if not wt_am_times:  # a full checkout takes a minute here: once is enough
                    wt_am_times.append(timed(wt_am))
                    sh(["git", "-C", str(mirror), "worktree", "remove", "--force", str(wt)])
                cli_times.append(timed(lambda: sh(
                    [sys.executable, "-m", "ukl_patchbot", "rebase", NEW, "--dry-run"],
                    cwd=cfg.root)))
                lib_times.append(timed(lambda: rebase.rebase_series(cfg, "linux", NEW,
                                                                    dry_run=True)))
        finally:
            sh(["git", "-C", str(mirror), "worktree", "remove", "--force", str(full)])

    am, wt_am = statistics.median(am_times), statistics.median(wt_am_times)
    cli, lib = statistics.median(cli_times), statistics.median(lib_times)
    print(f"3-patch series v6.1.170 -> {NEW} (clean, offset, context-changed), "
          f"median of {args.rounds} rounds:")
    print(f"  git am -3 (existing full checkout)      {am:7.3f} s")
    print(f"  git worktree add + git am -3            {wt_am:7.3f} s")
    print(f"  patchbot rebase --dry-run (command)     {cli:7.3f} s   "
          f"ratio {cli / am:5.2f}x vs am, {cli / wt_am:5.2f}x vs worktree+am")
    print(f"  rebase_series() (library call)          {lib:7.3f} s   ratio {lib / am:5.2f}x vs am")
    print(f"  goal: <= 1.5x git am -3 and < 5 s: "
          f"{'met' if cli <= 1.5 * am and cli < 5 else 'NOT met'} (command), "
          f"{'met' if lib <= 1.5 * am and lib < 5 else 'NOT met'} (library)")

    if args.do_import:
        dv = next(d for d in debian.available("linux-source-6.1", "v") if d.tag == NEW)
        deb = debian.download(dv, cache / "downloads")
        with tempfile.TemporaryDirectory(prefix="patchbot-bench-import-", dir=cache) as t2:
            m = gitops.ensure_mirror(Path(t2) / "linux.git")
            secs = timed(lambda: debian.import_version(m, deb, dv, log_path=None))
            # The bare tools on the same input: decompressing the tarball alone.
            xz = timed(lambda: sh(["sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | "
                                   "tar -xOf - --wildcards '*.tar.xz' | xz -dc > /dev/null"]))
            shutil.rmtree(m, ignore_errors=True)
        print(f"  import {dv.package} {dv.version}: {secs:6.1f} s (goal < 90 s: "
              f"{'met' if secs < 90 else 'NOT met'}); dpkg-deb|tar|xz -dc alone {xz:5.1f} s, "
              f"ratio {secs / xz:4.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
