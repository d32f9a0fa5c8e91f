"""The app stage's results when a program cannot even be tried (no QEMU, no kernel build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ukl_patchbot.check import variants
from ukl_patchbot.check.apps import build, stage
from ukl_patchbot.check.results import (
    AppStatus,
    BootResult,
    BootStatus,
    BuildResult,
    BuildStatus,
    ConfigResult,
    ConfigStatus,
    VariantResult,
)
from ukl_patchbot.core.errors import CommandFailed, InfraError
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.upstream import debsrc


def _variant(name: str, ok: bool) -> VariantResult:
    boot = BootResult(BootStatus.PASS if ok else BootStatus.FAIL)
    return VariantResult(name, ConfigResult(ConfigStatus.OK), BuildResult(BuildStatus.OK), boot)


def _inputs(tmp_path: Path) -> stage.StageInputs:
    return stage.StageInputs(tmp_path / "kconfigs", tmp_path / "cache", "tree", None)


def _ws(tmp_path: Path) -> variants.Workspace:
    return variants.Workspace(tmp_path / "ws", tmp_path / "src", None)


def test_a_source_that_cannot_be_fetched_fails_every_variant(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_source(*a: object, **k: object) -> debsrc.SourceTree:
        raise InfraError("no version of source package nginx could be fetched: 404")

    monkeypatch.setattr(debsrc, "fetch_source", no_source)
    res = stage.run_stage("nginx", _ws(tmp_path), (_variant("classic", True),
                                                   _variant("ukl", False)),
                          _inputs(tmp_path), tmp_path / "out", Progress())
    assert [(r.variant, r.status) for r in res] == [("classic", AppStatus.BUILD_FAILED),
                                                    ("ukl", AppStatus.BUILD_FAILED)]
    assert "404" in res[0].detail and res[0].log_path == str(tmp_path / "out/app-nginx/fetch.log")


def test_a_failed_variant_is_skipped_and_a_failed_build_is_a_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = debsrc.SourceTree("nginx", "1.22.1-9", tmp_path / "tree", tmp_path / "x.dsc")
    monkeypatch.setattr(debsrc, "fetch_source", lambda *a, **k: src)

    def broken(*a: object, **k: object) -> build.ProgramBuild:
        raise CommandFailed(["make", "-j2"], 2, "build.log",
                            "src/core/nginx.c:1:1: error: unknown type name 'x'")

    monkeypatch.setattr(build, "build_program", broken)
    res = stage.run_stage("nginx", _ws(tmp_path), (_variant("classic", True),
                                                   _variant("ukl", False)),
                          _inputs(tmp_path), tmp_path / "out", Progress())
    classic, ukl = res
    assert classic.status is AppStatus.BUILD_FAILED and classic.version == "1.22.1-9"
    assert classic.detail == "program: src/core/nginx.c:1:1: error: unknown type name 'x'"
    assert ukl.status is AppStatus.SKIPPED and "failed its own check" in ukl.detail
