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


def test_each_variant_boots_its_kind_of_archive_with_the_fragment_and_profile_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from tests.helpers.gitrepo import REPO_ROOT

    kconfigs = tmp_path / "kconfigs"
    shutil.copytree(REPO_ROOT / "kconfigs", kconfigs)
    src = debsrc.SourceTree("nginx", "1.22.1-9", tmp_path / "tree", tmp_path / "x.dsc")
    monkeypatch.setattr(debsrc, "fetch_source", lambda *a, **k: src)
    payloads = {"classic": tmp_path / "init.cpio", "ukl": tmp_path / "data.cpio"}
    archive = tmp_path / "nginx-ukl-app.o"
    archive.write_bytes(b"object")

    def payload(recipe, prog, userland, inputs, app_dir, log):  # type: ignore[no-untyped-def]
        return (payloads["classic"], None) if prog.userland.value == "stock-static" else (
            payloads["ukl"], archive)

    monkeypatch.setattr(build, "build_program", lambda recipe, source, userland, *a, **k:
                        build.ProgramBuild("nginx", source.version, userland, tmp_path / "p",
                                           0.0, True))
    monkeypatch.setattr(stage, "_payload", payload)
    specs: list[variants.VariantSpec] = []

    def no_kernel(src_, tree, spec, *a, **k):  # type: ignore[no-untyped-def]
        specs.append(spec)
        return ConfigResult(ConfigStatus.OK), BuildResult(BuildStatus.FAILED, 1.0, 0,
                                                          ("error: stop here",))

    monkeypatch.setattr(variants, "build_variant", no_kernel)
    inputs = stage.StageInputs(kconfigs, tmp_path / "cache", "tree", "glibc-tree",
                               profile="realistic")
    res = stage.run_stage("nginx", _ws(tmp_path), (_variant("classic", True),
                                                   _variant("ukl", True)),
                          inputs, tmp_path / "out", Progress())
    assert [r.status for r in res] == [AppStatus.BUILD_FAILED, AppStatus.BUILD_FAILED]
    assert res[0].detail == "kernel: error: stop here"
    classic, ukl = specs
    assert classic.initrd == payloads["classic"] and ukl.initrd == payloads["ukl"]
    assert "CONFIG_UKL_ARCHIVE" in ukl.extra and "CONFIG_UKL_ARCHIVE" not in classic.extra
    for spec in specs:
        names = [f.name for f in spec.fragments]
        assert names[-1] == "net.config" and any("realistic" in n for n in names)
