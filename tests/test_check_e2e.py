"""End to end on the real trees: `patchbot check` of the newest 6.1 tag with the real UKL series.

1. Both variants pass (marker with cpl=3 / cpl=0, bench line parsed, ratio).
2. A deliberately broken UKL patch fails UKL and not classic, and the report
   says the UKL delta is to blame.
3. A probe built to crash in UKL mode is classified (Oops/panic), not hung.
(Test order matters: the crash test reuses the passing tree in the workspace,
the broken-patch test then replaces it.)

Slow: glibc (about 3.5 min cold, then cached) and kernel builds. The three
share one patchbot cache (the test mirrors' cache), so the second and third
reuse the first's objects through ccache and the workspace.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from tests.helpers import realtrees
from tests.helpers.gitrepo import REPO_ROOT
from tests.helpers.ukl_builds import checkout
from ukl_patchbot.check import pipeline, variants
from ukl_patchbot.check import report as cr
from ukl_patchbot.check.report import Attribution, Verdict
from ukl_patchbot.check.results import BootStatus, BuildStatus, FindingKind
from ukl_patchbot.core.cache import ContentCache
from ukl_patchbot.core.progress import Progress

TAG = realtrees.linux_new_tag()
SERIES = REPO_ROOT / "patchsets" / "linux" / "6.1" / "series"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SERIES.is_file(), reason="the UKL Linux series is not in patchsets/ yet"),
]

# Appended to the series: breaks the build only when CONFIG_UNIKERNEL_LINUX=y.
BROKEN_UKL_PATCH = """\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Test Author <author@example.org>
Date: Thu, 1 Jan 2026 00:00:00 +0000
Subject: [PATCH] init: deliberately break the UKL build

Signed-off-by: Test Author <author@example.org>
---
 init/main.c | 3 +++
 1 file changed, 3 insertions(+)

diff --git a/init/main.c b/init/main.c
--- a/init/main.c
+++ b/init/main.c
@@ -1,3 +1,6 @@
 // SPDX-License-Identifier: GPL-2.0-only
