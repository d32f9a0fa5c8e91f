"""`patchbot rebase` on the real Linux tree: series base -> newest 6.1 tag from Debian's packages.

The series here are small and made on the fly, on files that changed (or not)
between the two tags, so each per-patch result is exercised on real code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.helpers import realtrees
from tests.helpers.gitrepo import git
from tests.helpers.real_series import (
    LDS,
    MAKEFILE,
    MAKEFILE_CONFLICT,
    NEW,
    NEW_SUB,
    OLD,
    OLD_SUB,
    SYS_CONTEXT,
    SYS_UPSTREAM,
    make_real_series,
)
from ukl_patchbot.core.config import Config
from ukl_patchbot.rebase import engine as rebase
from ukl_patchbot.rebase.report import HunkStatus, PatchStatus
from ukl_patchbot.upstream import gitops

pytestmark = pytest.mark.slow


def config_for(real_config: Config, series_dir: Path) -> Config:
    comp = real_config.component("linux").with_series(series_dir)
    return dataclasses.replace(real_config, root=series_dir.parent,
                               components={**real_config.components, "linux": comp})


def test_real_series_clean_offset_context_changed(
    linux_mirror: Path, real_config: Config, tmp_path: Path
) -> None:
    sdir = make_real_series(linux_mirror, tmp_path / "patchsets" / "linux",
                            [LDS, MAKEFILE, SYS_CONTEXT])
    before = {p.name: p.read_bytes() for p in sdir.iterdir()}
    cfg = config_for(real_config, sdir)
    report = rebase.rebase_series(cfg, "linux", NEW)
    assert report.ok, report
    assert [p.status for p in report.patches] == [
        PatchStatus.CLEAN, PatchStatus.OFFSET, PatchStatus.CONTEXT_CHANGED]
    (mk,) = report.patches[1].hunks
    # Upstream dropped 6 lines and added 21 above this spot between .170 and .192.
    assert mk.status == HunkStatus.OFFSET and mk.offset == 15
    (sys_hunk,) = report.patches[2].hunks
    assert sys_hunk.status == HunkStatus.CHANGED
    assert "\tmemcpy(mm->saved_auxv, user_auxv, sizeof(user_auxv));" in sys_hunk.actual
    assert "+\tmemcpy(mm->saved_auxv, user_auxv, sizeof(user_auxv));" in sys_hunk.upstream_diff
    # Written: clean patch byte-identical, the others refreshed, base moved.
    after = {p.name: p.read_bytes() for p in sdir.iterdir()}
    names = sorted(n for n in before if n.endswith(".patch"))
    assert after[names[0]] == before[names[0]]
    assert after[names[1]] != before[names[1]] and after[names[2]] != before[names[2]]
    assert f'base = "{NEW}"' in (sdir / "patchset.toml").read_text()
    assert report.range_diff.count(" = ") + report.range_diff.count(" ! ") == 3
    tree = gitops.out(linux_mirror, "show", f"{report.applied_ref}:Makefile")
    assert "SUBLEVEL = 192" in tree and "# UKL: the application archive" in tree
    # The tree equals what `git am -3` of the original patches makes (the in-memory 3-way).
    originals = []
    for n in names:
        (tmp_path / n).write_bytes(before[n])
        originals.append(str(tmp_path / n))
    with gitops.temp_worktree(linux_mirror, NEW, sparse_paths=["Makefile", "kernel/sys.c",
                                                               "arch/x86/kernel/vmlinux.lds.S"],
                              work_root=tmp_path / "wt-am") as wt:
        gitops.git(wt, "am", "-q", "-3", *originals)
        assert gitops.out(wt, "rev-parse", "HEAD^{tree}") == gitops.out(
            linux_mirror, "rev-parse", f"{report.applied_ref}^{{tree}}")
    # Rebasing the refreshed series again is clean all the way.
    again = rebase.rebase_series(cfg, "linux", NEW, dry_run=True)
    assert [p.status for p in again.patches] == [PatchStatus.CLEAN] * 3


def test_real_series_conflict_and_already_upstream(
    linux_mirror: Path, real_config: Config, tmp_path: Path
) -> None:
    sdir = make_real_series(linux_mirror, tmp_path / "patchsets" / "linux",
                            [SYS_UPSTREAM, MAKEFILE_CONFLICT])
    before = {p.name: p.read_bytes() for p in sdir.iterdir()}
    report = rebase.rebase_series(config_for(real_config, sdir), "linux", NEW)
    assert not report.ok
    assert [p.status for p in report.patches] == [
        PatchStatus.ALREADY_UPSTREAM, PatchStatus.CONFLICT]
    conflict = report.patches[1]
    assert conflict.conflict_files == ("Makefile",)
    (h,) = conflict.hunks
    assert h.status == HunkStatus.CONFLICT
    assert f"SUBLEVEL = {OLD_SUB}" in h.expected and f"SUBLEVEL = {NEW_SUB}" in h.actual
    assert f"+SUBLEVEL = {NEW_SUB}" in h.upstream_diff
    assert h.upstream_commits == ()  # Debian imports carry no history
    assert {p.name: p.read_bytes() for p in sdir.iterdir()} == before


def test_real_mirror_tags_and_export(linux_mirror: Path, real_config: Config,
                                     tmp_path: Path) -> None:
    from ukl_patchbot.upstream import debian
    from ukl_patchbot.upstream import mirror as upstream

    tags = upstream.list_tags(real_config, "linux")
    assert tags.index(NEW) < tags.index(OLD)
    info = debian.parse_tag_message(gitops.tag_message(linux_mirror, NEW))
    assert info["package"] == "linux-source-6.1" and info["revision"] == realtrees.newest_revision(
        "linux-source-6.1", NEW[1:])
    # A build directory from any commitish, without a worktree registration.
    out = tmp_path / "tree"
    gitops.export_tree(linux_mirror, NEW, out)
    assert f"SUBLEVEL = {NEW_SUB}" in (out / "Makefile").read_text()
    assert (out / "scripts" / "checkpatch.pl").stat().st_mode & 0o111
    assert not any(str(out) in line for line in git(linux_mirror, "worktree", "list").splitlines())
