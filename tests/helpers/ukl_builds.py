"""Real-tree pieces several slow tests need: a copy of the checkout, an applied series,
the UKL glibc."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from tests.helpers.gitrepo import REPO_ROOT, git
from ukl_patchbot.check import glibc, workspace
from ukl_patchbot.check.glibc import GlibcBuild
from ukl_patchbot.core.config import Config
from ukl_patchbot.rebase import engine as rebase
from ukl_patchbot.series import patchset as series
from ukl_patchbot.upstream import gitops


def checkout(real_config: Config, root: Path, extra_patch: str | None = None) -> Config:
    """A copy of the checkout's series and kconfigs at ``root``, optionally one more patch."""
    shutil.copytree(REPO_ROOT / "kconfigs", root / "kconfigs")
    shutil.copytree(REPO_ROOT / "patchsets", root / "patchsets")
    git(root, "init", "-q")
    if extra_patch is not None:
        series_dir = root / "patchsets" / "linux" / "6.1"
        (series_dir / "9999-broken.patch").write_text(extra_patch)
        with open(series_dir / "series", "a") as f:
            f.write("9999-broken.patch\n")
    comps = {name: c.rerooted(real_config.root, root)
             for name, c in real_config.components.items()}
    return dataclasses.replace(real_config, root=root, components=comps)


def applied(cfg, component: str, tag: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(ref, tree id) of ``component``'s series applied onto ``tag``, nothing written."""
    rep = rebase.rebase_series(cfg, component, tag, write=False)
    assert rep.ok and rep.applied_ref
    return rep.applied_ref, gitops.out(cfg.mirror_dir(component), "rev-parse",
                                       f"{rep.applied_ref}^{{tree}}")


def ukl_glibc(cfg, tmp_path_factory) -> GlibcBuild:  # type: ignore[no-untyped-def]
    """The UKL glibc as `patchbot check` builds it (content-cached, usually a hit)."""
    tag = series.load_series(cfg.component("glibc").series_dir, "glibc").base
    ref, tree = applied(cfg, "glibc", tag)
    hit = glibc.cached_glibc(cfg.cache_dir / "glibc", tree)
    if hit is not None:
        return hit
    src = tmp_path_factory.mktemp("glibc-src") / "glibc"
    workspace.export_once(cfg, "glibc", ref, tree, src)
    log = tmp_path_factory.mktemp("glibc-log") / "build.log"
    return glibc.build_glibc(src, cfg.cache_dir / "glibc", tree, log_path=log)
