"""Build errors explained: identifier -> series patch -> upstream hunk that removed it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.gitrepo import git
from ukl_patchbot.rebase import explain
from ukl_patchbot.series.patchset import load_series
from ukl_patchbot.upstream import gitops

OLD = {
    "arch/x86/entry/entry.S": "SYM_CODE_START(x)\n\tUNWIND_HINT_EMPTY\n\tret\nSYM_CODE_END(x)\n",
    "include/linux/file.h": "struct fd {\n\tstruct file *file;\n};\n",
    "arch/x86/Kconfig": "config PAGE_TABLE_ISOLATION\n\tbool \"PTI\"\n",
}
NEW = {
    "arch/x86/entry/entry.S": "SYM_CODE_START(x)\n\tUNWIND_HINT_END_OF_STACK\n\tret\nSYM_CODE_END(x)\n",
    "include/linux/file.h": "struct fd {\n\tunsigned long word;\n};\n",
    "arch/x86/Kconfig": "config MITIGATION_PAGE_TABLE_ISOLATION\n\tbool \"PTI\"\n",
}
PATCH = """From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Dev <d@example.org>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH] ukl: entry and library

---
diff --git a/arch/x86/kernel/ukl.c b/arch/x86/kernel/ukl.c
new file mode 100644
--- /dev/null
+++ b/arch/x86/kernel/ukl.c
@@ -0,0 +1,2 @@
+struct fd f;
+int n(void) { return f.file != 0; }
diff --git a/arch/x86/entry/ukl.S b/arch/x86/entry/ukl.S
new file mode 100644
--- /dev/null
+++ b/arch/x86/entry/ukl.S
@@ -0,0 +1,2 @@
+SYM_CODE_START(ukl_entry)
+\tUNWIND_HINT_EMPTY
--
2.39.5
"""
LOG = [
    "arch/x86/kernel/ukl.c:2:28: error: 'struct fd' has no member named 'file'",
    "arch/x86/entry/ukl.S:2: Error: no such instruction: `unwind_hint_empty'",
    "arch/x86/entry/ukl.S:2: Error: unknown macro UNWIND_HINT_EMPTY",
    "arch/x86/Kconfig:9:warning: 'UNIKERNEL_LINUX' depends on an unknown symbol 'PAGE_TABLE_ISOLATION'",
    "arch/x86/Kconfig:9: error: UNIKERNEL_LINUX depends on unknown symbol PAGE_TABLE_ISOLATION",
    "  CC      kernel/fork.o",
]


def _mirror(tmp_path: Path) -> Path:
    up = tmp_path / "up"
    up.mkdir()
    git(up, "init", "-q")
    for files, tag in ((OLD, "v1.0"), (NEW, "v2.0")):
        for rel, text in files.items():
            (up / rel).parent.mkdir(parents=True, exist_ok=True)
            (up / rel).write_text(text)
        git(up, "add", "-A")
        git(up, "commit", "-q", "-m", tag)
        git(up, "tag", tag)
    mirror = gitops.ensure_mirror(tmp_path / "mirror.git")
    git(mirror, "fetch", "-q", str(up), "refs/tags/*:refs/tags/*")
    return mirror


def test_errors_point_at_the_patch_and_the_upstream_change(tmp_path: Path) -> None:
    sdir = tmp_path / "series"
    sdir.mkdir()
    (sdir / "0001-ukl.patch").write_text(PATCH)
    (sdir / "series").write_text("0001-ukl.patch\n")
    (sdir / "patchset.toml").write_text('base = "v1.0"\n')
    series = load_series(sdir, "linux")
    found = explain.explain(_mirror(tmp_path), series, "v1.0", "v2.0", LOG)
    by_id = {e.diagnostic.identifier: e for e in found}
    assert set(by_id) == {"file", "unwind_hint_empty", "UNWIND_HINT_EMPTY",
                          "PAGE_TABLE_ISOLATION"}  # the warning and the CC line are not errors
    # C: the member went away in include/linux/file.h.
    c = by_id["file"]
    assert c.patches == ("0001-ukl.patch",)
    assert [(h.file, "-\tstruct file *file;" in h.text) for h in c.upstream] == [
        ("include/linux/file.h", True)]
    # Assembler: the macro was renamed in the entry code.
    s = by_id["UNWIND_HINT_EMPTY"]
    assert s.patches == ("0001-ukl.patch",)
    assert "+\tUNWIND_HINT_END_OF_STACK" in s.upstream[0].text
    # Kconfig: the symbol was renamed; no series patch touches arch/x86/Kconfig here.
    k = by_id["PAGE_TABLE_ISOLATION"]
    assert k.patches == ()
    assert "+config MITIGATION_PAGE_TABLE_ISOLATION" in k.upstream[0].text
    md = "\n".join(explain.render_markdown(found, "v1.0", "v2.0"))
    assert "`arch/x86/entry/ukl.S:2`" in md and "upstream v1.0..v2.0: `arch/x86/entry/entry.S`" in md
