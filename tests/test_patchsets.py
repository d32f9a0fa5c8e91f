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
    ("linux", "linux/6.1", "v6.1.170", 600),
    ("linux 6.12", "linux/6.12", "v6.12.117", 600),
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


LINUX_LINES = sorted(p.name for p in (PATCHSETS / "linux").iterdir() if p.is_dir())
# Sections the final link itself makes for the application (its IFUNC calls).
LINKER_MADE = {".iplt", ".rela.iplt", ".got", ".igot.plt"}


def added_lines(directory: Path, path_part: str) -> list[str]:
    """The lines the series adds to files whose path contains ``path_part``."""
    out: list[str] = []
    for patch in sorted(directory.glob("*.patch")):
        current = ""
        for line in patch.read_text().splitlines():
            if line.startswith("diff --git "):
                current = line
            elif path_part in current and line.startswith("+") and not line.startswith("+++"):
                out.append(line[1:])
    return out


@pytest.mark.parametrize("line", LINUX_LINES)
def test_linker_script_rules_take_only_application_sections(line: str) -> None:
    """Wildcards like *(.text.*) took the kernel's retpoline thunks and sanitizer ctors."""
    patterns = []
    for text in added_lines(PATCHSETS / "linux" / line, "vmlinux.lds.S"):
        if text.lstrip().startswith("#define"):
            continue  # a macro's parameters, not patterns; its uses are below
        inners = re.findall(r"\*\(([^)]*)\)", text)
        inners += [m.group(1) for m in re.finditer(r"UKL_RANGE\(\w+, ([^)]*\)?)\)", text)]
        for inner in inners:
            patterns += [p for p in inner.replace("SORT(", " ").replace(")", " ").split() if p]
    assert patterns, "no input-section rules found in the series' linker script"
    foreign = [p for p in patterns if not p.startswith(".ukl") and p not in LINKER_MADE]
    assert not foreign, f"rules that can take kernel sections: {foreign}"


@pytest.mark.parametrize("line", LINUX_LINES)
def test_kernel_ibt_is_off_with_ukl(line: str) -> None:
    """glibc and the application have no ENDBR: IBT must not be selectable with UKL."""
    kconfig = added_lines(PATCHSETS / "linux" / line, "arch/x86/Kconfig")
    assert any(t.strip().startswith("depends on !UNIKERNEL_LINUX") for t in kconfig)
    text = "".join(p.read_text() for p in sorted((PATCHSETS / "linux" / line).glob("*.patch")))
    hunk = text[text.index("config X86_KERNEL_IBT"):][:600]
    assert "+\tdepends on !UNIKERNEL_LINUX" in hunk
