"""Shared fixtures: isolated HOME and git identity, small real git repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, XDG cache and git identity isolated per test; gpg signing off."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("PATCHBOT_CACHE_DIR", raising=False)
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.org")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.org")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    (home / ".gitconfig").write_text(
        "[commit]\n\tgpgsign = false\n[tag]\n\tgpgsign = false\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    return home


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` for test setup; returns stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Create a git repository with the given files committed (and optionally tagged)."""

    def _make(name: str = "repo", files: dict[str, str] | None = None, tag: str | None = None) -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q")
        for rel, text in (files or {"README": "hello\n"}).items():
            p = repo / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        if tag:
            git(repo, "tag", "-a", tag, "-m", tag)
        return repo

    return _make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # PATCHBOT_FAST=1 skips the slow tests (real trees, QEMU) for quick local loops.
    if os.environ.get("PATCHBOT_FAST") == "1":
        skip = pytest.mark.skip(reason="PATCHBOT_FAST=1")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)


# --- Real upstream trees (slow tests) ------------------------------------------------------
#
# `real_cache_dir` is a patchbot cache directory that survives between test runs on the same
# machine: $PATCHBOT_TEST_CACHE, default /var/tmp/ukl-patchbot-test. It holds downloads/ (the
# Debian .debs) and mirrors/<component>.git. On a fresh machine the first run fetches the
# packages with apt-get download (about 140 MB per Linux version) and imports them (about a
# minute per version); later runs reuse both. .debs already on disk in $PATCHBOT_TEST_DEBS
# (default /work/dl) are linked in instead of downloaded.
#
# `linux_mirror` / `glibc_mirror` are bare mirrors holding at least v6.1.170 and v6.1.192 /
# glibc-2.36-deb12u14. Use them read-only (rev-parse, diff, `gitops.temp_worktree`,
# `gitops.export_tree`); several test sessions may share them at once. Importing takes the
# mirror's file lock (`<mirror>.lock`, see `upstream.sync`), so concurrent sessions wait for
# each other instead of importing twice. Never delete or re-tag them from a test.

REAL_LINUX_VERSIONS = ("6.1.170", "6.1.192")
REAL_GLIBC_VERSIONS = ("2.36-deb12u14",)


@pytest.fixture(scope="session")
def real_cache_dir() -> Path:
    """The persistent patchbot cache for real upstream trees (see the comment above)."""
    cache = Path(os.environ.get("PATCHBOT_TEST_CACHE", "/var/tmp/ukl-patchbot-test"))
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    seed = Path(os.environ.get("PATCHBOT_TEST_DEBS", "/work/dl"))
    if seed.is_dir():
        for deb in seed.glob("*.deb"):
            target = downloads / deb.name
            if not target.exists():
                tmp = downloads / f".{deb.name}.seed-{os.getpid()}"
                try:
                    os.link(deb, tmp)
                except OSError:
                    import shutil

                    shutil.copyfile(deb, tmp)
                os.replace(tmp, target)
    return cache


@pytest.fixture(scope="session")
def real_config(real_cache_dir: Path):  # type: ignore[no-untyped-def]
    """The repository's patchbot.toml with the cache in `real_cache_dir`."""
    import dataclasses

    from ukl_patchbot import config

    return dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"), cache_dir=real_cache_dir)


def _synced_mirror(cfg, component: str, versions: tuple[str, ...]) -> Path:  # type: ignore[no-untyped-def]
    from ukl_patchbot import upstream

    upstream.sync(cfg, component, versions=list(versions), log_dir=cfg.cache_dir / "logs")
    return cfg.mirror_dir(component)


@pytest.fixture(scope="session")
def linux_mirror(real_config) -> Path:  # type: ignore[no-untyped-def]
    """Bare mirror with at least v6.1.170 and v6.1.192 (imported from Debian's packages)."""
    return _synced_mirror(real_config, "linux", REAL_LINUX_VERSIONS)


@pytest.fixture(scope="session")
def glibc_mirror(real_config) -> Path:  # type: ignore[no-untyped-def]
    """Bare mirror with at least glibc-2.36-deb12u14 (upstream 2.36 + release-branch update)."""
    return _synced_mirror(real_config, "glibc", REAL_GLIBC_VERSIONS)
