"""Shared fixtures: isolated HOME and git identity, small real git repositories."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.gitrepo import REPO_ROOT, git


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, XDG cache and git identity isolated per test; gpg signing off."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("PATCHBOT_CACHE_DIR", raising=False)
    # issue 14: checks are recorded in the results history; never in the shared test cache
    monkeypatch.setenv("PATCHBOT_HISTORY_URL", f"sqlite:///{home / 'history.sqlite'}")
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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # ci/test.sh sets the start time: the figure covers install, checks and tests (cold or warm).
    start = os.environ.get("PATCHBOT_SUITE_START")
    if start and start.isdigit():
        import time

        took = int(time.time()) - int(start)
        terminalreporter.write_line(
            f"ci/test.sh wall time: {took} s ({took // 60} min {took % 60} s)")


# --- Real upstream trees (slow tests) ------------------------------------------------------
#
# `real_cache_dir` is a patchbot cache directory that survives between test runs on the same
# machine: $PATCHBOT_TEST_CACHE, default /var/tmp/ukl-patchbot-test. It holds downloads/ (the
# Debian .debs) and mirrors/<component>.git. On a fresh machine the first run fetches the
# packages with apt-get download (about 140 MB per Linux version) and imports them (about a
# minute per version); later runs reuse both.
#
# Which versions: never pinned. The Linux base is the series' recorded base when apt still
# offers it (or the mirror already holds it), else the oldest 6.1 version apt offers; the new
# tag is the newest one apt offers; glibc is the newest glibc-source apt offers
# (`tests.helpers.realtrees`).
#
# `linux_mirror` / `glibc_mirror` are bare mirrors holding those tags. Use them read-only
# (rev-parse, diff, `gitops.temp_worktree`, `gitops.export_tree`); several test sessions may
# share them at once. Importing takes the mirror's file lock (`<mirror>.lock`, see
# `upstream.sync`), so concurrent sessions wait for each other instead of importing twice.
# Never delete or re-tag them from a test.


@pytest.fixture(scope="session")
def real_cache_dir() -> Path:
    """The persistent patchbot cache for real upstream trees (see the comment above)."""
    from tests.helpers import realtrees

    cache = realtrees.test_cache_dir()
    (cache / "downloads").mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def real_config(real_cache_dir: Path):  # type: ignore[no-untyped-def]
    """The repository's patchbot.toml with the cache in `real_cache_dir`."""
    import dataclasses

    from ukl_patchbot.core import config

    return dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"), cache_dir=real_cache_dir)


def _synced_mirror(cfg, component: str, versions: tuple[str, ...]) -> Path:  # type: ignore[no-untyped-def]
    from ukl_patchbot.upstream import mirror as upstream

    upstream.sync(cfg, component, versions=list(versions), log_dir=cfg.cache_dir / "logs")
    return cfg.mirror_dir(component)


@pytest.fixture(scope="session")
def linux_mirror(real_config) -> Path:  # type: ignore[no-untyped-def]
    """Bare mirror holding the real base and new Linux tags (see realtrees)."""
    from tests.helpers import realtrees

    return _synced_mirror(real_config, "linux", realtrees.linux_versions())


@pytest.fixture(scope="session")
def glibc_mirror(real_config) -> Path:  # type: ignore[no-untyped-def]
    """Bare mirror with the newest glibc tag apt offers (upstream 2.36 + release-branch update)."""
    from tests.helpers import realtrees

    return _synced_mirror(real_config, "glibc", realtrees.glibc_versions())


@pytest.fixture(scope="session")
def linux_base_tree(linux_mirror: Path, real_cache_dir: Path) -> Path:
    """The Linux base tag exported once into the test cache (read-only for tests)."""
    from tests.helpers import realtrees
    from ukl_patchbot.upstream import gitops

    tag = realtrees.linux_base_tag()
    sha = gitops.rev_parse(linux_mirror, f"refs/tags/{tag}")
    dest = real_cache_dir / "trees" / f"linux-{sha}"
    if not (dest / "Makefile").is_file():
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        gitops.export_tree(linux_mirror, tag, tmp)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    return dest
