"""The shipped UKL series: well formed, on a known base, and as small as patchsets/README.md says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.gitrepo import REPO_ROOT
from ukl_patchbot.series.patchset import load_series

PATCHSETS = REPO_ROOT / "patchsets"


def delta_size(directory: Path) -> int:
    """Lines a series adds or changes, not counting Kconfig help text."""
    total = 0
    for patch in sorted(directory.glob("*.patch")):
        in_kconfig = in_help = False
        for line in patch.read_text().splitlines():
            if line.startswith("diff --git "):
                in_kconfig = "Kconfig" in line
                in_help = False
                continue
            if not line.startswith("+") or line.startswith("+++"):
                continue
            body = line[1:]
            if in_kconfig and body.strip() == "help":
                in_help = True
                continue
            if in_help and (body.startswith("\t  ") or not body.strip()):
                continue
            in_help = False
            total += 1
    return total


@pytest.mark.parametrize("component,subdir,base,limit", [
    ("linux", "linux/6.1", "v6.1.170", 300),
    ("linux 6.12", "linux/6.12", "v6.12.117", 300),
    ("glibc", "glibc", "glibc-2.36-deb12u14", 60),
])
def test_series_loads_and_stays_small(component: str, subdir: str, base: str, limit: int) -> None:
    series = load_series(PATCHSETS / subdir, component.split()[0])
    assert series.base == base
    assert len(series.patches) >= 2
    size = delta_size(PATCHSETS / subdir)
    assert 0 < size <= limit
    readme = (PATCHSETS / "README.md").read_text()
    claimed = re.search(rf"^\| {component} \| (\d+) \|", readme, re.MULTILINE)
    assert claimed, f"patchsets/README.md has no size row for {component}"
    assert int(claimed.group(1)) == size, "patchsets/README.md states a stale size"


def test_glibc_series_covers_every_syscall_site_with_one_macro() -> None:
    text = "".join(p.read_text() for p in sorted((PATCHSETS / "glibc").glob("*.patch")))
    assert ".macro syscall" in text and "call __ukl_syscall" in text
    assert "-mno-red-zone" in text
