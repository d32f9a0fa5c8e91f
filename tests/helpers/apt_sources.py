"""An /etc/apt of a test's own, and a flat Debian source repository on disk to fetch from.

`write_etc` lays out ``sources.list`` and ``sources.list.d/`` as a machine
would have them. `FakeSourceArchive` builds real source packages with
``dpkg-source -b`` and indexes them with ``dpkg-scansources``; listed as a
binary archive (``Types: deb``) in such an /etc/apt, it is what the derived
``deb-src`` configuration of `ukl_patchbot.upstream.debsrc` fetches from.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def write_etc(etc: Path, *, sources_list: str | None = None,
              parts: dict[str, str] | None = None) -> Path:
    """An apt configuration directory with these source files (nothing else)."""
    (etc / "sources.list.d").mkdir(parents=True, exist_ok=True)
    if sources_list is not None:
        (etc / "sources.list").write_text(sources_list)
    for name, text in (parts or {}).items():
        (etc / "sources.list.d" / name).write_text(text)
    return etc


class FakeSourceArchive:
    """A flat repository of native source packages under ``root/repo``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = root / "repo"
        self.repo.mkdir(parents=True, exist_ok=True)
        self._index()

    def deb822(self) -> str:
        """How a machine would list this repository: binary type only, trusted (no Release)."""
        return f"Types: deb\nURIs: file:{self.repo}\nSuites: ./\nTrusted: yes\n"

    def add(self, package: str, version: str, files: dict[str, str]) -> None:
        """Build source package ``package`` ``version`` (native, no revision) holding ``files``."""
        work = self.root / "work" / f"{package}-{version}"
        shutil.rmtree(work, ignore_errors=True)
        (work / "debian" / "source").mkdir(parents=True)
        for rel, text in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        (work / "debian" / "source" / "format").write_text("3.0 (native)\n")
        (work / "debian" / "control").write_text(
            f"Source: {package}\nMaintainer: Test <t@example.org>\n\n"
            f"Package: {package}\nArchitecture: all\nDescription: test package\n")
        (work / "debian" / "changelog").write_text(
            f"{package} ({version}) unstable; urgency=low\n\n  * test\n\n"
            " -- Test <t@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n")
        subprocess.run(["dpkg-source", "-b", work.name], cwd=work.parent, check=True,
                       capture_output=True, timeout=60)
        for f in work.parent.glob(f"{package}_{version}*"):
            shutil.move(f, self.repo / f.name)
        self._index()

    def files(self, package: str, version: str) -> list[Path]:
        return sorted(self.repo.glob(f"{package}_{version}*"))

    def remove_files(self, package: str, version: str) -> None:
        """The index keeps naming this version, but its files are gone."""
        for f in self.files(package, version):
            f.unlink()

    def tamper(self, package: str, version: str) -> None:
        """Change the tarball after indexing: its hash no longer matches the index."""
        tarball = next(f for f in self.files(package, version) if ".tar." in f.name)
        with open(tarball, "ab") as f:
            f.write(b"tampered")

    def _index(self) -> None:
        res = subprocess.run(["dpkg-scansources", "."], cwd=self.repo, check=True,
                             capture_output=True, text=True, timeout=60)
        (self.repo / "Sources").write_text(res.stdout)
