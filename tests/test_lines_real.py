"""The real jump: the 6.1 UKL series onto the newest 6.12 tag apt offers (report shape only).

Slow: the first run imports that 6.12 version into the test mirror (~153 MB
download, 1-2 min); the rebase itself takes seconds. No kernel is built.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.helpers import realtrees
from ukl_patchbot.core.config import Config
from ukl_patchbot.rebase import engine
from ukl_patchbot.rebase.report import HunkStatus, PatchStatus
from ukl_patchbot.upstream import mirror as upstream

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def next_tag(real_config: Config, linux_mirror: Path) -> str:
    tag = realtrees.linux_next_tag()
    upstream.sync(real_config, "linux", versions=[tag], log_dir=real_config.cache_dir / "logs")
    return tag


def test_6_1_series_onto_newest_6_12_reports_every_patch(
    real_config: Config, next_tag: str, tmp_path: Path
) -> None:
    # A line with no series yet: the checkout copy points 6.12 at an empty directory.
    linux = real_config.component("linux")
    lines = tuple(dataclasses.replace(ln, series_dir=tmp_path / "6.12") if ln.name == "6.12"
                  else ln for ln in linux.lines)
    cfg = dataclasses.replace(real_config, components={
        **real_config.components, "linux": dataclasses.replace(linux, lines=lines)})
    report = engine.rebase_series(cfg, "linux", next_tag, dry_run=True)
    assert report.new_base == next_tag and report.old_base == realtrees.series_base("linux")
    assert any("started from line 6.1's series" in n for n in report.notes)
    series = (realtrees.SERIES_DIRS["linux"] / "series").read_text().split()
    assert [p.name for p in report.patches] == series
    # Across two long-term lines some hunks move and some context changes; each hunk
    # not found carries the upstream change that explains it.
    hunks = [h for p in report.patches for h in p.hunks]
    assert any(h.status == HunkStatus.OFFSET for h in hunks)
    for h in hunks:
        if h.status in (HunkStatus.CHANGED, HunkStatus.CONFLICT):
            assert h.upstream_diff or h.actual, h
    assert all(p.status != PatchStatus.ALREADY_UPSTREAM for p in report.patches)
    assert report.duration < 60 and not report.written and not (tmp_path / "6.12").exists()
