"""Bringing source trees into the check workspace: once, incrementally, or afresh."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tests.helpers.gitrepo import REPO_ROOT, git
from ukl_patchbot.check import workspace
from ukl_patchbot.core import config


def setup(tmp_path: Path, make_repo) -> tuple[config.Config, str, str, str, str]:  # type: ignore[no-untyped-def]
    repo = make_repo("up", {"Makefile": "all:\n", "kernel/fork.c": "int a;\n",
                            "mm/slub.c": "int s;\n"})
    a = git(repo, "rev-parse", "HEAD")
    (repo / "kernel" / "fork.c").write_text("int b;\n")
    (repo / "mm" / "slub.c").unlink()
    (repo / "new.c").write_text("int n;\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "next")
    b = git(repo, "rev-parse", "HEAD")
    cfg = dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"), cache_dir=tmp_path / "c")
    mirror = cfg.mirror_dir("linux")
    mirror.parent.mkdir(parents=True)
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(mirror))
    return cfg, a, git(repo, "rev-parse", f"{a}^{{tree}}"), b, git(repo, "rev-parse", f"{b}^{{tree}}")


def test_export_then_unchanged_then_incremental(tmp_path: Path, make_repo) -> None:  # type: ignore[no-untyped-def]
    cfg, a, ta, b, tb = setup(tmp_path, make_repo)
    dest = workspace.check_workspace(cfg).src
    assert workspace.export_once(cfg, "linux", a, ta, dest) == "exported"
    assert (dest / "mm" / "slub.c").read_text() == "int s;\n"
    assert workspace.export_once(cfg, "linux", a, ta, dest) == "unchanged"
    old = 1_000_000_000
    os.utime(dest / "Makefile", (old, old))
    assert workspace.export_once(cfg, "linux", b, tb, dest) == "updated"
    assert (dest / "kernel" / "fork.c").read_text() == "int b;\n"
    assert (dest / "new.c").is_file() and not (dest / "mm" / "slub.c").exists()
    # Unchanged files keep their mtime: make will not rebuild what depends on them.
    assert (dest / "Makefile").stat().st_mtime == old


def test_modified_tree_is_exported_afresh(tmp_path: Path, make_repo) -> None:  # type: ignore[no-untyped-def]
    cfg, a, ta, b, tb = setup(tmp_path, make_repo)
    dest = workspace.check_workspace(cfg).src
    workspace.export_once(cfg, "linux", a, ta, dest)
    (dest / "Makefile").write_text("local edit\n")  # same in both trees: would survive a switch
    assert workspace.export_once(cfg, "linux", b, tb, dest) == "exported"
    assert (dest / "Makefile").read_text() == "all:\n"


def test_interrupted_export_is_redone(tmp_path: Path, make_repo) -> None:  # type: ignore[no-untyped-def]
    cfg, a, ta, _b, _tb = setup(tmp_path, make_repo)
    dest = workspace.check_workspace(cfg).src
    workspace.export_once(cfg, "linux", a, ta, dest)
    (dest.parent / f".{dest.name}.tree").unlink()  # as if killed before the marker was written
    (dest / "kernel" / "fork.c").unlink()
    assert workspace.export_once(cfg, "linux", a, ta, dest) == "exported"
    assert (dest / "kernel" / "fork.c").read_text() == "int a;\n"


def test_locked_workspace_is_exclusive(tmp_path: Path) -> None:
    import pytest

    from ukl_patchbot.core.errors import InfraError
    from ukl_patchbot.upstream import gitops

    cfg = dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"), cache_dir=tmp_path)
    with (workspace.locked(cfg) as ws, pytest.raises(InfraError, match="waiting for lock"),
          gitops.locked(ws.root / ".lock", timeout=0.2)):
        pass
