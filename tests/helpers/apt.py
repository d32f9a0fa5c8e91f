"""What Debian's archive offers right now, and a fake apt source that tests can move on.

Tests never pin an archive state: the expected tags and revisions come from
``apt-cache madison`` at test time (`offered`). `FakeArchive` is a real flat
apt repository on disk, used through ``APT_CONFIG`` (apt's own switch), so the
code under test runs the real ``apt-cache`` and ``apt-get download`` against an
archive whose versions a test adds and withdraws.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.debs import make_deb, tar_xz


def _upstream_version(debian_version: str) -> str:
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def _newer(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b], check=False).returncode == 0


@functools.cache
def all_versions(package: str) -> tuple[str, ...]:
    """Every Debian version apt offers for ``package`` (read via madison)."""
    out = subprocess.run(["apt-cache", "madison", package], capture_output=True, text=True,
                         timeout=120, check=False).stdout
    found = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 2 and parts[0] == package:
            found.append(parts[1])
    return tuple(found)


def offered(package: str) -> dict[str, str]:
    """Upstream version -> newest Debian revision apt offers for ``package``."""
    best: dict[str, str] = {}
    for ver in all_versions(package):
        up = _upstream_version(ver)
        if up not in best or _newer(ver, best[up]):
            best[up] = ver
    return best


def sort_versions(vs: list[str]) -> list[str]:
    """Oldest first, by dpkg's ordering."""
    return sorted(vs, key=functools.cmp_to_key(
        lambda a, b: 1 if _newer(a, b) else (-1 if _newer(b, a) else 0)))


@dataclass
class FakeArchive:
    """A flat apt repository in ``root`` and an APT_CONFIG that sees only it."""

    root: Path
    packages: dict[tuple[str, str], Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for d in ("repo", "lists/partial", "cache/archives/partial", "etc/sources.list.d",
                  "etc/preferences.d", "etc/apt.conf.d"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "etc/sources.list").write_text(
            f"deb [trusted=yes] file:{self.root / 'repo'} ./\n")
        (self.root / "status").write_text("")
        self.config.write_text("\n".join([
            f'Dir::Etc "{self.root / "etc"}";',
            f'Dir::Etc::SourceList "{self.root / "etc/sources.list"}";',
            f'Dir::Etc::SourceParts "{self.root / "etc/sources.list.d"}";',
            f'Dir::Etc::Parts "{self.root / "etc/apt.conf.d"}";',
            f'Dir::Etc::PreferencesParts "{self.root / "etc/preferences.d"}";',
            f'Dir::State::Lists "{self.root / "lists"}";',
            f'Dir::State::status "{self.root / "status"}";',
            f'Dir::Cache "{self.root / "cache"}";',
            'APT::Sandbox::User "root";',
            'Acquire::Languages "none";',
            "",
        ]))

    @property
    def config(self) -> Path:
        return self.root / "apt.conf"

    def add_linux(self, package: str, version: str, files: dict[str, bytes]) -> None:
        """Publish ``package`` at Debian ``version`` holding a tarball of ``files``."""
        top = package
        tarball = tar_xz(dict(files), top)
        name = f"{package}_{version.replace(':', '%3a')}_all.deb"
        control = (f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
                   "Maintainer: test <t@example.org>\nDescription: fake\n").encode()
        deb = make_deb(self.root / "repo" / name, {f"usr/src/{package}.tar.xz": tarball}, control)
        self.packages[(package, version)] = deb
        self._index()

    def withdraw(self, package: str, version: str) -> None:
        """The archive stops offering ``package`` ``version``."""
        self.packages.pop((package, version)).unlink()
        self._index()

    def _index(self) -> None:
        stanzas = []
        for (pkg, ver), deb in sorted(self.packages.items()):
            data = deb.read_bytes()
            stanzas.append(
                f"Package: {pkg}\nVersion: {ver}\nArchitecture: all\n"
                f"Maintainer: test <t@example.org>\nFilename: ./{deb.name}\n"
                f"Size: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
                "Description: fake upstream tree\n")
        (self.root / "repo" / "Packages").write_text("\n".join(stanzas))
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True,
                       env=self.env(), timeout=120)

    def env(self) -> dict[str, str]:
        import os

        return {**os.environ, "APT_CONFIG": str(self.config)}
