"""The rebase report renderers are pure: pinned by golden files."""

from __future__ import annotations

import json

from tests.helpers.golden import check_golden
from ukl_patchbot.rebase.report import (
    HunkResult,
    HunkStatus,
    PatchResult,
    PatchStatus,
    RebaseReport,
    render_json,
    render_markdown,
    summary_line,
)


def sample() -> RebaseReport:
    conflict_hunk = HunkResult(
        "Makefile", "@@ -2,7 +2,7 @@", 2, 7, HunkStatus.CONFLICT,
        expected=("VERSION = 6", "PATCHLEVEL = 1", "SUBLEVEL = 170", "EXTRAVERSION ="),
        actual=("VERSION = 6", "PATCHLEVEL = 1", "SUBLEVEL = 192", "EXTRAVERSION ="),
        upstream_diff="@@ -1,7 +1,7 @@\n # SPDX\n-SUBLEVEL = 170\n+SUBLEVEL = 192",
        upstream_commits=("abc1234 Linux 6.1.192",))
    return RebaseReport(
        component="linux", old_base="v6.1.170", new_base="v6.1.192",
        patches=(
            PatchResult("0001-a.patch", "[PATCH 1/3] x86: a", PatchStatus.CLEAN,
                        (HunkResult("arch/x86/Kconfig", "@@ -1,3 +1,4 @@", 1, 3,
                                    HunkStatus.EXACT, 1, 0),)),
            PatchResult("0002-b.patch", "[PATCH 2/3] init: b", PatchStatus.OFFSET,
                        (HunkResult("init/main.c", "@@ -1514,6 +1514,10 @@", 1514, 6,
                                    HunkStatus.OFFSET, 1475, -39),)),
            PatchResult("0003-c.patch", "[PATCH 3/3] kbuild: c", PatchStatus.CONFLICT,
                        (conflict_hunk,), ("Makefile",), "error: patch failed: Makefile:2"),
        ),
        notes=("old base has no history",), duration=0.25,
    )


def test_markdown_golden() -> None:
    md = render_markdown(sample())
    check_golden("rebase_report.md", md)
    assert "❌ conflict" in md and "SUBLEVEL = 192" in md and "abc1234 Linux 6.1.192" in md


def test_json_golden_and_ok() -> None:
    report = sample()
    text = render_json(report)
    check_golden("rebase_report.json", text)
    data = json.loads(text)
    assert data["ok"] is False and not report.ok
    assert data["patches"][1]["hunks"][0]["offset"] == -39
    assert summary_line(report) == ("linux: series does not apply on v6.1.192 (from v6.1.170): "
                                    "1 clean, 1 offset, 1 conflict")
