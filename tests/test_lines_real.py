"""The real jump: the 6.1 UKL series onto the newest 6.12 tag apt offers (report shape only).

Slow: the first run imports that 6.12 version into the test mirror (~153 MB
download, 1-2 min); the rebase itself takes seconds. No kernel is built.
"""

from __future__ import annotations

import dataclasses
import os
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


@pytest.mark.skipif(os.environ.get("PATCHBOT_TEST_NEXT_LINE_CHECK") != "1",
                    reason="builds two 6.12 kernels (~25 min cold on 2 cores): set "
                    "PATCHBOT_TEST_NEXT_LINE_CHECK=1 to run it")
def test_check_on_the_newest_6_12_tag_passes_both_variants(
    real_config: Config, next_tag: str, glibc_mirror: Path, tmp_path: Path
) -> None:
    from ukl_patchbot.check import pipeline
    from ukl_patchbot.check import report as cr

    report = pipeline.run_check(real_config, pipeline.CheckRequest(tag=next_tag,
                                                                   out_dir=tmp_path / "run"))
    assert report.verdict == cr.Verdict.PASS, cr.render_markdown(report)
    assert report.rebase is not None and report.rebase.old_base.startswith("v6.12.")
    for v in report.variants:
        a = v.boot.decisive
        assert a is not None and a.markers.cpl == (0 if v.variant == "ukl" else 3)