+#ifdef CONFIG_UNIKERNEL_LINUX
+#error "deliberately broken UKL patch"
+#endif
 /*
  *  linux/init/main.c
  *
--
2.39.5

"""

CRASH_PROBE = r"""
#include <stdio.h>
#include <unistd.h>
int main(void)
{
	unsigned short cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	printf("ukl-probe: start variant=ukl cpl=%u pid=%d\n", cs & 3u, (int)getpid());
	fflush(stdout);
	*(volatile int *)8 = 1;	/* NULL page write in kernel mode: an Oops */
	printf("ukl-probe: done status=0\n");
	return 0;
}
"""


@pytest.fixture(scope="module")
def passing(real_config, linux_mirror, glibc_mirror, tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("e2e")
    cfg = checkout(real_config, root / "co")
    report = pipeline.run_check(cfg, pipeline.CheckRequest(tag=TAG, out_dir=root / "run",
                                                           use_cache=False))
    return cfg, report


def test_both_variants_pass_with_the_right_privilege_levels(passing) -> None:  # type: ignore[no-untyped-def]
    _cfg, report = passing
    assert report.verdict == Verdict.PASS, cr.render_markdown(report)
    by = {v.variant: v for v in report.variants}
    for name, cpl in (("classic", 3), ("ukl", 0)):
        a = by[name].boot.decisive
        assert a is not None and a.markers.cpl == cpl and a.markers.variant == name
        assert a.markers.ns_per_call is not None and a.markers.ns_per_call > 0
        # The whole-ABI checks (files, fds, pipe, memory, time, tcp, fpu, signals) in both.
        assert a.markers.abi and all(c.status == "ok" for c in a.markers.abi), a.markers.abi
    assert report.syscall_ratio is not None and report.syscall_ratio > 0
    md = (Path(report.out_dir) / "report.md").read_text()
    assert "UKL/classic syscall cost ratio" in md


def test_the_run_directory_holds_the_evidence_and_the_report_reads_back(passing) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.gitrepo import git

    cfg, report = passing
    out = Path(report.out_dir)
    for v in report.variants:
        a = v.boot.decisive
        assert a is not None and a.time_to_marker is not None and a.time_to_marker < 20, v.variant
    assert report.rebase is not None and report.rebase.patches
    assert all(p.status in ("clean", "offset") for p in report.rebase.patches), report.rebase.patches
    assert report.tree_id == git(cfg.mirror_dir("linux"), "rev-parse",
                                 f"{report.rebase.applied_ref}^{{tree}}")
    for name in ("report.json", "report.md", "rebase-linux.md", "rebase-glibc.md",
                 "config-classic", "config-ukl", "boot-classic-1.log", "boot-ukl-1.log"):
        assert (out / name).is_file(), name
    script = (out / "reproducer.sh").read_text()
    assert script.splitlines()[-1] == report.reproduce
    assert f"```\n{report.reproduce}\n```" in (out / "report.md").read_text()
    assert cr.report_from_json((out / "report.json").read_text()) == report


def test_crashing_ukl_probe_is_classified_not_hung(passing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ukl_patchbot.check import glibc, uklapp
    from ukl_patchbot.upstream import gitops

    cfg, report = passing
    ws = pipeline.check_workspace(cfg)
    glibc_tree = None
    for entry in (cfg.cache_dir / "glibc").glob("glibc-*/DONE"):
        glibc_tree = entry.read_text().strip()
    assert glibc_tree is not None
    gl = glibc.cached_glibc(cfg.cache_dir / "glibc", glibc_tree)
    assert gl is not None
    src = tmp_path / "crash.c"
    src.write_text(CRASH_PROBE)
    obj = uklapp.compile_probe("ukl", tmp_path / "obj", glibc=gl, source=src)
    app = uklapp.link_application([obj], gl, tmp_path / "crash-app.o")
    spec = variants.spec_for("ukl", cfg.root / "kconfigs", ukl_archive=app)
    assert report.tree_id is not None and report.rebase is not None
    # Other runs may share the workspace: take its lock, and make sure it
    # holds the tree that passed.
    with gitops.locked(ws.root / ".lock"):
        pipeline.export_once(cfg, "linux", report.rebase.applied_ref, report.tree_id, ws.src)
        (res,) = variants.check_variants(ws.src, report.tree_id, (spec,), ws,
                                         ContentCache(tmp_path / "kernels"), tmp_path / "out",
                                         Progress(), boot_timeout=60, retries=0)
    assert res.build.ok, res.build.first_errors
    a = res.boot.decisive
    assert a is not None
    assert res.boot.status == BootStatus.FAIL, a.findings
    assert {f.kind for f in a.findings} & {FindingKind.OOPS, FindingKind.BUG, FindingKind.PANIC}
    assert a.duration < 50  # panic=-1 with -no-reboot ends QEMU; nothing waited for the timeout


def test_broken_ukl_patch_fails_ukl_not_classic(passing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg0, _report = passing
    cfg = checkout(dataclasses.replace(cfg0, components=cfg0.components), tmp_path / "co",
                   BROKEN_UKL_PATCH)
    report = pipeline.run_check(cfg, pipeline.CheckRequest(tag=TAG, out_dir=tmp_path / "run",
                                                           use_cache=False))
    by = {v.variant: v for v in report.variants}
    assert by["classic"].ok, cr.render_markdown(report)
    assert by["ukl"].build.status == BuildStatus.FAILED
    assert any("deliberately broken UKL patch" in line for line in by["ukl"].build.first_errors)
    assert report.verdict == Verdict.FAIL and report.attribution == Attribution.UKL_DELTA
    assert "UKL delta" in cr.render_markdown(report)


def test_repeat_answers_from_cache(passing, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, report = passing
    start = time.monotonic()
    again = pipeline.run_check(cfg, pipeline.CheckRequest(tag=TAG, out_dir=tmp_path / "again"))
    took = time.monotonic() - start
    assert again.from_cache and again.verdict == report.verdict
    assert took < 20, f"repeat took {took:.1f}s"  # a rebase onto the mirror's tag, no build
    assert "answered from cache" in (tmp_path / "again" / "report.md").read_text()
    for v in ("classic", "ukl"):  # with the configs and boot logs a maintainer reads next
        assert (tmp_path / "again" / f"config-{v}").is_file(), v
        assert "ukl-probe: done" in (tmp_path / "again" / f"boot-{v}-1.log").read_text(), v


def test_cli_check_exit_code_json_and_markdown(passing, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from ukl_patchbot import cli

    cfg, _report = passing
    shutil.copy(REPO_ROOT / "patchbot.toml", cfg.root / "patchbot.toml")
    monkeypatch.setenv("PATCHBOT_CACHE_DIR", str(cfg.cache_dir))
    out = cfg.root / "cli-run"
    rc = cli.main(["--config", str(cfg.root / "patchbot.toml"), "check", TAG, "--out", str(out),
                   "--json", str(cfg.root / "check.json")])
    assert rc == 0
    assert json.loads((cfg.root / "check.json").read_text())["passed"] is True
    assert capsys.readouterr().out.startswith(f"## patchbot check linux {TAG}: PASS")
    assert (out / "report.md").is_file()
    reproduce = json.loads((cfg.root / "check.json").read_text())["reproduce"]
    assert reproduce.startswith(f"patchbot check {TAG} --glibc ")
    assert (out / "reproducer.sh").read_text().splitlines()[-1] == reproduce
