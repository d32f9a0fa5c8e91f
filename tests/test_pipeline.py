"""The check pipeline: dry-run plan, job outcomes, the build/boot commands, the cache key.

The real `patchbot check` and its repeat from the cache are in tests/test_check_e2e.py."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tests.helpers.check_cases import CASES
from tests.helpers.gitrepo import REPO_ROOT
from ukl_patchbot import cli
from ukl_patchbot.check import pipeline
from ukl_patchbot.check import report as cr
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind
from ukl_patchbot.dispatch import execute
from ukl_patchbot.rebase.report import (
    HunkResult,
    HunkStatus,
    PatchResult,
    PatchStatus,
    RebaseReport,
)

FAKE = Path(__file__).parent / "fakelinux"


def checkout_cfg(base: Config, root: Path, series_dir: Path | None = None) -> Config:
    """``base`` with its checkout at ``root`` (kconfigs copied) and the linux series moved."""
    shutil.copytree(REPO_ROOT / "kconfigs", root / "kconfigs")
    comps = dict(base.components)
    if series_dir is not None:
        comps["linux"] = comps["linux"].with_series(series_dir)
    return dataclasses.replace(base, root=root, components=comps)


def test_plan_lists_the_exact_commands(tmp_path: Path) -> None:
    from ukl_patchbot.core import config

    cfg = checkout_cfg(dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"),
                                           cache_dir=tmp_path / "cache"), tmp_path / "co")
    lines = pipeline.plan(cfg, pipeline.CheckRequest(tag="v6.1.192", variants=("classic",)))
    text = "\n".join(lines)
    assert "tinyconfig" in text and "merge_config.sh -m" in text and "olddefconfig" in text
    assert str(tmp_path / "co" / "kconfigs" / "classic.config") in text
    assert "CCACHE_BASEDIR=" in text and "-j2 bzImage" in text
    assert "qemu-system-x86_64" in text and "-no-reboot" in text and "panic=-1" in text
    assert not (tmp_path / "cache").exists()  # a dry run writes nothing
    assert "probe/data.bin" in text and "-initrd" in text and "initramfs.cpio" in text
    assert "nginx" not in text
    app = "\n".join(pipeline.plan(cfg, pipeline.CheckRequest(tag="v6.1.192", variants=("classic",),
                                                             app="nginx")))
    assert "apt-get source nginx" in app and "kconfigs/net.config" in app
    assert not (tmp_path / "cache").exists()


def test_plan_boots_ukl_with_the_data_only_initramfs(tmp_path: Path) -> None:
    from ukl_patchbot.core import config

    cfg = checkout_cfg(dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"),
                                           cache_dir=tmp_path / "cache"), tmp_path / "co")
    lines = pipeline.plan(cfg, pipeline.CheckRequest(tag="v6.1.192", variants=("ukl",)))
    qemu = [x for x in lines if x.startswith("qemu-system-x86_64")]
    assert len(qemu) == 1 and "probe/data.cpio" in qemu[0], qemu


def test_summarize_rebase_table() -> None:
    rep = RebaseReport("linux", "v6.1.170", "v6.1.192", (
        PatchResult("0001-a.patch", "a", PatchStatus.CLEAN),
        PatchResult("0002-b.patch", "b", PatchStatus.OFFSET, (
            HunkResult("init/main.c", "@@ -10,3 +10,4 @@", 10, 3, HunkStatus.OFFSET, 22, 12),
            HunkResult("init/main.c", "@@ -40,3 +40,4 @@", 40, 3, HunkStatus.OFFSET, 52, 12))),
        PatchResult("0003-c.patch", "c", PatchStatus.CONFLICT, conflict_files=("mm/slub.c",)),
    ))
    s = pipeline.summarize_rebase(rep)
    assert not s.ok
    assert [(p.name, p.status, p.detail) for p in s.patches] == [
        ("0001-a.patch", "clean", ""), ("0002-b.patch", "offset", "init/main.c +12"),
        ("0003-c.patch", "conflict", "mm/slub.c")]
    assert "does not apply" in s.message


def test_outcome_maps_verdict_and_statuses() -> None:
    job = Job(JobKind.CHECK, tag="v6.1.192", repo="o/r", pr=7)
    good = execute.outcome_for(job, CASES["all-pass"]())
    assert good.conclusion == Conclusion.SUCCESS
    assert [(s.context, s.state) for s in good.statuses] == [
        ("patchbot/classic", "success"), ("patchbot/ukl", "success")]
    assert "getppid" in good.statuses[1].description
    bad = execute.outcome_for(job, CASES["ukl-oops"]())
    assert bad.conclusion == Conclusion.FAILURE
    assert bad.statuses[1].description == "boot failed"
    assert "ukl boot failed" in bad.title and bad.summary_md.startswith("## patchbot check")


def test_execute_job_turns_errors_into_an_error_outcome(tmp_path: Path) -> None:
    from ukl_patchbot.core import config

    cfg = dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"), cache_dir=tmp_path)
    out = execute.execute_job(Job(JobKind.CHECK, tag="v9.9.9"), cfg)
    assert out.conclusion == Conclusion.ERROR
    assert "could not" in out.summary_md


def test_build_command_on_fake_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "fakelinux"
    shutil.copytree(FAKE, src)
    kdir = tmp_path / "kconfigs"
    kdir.mkdir()
    (kdir / "base.config").write_text("CONFIG_TTY=y\n")
    (kdir / "classic.config").write_text("CONFIG_ACPI=y\n")  # dropped: needs PCI
    argv = ["build", "--src", str(src), "--out", str(tmp_path / "b" / "out"),
            "--kconfigs", str(kdir), "--no-ccache"]
    assert cli.main(argv) == 2
    assert "CONFIG_ACPI (asked y" in capsys.readouterr().out
    (kdir / "classic.config").write_text("CONFIG_PCI=y\nCONFIG_ACPI=y\n")
    assert cli.main(argv) == 0
    assert "image:" in capsys.readouterr().out


def test_source_hash_ignores_bytecode_but_sees_kconfig_changes(tmp_path: Path) -> None:
    from ukl_patchbot.core import config

    cfg = checkout_cfg(dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"),
                                           cache_dir=tmp_path / "cache"), tmp_path / "co")
    before = pipeline.source_hash(cfg)
    code = pipeline.code_hash()
    assert pipeline._sources(pipeline.PACKAGE_DIR)  # the package's .py and probe .c files
    assert all("__pycache__" not in name for name in pipeline._sources(pipeline.PACKAGE_DIR))
    assert "ukl_patchbot/check/probe/probe.c" in pipeline._sources(pipeline.PACKAGE_DIR)
    with open(tmp_path / "co" / "kconfigs" / "base.config", "a") as f:
        f.write("CONFIG_PRINTK_TIME=y\n")
    assert pipeline.source_hash(cfg) != before
    assert pipeline.code_hash() == code  # once per process: the code that was loaded


def test_unreadable_cached_report_is_a_miss(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(cr.render_json(CASES["all-pass"]()))
    loaded = pipeline._load_cached(good)
    assert loaded is not None and loaded.verdict == cr.Verdict.PASS
    bad = tmp_path / "bad.json"
    bad.write_text('{"component": "linux"}')
    assert pipeline._load_cached(bad) is None
    old = tmp_path / "old.json"
    old.write_text(good.read_text().replace('"schema": 1', '"schema": 0'))
    assert pipeline._load_cached(old) is None


def test_the_check_cache_key_covers_the_programs_files(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from ukl_patchbot.check.apps import recipes

    assert pipeline._app_inputs(None) is None
    first = pipeline._app_inputs("nginx")
    assert first is not None and first["name"] == "nginx"
    # Its config edited: a cached check must not answer for it.
    data = tmp_path / "nginx"
    data.mkdir()
    for f in recipes.NGINX.data_dir.iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(recipes, "DATA_DIR", tmp_path)
    assert pipeline._app_inputs("nginx") == first
    (data / "nginx.conf").write_text((data / "nginx.conf").read_text() + "# edited\n")
    assert pipeline._app_inputs("nginx") != first


def test_build_and_boot_runs_the_app_stage_only_when_asked(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The wiring of `--app`: after the variants, in the held workspace, with their results."""
    import contextlib

    from ukl_patchbot.check import userland, variants, workspace
    from ukl_patchbot.check.apps import stage
    from ukl_patchbot.check.results import (
        AppResult,
        AppStatus,
        BootResult,
        BootStatus,
        BuildResult,
        BuildStatus,
        ConfigResult,
        ConfigStatus,
        VariantResult,
    )
    from ukl_patchbot.core import config
    from ukl_patchbot.core.progress import Progress

    cfg = checkout_cfg(dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"),
                                           cache_dir=tmp_path / "cache"), tmp_path / "co")
    ws = variants.Workspace(tmp_path / "ws", tmp_path / "ws" / "src", None)
    held: list[bool] = []

    @contextlib.contextmanager
    def locked(cfg: Config, jobs: int = 2):  # type: ignore[no-untyped-def]
        held.append(True)
        yield ws
        held.append(False)

    passed = VariantResult("classic", ConfigResult(ConfigStatus.OK), BuildResult(BuildStatus.OK),
                           BootResult(BootStatus.PASS))
    calls: list[tuple[str, tuple[str, ...], stage.StageInputs, bool]] = []

    def run_stage(app, ws_, done, inputs, out_dir, progress):  # type: ignore[no-untyped-def]
        calls.append((app, tuple(v.variant for v in done), inputs, held[-1]))
        return (AppResult(app, "classic", AppStatus.PASS),)

    monkeypatch.setattr(workspace, "locked", locked)
    monkeypatch.setattr(pipeline, "export_once", lambda *a, **k: "unchanged")
    monkeypatch.setattr(userland, "build", lambda *a, **k: ({}, {}))
    monkeypatch.setattr(variants, "check_variants", lambda *a, **k: (passed,))
    monkeypatch.setattr(stage, "run_stage", run_stage)
    req = pipeline.CheckRequest(tag="v6.1.192", variants=("classic",), app="nginx",
                                boot_timeout=30, profile="realistic")
    results, apps = pipeline._build_and_boot(cfg, req, ("ref", "tree-1"), (None, None),
                                             tmp_path / "out", Progress())
    assert results == (passed,) and [a.status for a in apps] == [AppStatus.PASS]
    ((app, done, inputs, in_lock),) = calls
    assert (app, done, in_lock) == ("nginx", ("classic",), True)
    assert inputs.tree_id == "tree-1" and inputs.kconfig_dir == tmp_path / "co" / "kconfigs"
    assert inputs.boot_timeout == stage.DEFAULT_TIMEOUT  # a network boot gets at least its own
    assert inputs.profile == "realistic"  # the program's kernels get the check's profile too
    calls.clear()
    _, apps = pipeline._build_and_boot(cfg, dataclasses.replace(req, app=None), ("ref", "tree-1"),
                                       (None, None), tmp_path / "out", Progress())
    assert apps == () and calls == []
