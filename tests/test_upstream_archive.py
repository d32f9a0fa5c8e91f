"""The Debian archive moves on under the bot: a real apt source that tests change.

A flat apt repository on disk, seen through ``APT_CONFIG``, so `upstream.sync`
runs the real ``apt-cache madison`` and ``apt-get download``. The archive then
publishes a newer Debian revision of a version, withdraws a version (the
series base among them) and adds a new one; sync, tags and rebase must behave.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.apt import FakeArchive
from tests.helpers.gitrepo import git
from ukl_patchbot.core.config import Component, Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.rebase import engine as rebase
from ukl_patchbot.upstream import debian, gitops
from ukl_patchbot.upstream import mirror as upstream

PKG = "linux-source-6.1"


def _tree(sublevel: int, extra: str = "") -> dict[str, bytes]:
    return {"Makefile": f"VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = {sublevel}\n".encode(),
            "kernel/sched.c": ("int a;\n" * 20 + f"/* {sublevel}{extra} */\n").encode()}


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeArchive:
    arch = FakeArchive(tmp_path / "archive")
    arch.add_linux(PKG, "6.1.10-1", _tree(10))
    arch.add_linux(PKG, "6.1.12-1", _tree(12))
    monkeypatch.setenv("APT_CONFIG", str(arch.config))
    return arch


def _config(root: Path, cache: str = "cache") -> Config:
    sdir = root / "patchsets" / "linux"
    if not sdir.exists():
        sdir.mkdir(parents=True)
        patch = (
            "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n"
            "From: Dev <dev@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
            "Subject: [PATCH] sched: add b\n\n---\n"
            "diff --git a/kernel/sched.c b/kernel/sched.c\n--- a/kernel/sched.c\n"
            "+++ b/kernel/sched.c\n@@ -1,3 +1,4 @@\n int a;\n+int b;\n int a;\n int a;\n"
            "-- \n2.39.5\n\n")
        (sdir / "0001-sched-add-b.patch").write_text(patch)
        (sdir / "series").write_text("0001-sched-add-b.patch\n")
        (sdir / "patchset.toml").write_text('base = "v6.1.10"\n')
    comp = Component("linux", f"debian:{PKG}", "v", sdir, ("6.1",))
    return Config(root=root, cache_dir=root / cache, components={"linux": comp})


def _revision(cfg: Config, tag: str) -> str | None:
    return debian.parse_tag_message(
        gitops.tag_message(cfg.mirror_dir("linux"), tag)).get("revision")


def test_sync_follows_the_archive_as_it_moves_on(archive: FakeArchive, tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    first = upstream.sync(cfg, "linux")
    assert sorted(first.added) == ["v6.1.10", "v6.1.12"] and first.present == ()
    assert _revision(cfg, "v6.1.12") == "6.1.12-1"

    # Debian publishes -2 of 6.1.12 (a fix in the packaging), withdraws 6.1.10, adds 6.1.14.
    archive.add_linux(PKG, "6.1.12-2", _tree(12, " fixed"))
    archive.withdraw(PKG, "6.1.10-1")
    archive.add_linux(PKG, "6.1.14-1", _tree(14))
    assert [d.version for d in debian.available(PKG, "v")] == ["6.1.14-1", "6.1.12-2"]

    second = upstream.sync(cfg, "linux")
    assert sorted(second.added) == ["v6.1.12", "v6.1.14"] and second.present == ()
    assert _revision(cfg, "v6.1.12") == "6.1.12-2"  # the newest revision wins
    assert "fixed" in gitops.out(cfg.mirror_dir("linux"), "show", "v6.1.12:kernel/sched.c")
    # A mirror that already holds a withdrawn version keeps it: the base stays usable.
    assert upstream.list_tags(cfg, "linux") == ["v6.1.14", "v6.1.12", "v6.1.10"]
    assert _revision(cfg, "v6.1.10") == "6.1.10-1"
    third = upstream.sync(cfg, "linux")
    assert third.added == () and sorted(third.present) == ["v6.1.12", "v6.1.14"]

    report = rebase.rebase_series(cfg, "linux", "v6.1.14", dry_run=True)
    assert report.ok and report.range_diff  # the old base is in the mirror: full detail


def test_fresh_machine_after_the_base_left_the_archive(archive: FakeArchive,
                                                       tmp_path: Path) -> None:
    archive.withdraw(PKG, "6.1.10-1")
    archive.add_linux(PKG, "6.1.14-1", _tree(14))
    cfg = _config(tmp_path)
    res = upstream.sync(cfg, "linux")
    assert sorted(res.added) == ["v6.1.12", "v6.1.14"]
    with pytest.raises(UserError) as exc:
        upstream.sync(cfg, "linux", versions=["6.1.10"])
    assert "apt offers no version 6.1.10" in str(exc.value)
    assert "v6.1.14" in (exc.value.hint or "")
    # The series still carries onto the new tag; the report says the base is gone.
    report = rebase.rebase_series(cfg, "linux", "v6.1.14", dry_run=True)
    assert report.ok
    assert any("v6.1.10 is not in the mirror" in n for n in report.notes)


def test_cli_tags_mark_a_base_the_archive_withdrew(archive: FakeArchive, tmp_path: Path) -> None:
    (tmp_path / "patchbot.toml").write_text(
        f'[paths]\ncache_dir = "cache"\n[components.linux]\nupstream = "debian:{PKG}"\n'
        'series = "patchsets/linux"\ntracked = ["6.1"]\n'
        '[components.glibc]\nupstream = "debian:glibc-source"\nseries = "patchsets/glibc"\n')
    _config(tmp_path)
    archive.withdraw(PKG, "6.1.10-1")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ukl_patchbot", *args], cwd=tmp_path,
                              text=True, capture_output=True, timeout=300,
                              env=dict(os.environ), check=False)

    res = cli("upstream", "sync", "linux")
    assert res.returncode == 0, res.stderr
    res = cli("tags", "linux")
    assert res.returncode == 0, res.stderr
    assert "v6.1.12" in res.stdout
    assert "v6.1.10" in res.stdout and "not in the mirror" in res.stdout
    git(tmp_path, "init", "-q")  # rebase refuses to write over uncommitted series edits
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "init")
    res = cli("rebase", "v6.1.12", "--component", "linux")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "v6.1.10 is not in the mirror" in res.stdout
    assert 'base = "v6.1.12"' in (tmp_path / "patchsets/linux/patchset.toml").read_text()


def test_needed_only_imports_the_base_and_the_newest_of_the_line(archive: FakeArchive,
                                                                  tmp_path: Path) -> None:
    archive.add_linux(PKG, "6.1.14-1", _tree(14))
    cfg = _config(tmp_path)  # base v6.1.10, tracked line 6.1
    res = upstream.sync(cfg, "linux", needed_only=True)
    assert sorted(res.added) == ["v6.1.10", "v6.1.14"]  # not v6.1.12
    assert upstream.list_tags(cfg, "linux") == ["v6.1.14", "v6.1.10"]
    assert upstream.sync(cfg, "linux").added == ("v6.1.12",)  # a full sync takes the rest
