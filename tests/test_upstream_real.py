"""The Debian imports on the real packages (slow: uses the persistent test cache)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import realtrees
from tests.helpers.gitrepo import git
from ukl_patchbot.core.config import Config
from ukl_patchbot.upstream import debian, gitops
from ukl_patchbot.upstream import mirror as upstream

pytestmark = pytest.mark.slow


def test_linux_sync_is_idempotent(linux_mirror: Path, real_config: Config) -> None:
    wanted = realtrees.linux_versions()
    res = upstream.sync(real_config, "linux", versions=list(wanted))
    assert res.added == () and set(res.present) == {f"v{v}" for v in wanted}
    # The newest Debian revision apt offers right now (the archive moves on: never pinned).
    new = realtrees.linux_new_tag()
    info = debian.parse_tag_message(gitops.tag_message(linux_mirror, new))
    assert info["revision"] == realtrees.newest_revision("linux-source-6.1", new[1:])
    base = realtrees.linux_base_tag()
    sub = base.rsplit(".", 1)[1]
    assert f"SUBLEVEL = {sub}" in gitops.out(linux_mirror, "show", f"{base}:Makefile")


def test_glibc_tag_is_upstream_plus_release_branch(glibc_mirror: Path, real_cache_dir: Path,
                                                   tmp_path: Path) -> None:
    tag = realtrees.glibc_tag()
    revision = realtrees.newest_revision("glibc-source", "2.36")
    info = debian.parse_tag_message(gitops.tag_message(glibc_mirror, tag))
    assert info == {"package": "glibc-source", "revision": revision}
    deb = next((real_cache_dir / "downloads").glob(f"glibc-source_{revision}_*.deb"))
    diff = subprocess.run(
        ["sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | "
         "tar -xOf - ./usr/src/glibc/debian/patches/git-updates.diff"],
        check=True, capture_output=True, timeout=300).stdout
    (tmp_path / "u.diff").write_bytes(diff)
    env = {"GIT_INDEX_FILE": str(tmp_path / "index")}
    gitops.git(glibc_mirror, "read-tree", tag, extra_env=env)
    # The release-branch update is exactly what the tag adds to upstream 2.36: it reverts
    # cleanly (but for one binary test file a text diff cannot carry).
    res = gitops.git(glibc_mirror, "apply", "--cached", "-R", "--check",
                     "--exclude=timezone/testdata/XT6", str(tmp_path / "u.diff"),
                     extra_env=env, check=False)
    assert res.ok, res.stderr[-2000:]
    # The parent is Debian's tree as shipped; Debian-only changes are gone from the tag.
    changed = git(glibc_mirror, "diff", "--name-only", f"{tag}^", tag).splitlines()
    assert len(changed) > 100 and any(p.startswith("localedata/") for p in changed)
    assert '"stable"' in gitops.out(glibc_mirror, "show", f"{tag}:version.h")
