"""Which real upstream versions the slow tests use: derived from the archive, never pinned.

- Linux base: the series' recorded base while apt offers it or the test mirror
  already holds it; otherwise the oldest 6.1 version apt offers (the bot's own
  rule when a base leaves the archive: rebase without the old-base detail).
- Linux new: the newest 6.1 version apt offers.
- glibc: the newest glibc-source version apt offers.
- Linux 6.12 (the next line): the newest linux-source-6.12 version apt offers.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from tests.helpers.apt import all_versions, offered, sort_versions
from tests.helpers.gitrepo import REPO_ROOT
from ukl_patchbot.series.meta import read_base

LINUX_PACKAGE = "linux-source-6.1"
LINUX_NEXT_PACKAGE = "linux-source-6.12"
GLIBC_PACKAGE = "glibc-source"
# The series of each component's line the real tests carry (Linux has one per line).
SERIES_DIRS = {"linux": REPO_ROOT / "patchsets" / "linux" / "6.1",
               "glibc": REPO_ROOT / "patchsets" / "glibc"}


def series_base(component: str = "linux") -> str:
    return read_base(SERIES_DIRS[component])


@functools.cache
def linux_next_tag() -> str:
    """The newest 6.12 tag apt offers (the line the 6.1 series is ported to)."""
    vs = sort_versions(list(offered(LINUX_NEXT_PACKAGE)))
    if not vs:
        raise RuntimeError(f"apt offers no {LINUX_NEXT_PACKAGE}: run apt-get update")
    return "v" + vs[-1]


@functools.cache
def _linux_offered() -> list[str]:
    vs = sort_versions(list(offered(LINUX_PACKAGE)))
    if not vs:
        raise RuntimeError(f"apt offers no {LINUX_PACKAGE}: run apt-get update")
    return vs


def linux_new_tag() -> str:
    return "v" + _linux_offered()[-1]


def linux_previous_tag() -> str:
    """The 6.1 version apt offers just before the newest: the step a weekly check sees."""
    vs = _linux_offered()
    if len(vs) < 2:
        raise RuntimeError(f"apt offers only {vs} of {LINUX_PACKAGE}: no previous version")
    return "v" + vs[-2]


def test_cache_dir() -> Path:
    """The persistent cache the slow tests share ($PATCHBOT_TEST_CACHE)."""
    return Path(os.environ.get("PATCHBOT_TEST_CACHE", "/var/tmp/ukl-patchbot-test"))


@functools.cache
def linux_base_tag() -> str:
    """The Linux base tag for real tests (see the module docstring)."""
    base = series_base("linux")
    mirror = test_cache_dir() / "mirrors" / "linux.git"
    held = mirror.is_dir() and subprocess.run(
        ["git", "--git-dir", str(mirror), "rev-parse", "-q", "--verify", f"refs/tags/{base}"],
        capture_output=True, check=False).returncode == 0
    if base[1:] in _linux_offered() or held:
        return base
    return "v" + _linux_offered()[0]


def linux_versions() -> tuple[str, ...]:
    """Versions to sync into the test mirror: base and new, as far as apt offers them."""
    tags = dict.fromkeys((linux_base_tag(), linux_new_tag()))
    return tuple(t[1:] for t in tags if t[1:] in _linux_offered())


def glibc_version() -> str:
    """The newest glibc-source Debian version, as the tag version (2.36-deb12u14)."""
    vs = sort_versions(list(offered(GLIBC_PACKAGE).values()))
    if not vs:
        raise RuntimeError(f"apt offers no {GLIBC_PACKAGE}: run apt-get update")
    from ukl_patchbot.core import versions

    return versions.debian_tag_version(vs[-1])


def glibc_tag() -> str:
    return "glibc-" + glibc_version()


def glibc_versions() -> tuple[str, ...]:
    """Versions to sync into the glibc test mirror: the series base (while offered) and newest."""
    from ukl_patchbot.core import versions

    offered_tags = {versions.debian_tag_version(v) for v in all_versions(GLIBC_PACKAGE)}
    base = series_base("glibc").removeprefix("glibc-")
    return tuple(dict.fromkeys(v for v in (base, glibc_version()) if v in offered_tags))


def newest_revision(package: str, version: str) -> str:
    """The newest Debian revision apt offers of upstream ``version``."""
    return offered(package)[version]
