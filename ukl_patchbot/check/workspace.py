"""The persistent build workspace of `patchbot check`, and bringing a source tree into it.

Fixed paths on purpose: ``<cache>/work/check/src/linux`` and
``build/<variant>`` keep the same relative paths from one tag to the next, so
ccache (with ``CCACHE_BASEDIR`` at the workspace root) reuses every object
whose source did not change. A new tree is brought in by updating only the
files that differ (``git read-tree -m -u`` with a private index), so the
persistent build directories then rebuild only what changed.

One run at a time: hold `locked` around anything that changes the workspace.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ukl_patchbot.check import variants
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.fsutil import atomic_write
from ukl_patchbot.upstream import gitops

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 3 * 3600.0  # a cold check with glibc can take a while


def check_workspace(cfg: Config, jobs: int = 2) -> variants.Workspace:
    """The workspace of `patchbot check` in ``cfg``'s cache."""
    root = cfg.work_dir / "check"
    return variants.Workspace(root, root / "src" / "linux", cfg.cache_dir / "ccache", jobs)


@contextmanager
def locked(cfg: Config, jobs: int = 2) -> Iterator[variants.Workspace]:
    """The workspace, held exclusively for the block (other runs wait)."""
    ws = check_workspace(cfg, jobs)
    with gitops.locked(ws.root / ".lock", timeout=LOCK_TIMEOUT):
        yield ws


def _markers(dest: Path) -> tuple[Path, Path]:
    return dest.parent / f".{dest.name}.tree", dest.parent / f".{dest.name}.index"


def export_once(cfg: Config, component: str, ref: str, tree_id: str, dest: Path) -> str:
    """Make ``dest`` hold the tree of ``ref`` (whose tree id is ``tree_id``).

    Returns "unchanged", "updated" (only differing files rewritten) or
    "exported" (written from scratch). The tree id is recorded last, so an
    interrupted export is redone by the next run.
    """
    return export_tree_once(cfg.mirror_dir(component), ref, tree_id, dest)


def export_tree_once(mirror: Path, ref: str, tree_id: str, dest: Path) -> str:
    """`export_once` from the git directory ``mirror``."""
    marker, index = _markers(dest)
    old = marker.read_text().strip() if marker.is_file() else None
    if dest.is_dir() and old == tree_id:
        return "unchanged"
    env = {"GIT_INDEX_FILE": str(index)}
    marker.unlink(missing_ok=True)
    if old and dest.is_dir() and index.is_file():
        # Refresh stat data, then switch old -> new touching only what differs;
        # refuses (and we export afresh) if the tree was modified in place.
        wt = f"--work-tree={dest}"
        gitops.git(mirror, wt, "update-index", "-q", "--refresh", extra_env=env, check=False)
        # A file changed in place would survive the switch: then start afresh.
        clean = gitops.git(mirror, wt, "diff-files", "--quiet", extra_env=env, check=False)
        res = gitops.git(mirror, wt, "read-tree", "-m", "-u", old, tree_id, extra_env=env,
                         check=False) if clean.ok else clean
        if res.ok:
            atomic_write(marker, tree_id + "\n")
            return "updated"
        log.info("incremental update of %s refused (%s); exporting afresh", dest,
                 res.stderr.strip()[:200])
    if dest.exists():
        shutil.rmtree(dest)
    index.unlink(missing_ok=True)
    dest.mkdir(parents=True)
    gitops.git(mirror, "read-tree", ref, extra_env=env)
    # Parallel checkout (a Linux tree has 80,000 files); -u keeps stat data
    # in the index for the next incremental update.
    gitops.git(mirror, f"--work-tree={dest}", "-c", "checkout.workers=2", "checkout-index",
               "-a", "-u", extra_env=env)
    atomic_write(marker, tree_id + "\n")
    return "exported"
