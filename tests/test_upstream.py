"""Upstream mirrors on small inputs: shallow git-remote sync and the Debian package importer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.debs import make_deb, tar_xz
from tests.helpers.gitrepo import git
from ukl_patchbot.core.config import Component, Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.upstream import debian, gitops
from ukl_patchbot.upstream import mirror as upstream

# --- git remote upstream ------------------------------------------------------------------


@pytest.fixture
def remote_cfg(tmp_path: Path) -> Config:
    up = tmp_path / "stable"
    up.mkdir()
    git(up, "init", "-q")
    for tag in ("v6.1.1", "v6.1.2", "v6.1.3", "v6.1.10", "v6.2"):
        (up / "Makefile").write_text(f"VERSION = {tag}\n")
        git(up, "add", "-A")
        git(up, "commit", "-q", "-m", tag)
        git(up, "tag", "-a", tag, "-m", tag)
    sdir = tmp_path / "patchsets" / "linux"
    sdir.mkdir(parents=True)
    (sdir / "patchset.toml").write_text('base = "v6.1.2"\n')
    comp = Component("linux", f"file://{up}", "v", sdir, ("6.1",))
    return Config(root=tmp_path, cache_dir=tmp_path / "cache", components={"linux": comp})


def test_git_sync_fetches_only_needed_tags_shallow(remote_cfg: Config) -> None:
    res = upstream.sync(remote_cfg, "linux")
    # The series base and the newest of the tracked 6.1 line; not v6.2, not the rest.
    assert sorted(res.added) == ["v6.1.10", "v6.1.2"]
    mirror = remote_cfg.mirror_dir("linux")
    assert upstream.list_tags(remote_cfg, "linux") == ["v6.1.10", "v6.1.2"]
    assert gitops.out(mirror, "rev-parse", "--is-shallow-repository") == "true"
    assert gitops.out(mirror, "rev-list", "--count", "v6.1.10") == "1"
    again = upstream.sync(remote_cfg, "linux")
    assert again.added == () and sorted(again.present) == ["v6.1.10", "v6.1.2"]
    asked = upstream.sync(remote_cfg, "linux", versions=["6.1.3"])
    assert asked.added == ("v6.1.3",)
    assert upstream.list_tags(remote_cfg, "linux") == ["v6.1.10", "v6.1.3", "v6.1.2"]


def test_resolve_tag_and_errors(remote_cfg: Config) -> None:
    with pytest.raises(UserError, match="no tags yet"):
        upstream.resolve_tag(remote_cfg, "linux", "v6.1.2")
    upstream.sync(remote_cfg, "linux")
    sha = upstream.resolve_tag(remote_cfg, "linux", "v6.1.2")
    assert len(sha) == 40
    with pytest.raises(UserError, match=r"closest known tags: v6\.1\.2, v6\.1\.10"):
        upstream.resolve_tag(remote_cfg, "linux", "v6.1.4")
    with pytest.raises(UserError, match="not a valid tag name"):
        upstream.resolve_tag(remote_cfg, "linux", "v6.1.2; rm -rf /")
    with pytest.raises(UserError, match="has no tag"):
        upstream.sync(remote_cfg, "linux", versions=["6.1.99"])


@pytest.mark.parametrize("tag", ["v6.1.2;id", "--upload-pack=touch x", "-v6.1.2", "..",
                                 "v6.1.2 ", "refs/tags/v6.1.2", ""])
def test_a_bad_tag_name_is_refused_before_anything_is_fetched(
        remote_cfg: Config, tag: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ukl_patchbot.commands import rebase as rebase_cmd

    def no_sync(*_a: object, **_k: object) -> None:
        raise AssertionError("sync called for a bad name")

    monkeypatch.setattr(upstream, "sync", no_sync)
    with pytest.raises(UserError, match="not a valid tag name"):
        rebase_cmd._fetch_if_missing(remote_cfg, "linux", tag)
    assert "fetching" not in capsys.readouterr().err


# --- Debian source packages -----------------------------------------------------------------


def test_deb_import_streams_tree_into_tagged_commit(tmp_path: Path) -> None:
    tarball = tar_xz({"Makefile": b"VERSION = 6\n", "scripts/run.sh*": b"#!/bin/sh\n",
                       "arch/x86/link": ("link", "../Makefile"), "dir with space/f": b"x\n"},
                      "linux-source-6.1")
    deb = make_deb(tmp_path / "k.deb", {"usr/src/linux-source-6.1.tar.xz": tarball,
                                        "usr/share/doc/linux-source-6.1/copyright": b"GPL\n"})
    dv = debian.DebVersion("linux-source-6.1", "6.1.192-2", "v6.1.192")
    shas = []
    for name in ("m1.git", "m2.git"):
        mirror = gitops.ensure_mirror(tmp_path / name)
        shas.append(debian.import_version(mirror, deb, dv, log_path=tmp_path / "imp.log"))
    assert shas[0] == shas[1]  # deterministic: same package, same commit on every machine
    tree = gitops.out(mirror, "ls-tree", "-r", "v6.1.192")
    assert "100755 blob" in tree and "scripts/run.sh" in tree
    assert "120000 blob" in tree and "dir with space/f" in tree
    assert gitops.out(mirror, "show", "v6.1.192:arch/x86/link") == "../Makefile"
    msg = debian.parse_tag_message(gitops.tag_message(mirror, "v6.1.192"))
    assert msg == {"package": "linux-source-6.1", "revision": "6.1.192-2"}
    assert "copyright" not in tree  # only the upstream tarball is imported


def test_deb_import_glibc_reverts_debian_patches_keeps_release_branch(tmp_path: Path) -> None:
    # As Debian ships it: upstream + git-updates.diff (release branch) + a Debian-only patch.
    updates = (b"GIT update of release/2.36/master from glibc-2.36\n\n"
               b"diff --git a/version.h b/version.h\n--- a/version.h\n+++ b/version.h\n"
               b"@@ -1 +1 @@\n-#define RELEASE \"development\"\n+#define RELEASE \"stable\"\n"
               b"diff --git a/misc/empty.req b/misc/empty.req\nnew file mode 100644\n"
               b"index 0000000000..e69de29bb2\n")
    local = (b"--- a/locale/C.txt\n+++ b/locale/C.txt\n@@ -1 +1 @@\n-upstream\n+debian\n")
    shipped = tar_xz({"version.h": b'#define RELEASE "stable"\n', "locale/C.txt": b"debian\n"},
                      "glibc-2.36")
    deb = make_deb(tmp_path / "g.deb", {
        "usr/src/glibc/debian/patches/series": b"git-updates.diff\n\nlocal/tweak.diff -p1\n",
        "usr/src/glibc/debian/patches/git-updates.diff": updates,
        "usr/src/glibc/debian/patches/local/tweak.diff": local,
        "usr/src/glibc/glibc-2.36.tar.xz": shipped,
    })
    mirror = gitops.ensure_mirror(tmp_path / "glibc.git")
    dv = debian.DebVersion("glibc-source", "2.36-9+deb12u14", "glibc-2.36-deb12u14")
    debian.import_version(mirror, deb, dv, log_path=None)
    tag = "glibc-2.36-deb12u14"
    assert gitops.out(mirror, "show", f"{tag}:locale/C.txt") == "upstream"  # Debian's reverted
    assert gitops.out(mirror, "show", f"{tag}:version.h") == '#define RELEASE "stable"'
    assert gitops.out(mirror, "ls-tree", "--name-only", f"{tag}:misc") == "empty.req"
    # The parent is the tree exactly as Debian shipped it.
    assert gitops.out(mirror, "show", f"{tag}^:locale/C.txt") == "debian"
    assert "Debian's own patches reverted" in gitops.tag_message(mirror, tag)


def test_deb_import_rejects_non_deb_and_missing_tarball(tmp_path: Path) -> None:
    mirror = gitops.ensure_mirror(tmp_path / "m.git")
    dv = debian.DebVersion("linux-source-6.1", "6.1.1-1", "v6.1.1")
    bogus = tmp_path / "x.deb"
    bogus.write_bytes(b"not an ar archive")
    with pytest.raises(UserError, match="not a Debian package"):
        debian.import_version(mirror, bogus, dv, log_path=None)
    empty = make_deb(tmp_path / "e.deb", {"usr/share/doc/x": b"x"})
    with pytest.raises(UserError, match=r"no usr/src/\*\.tar\.xz"):
        debian.import_version(mirror, empty, dv, log_path=None)
    assert gitops.list_tags(mirror) == []


def test_mirror_lock_serializes(tmp_path: Path) -> None:
    lock = tmp_path / "m.lock"
    with gitops.locked(lock):
        t = time.monotonic()
        with pytest.raises(Exception, match="waiting for lock"), gitops.locked(lock, timeout=1.0):
            pass
        assert time.monotonic() - t >= 1.0


def test_cli_sync_and_tags(remote_cfg: Config, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    comp = remote_cfg.component("linux")
    (tmp_path / "patchbot.toml").write_text(
        f'[paths]\ncache_dir = "cache"\n[components.linux]\nupstream = "{comp.upstream}"\n'
        'series = "patchsets/linux"\ntracked = ["6.1"]\n'
        '[components.glibc]\nupstream = "file:///nonexistent"\nseries = "patchsets/glibc"\n')

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ukl_patchbot", *args], cwd=tmp_path,
                              text=True, capture_output=True, timeout=120, env=dict(os.environ),
                              check=False)

    res = cli("upstream", "sync", "linux")
    assert res.returncode == 0, res.stderr
    assert "added v6.1.10, v6.1.2" in res.stdout
    res = cli("tags", "linux")
    assert res.returncode == 0
    lines = [ln.strip() for ln in res.stdout.splitlines()[1:]]
    assert lines == ["line 6.1: series patchsets/linux, base v6.1.2", "v6.1.10  (newer)",
                     "v6.1.2  <- base"]
    assert cli("tags", "linux", "--newest").stdout.strip() == "v6.1.10"
    res = cli("upstream", "sync", "glibc")
    assert res.returncode == 1 and "error" in res.stderr
