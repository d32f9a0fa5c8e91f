"""A small rebase world: an upstream v1.0 -> v1.1, its mirror, and a checkout holding a
series made on v1.0 (for the rebase engine's tests and the tests of what reads its reports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.helpers.gitrepo import git
from tests.helpers.smallrepo import BASE, commit_files
from ukl_patchbot.core.config import Component, Config
from ukl_patchbot.rebase import engine as rebase
from ukl_patchbot.upstream import gitops


@dataclass
class World:
    """What `build_world` made; ``rebase(tag)`` runs the engine on it."""

    cfg: Config
    upstream: Path
    series_dir: Path
    checkout: Path

    def rebase(self, tag: str, **kw: object) -> rebase.RebaseReport:
        return rebase.rebase_series(self.cfg, "linux", tag, **kw)  # type: ignore[arg-type]


def upstream_and_clone(tmp_path: Path) -> tuple[Path, Path]:
    """An upstream repository at v1.0 (``BASE``) and a developer's clone of it."""
    up = tmp_path / "upstream"
    up.mkdir()
    git(up, "init", "-q")
    commit_files(up, BASE, "base", "v1.0")
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(up), str(dev))
    return up, dev


def build_world(tmp_path: Path, patches: list[tuple[str, dict[str, str]]],
                upstream_change: dict[str, str]) -> World:
    """Upstream v1.0 -> v1.1 (``upstream_change``); a series made on v1.0 from ``patches``."""
    up, dev = upstream_and_clone(tmp_path)
    files = dict(BASE)
    for subject, change in patches:
        files.update(change)
        commit_files(dev, change, f"{subject}\n\nWhy it matters.\n\nSigned-off-by: Dev <d@example.org>")
    upfiles = dict(BASE)
    upfiles.update(upstream_change)
    commit_files(up, upstream_change, "upstream change", "v1.1")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    git(checkout, "init", "-q")
    sdir = checkout / "patchsets" / "linux"
    sdir.mkdir(parents=True)
    names = git(dev, "format-patch", "-o", str(sdir), "v1.0..HEAD").splitlines()
    (sdir / "series").write_text("# UKL series\n" + "".join(Path(n).name + "\n" for n in names))
    (sdir / "patchset.toml").write_text('# verified base\nbase = "v1.0"\n')
    (checkout / "patchbot.toml").write_text("")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "series")
    cache = tmp_path / "cache"
    mirror = gitops.ensure_mirror(cache / "mirrors" / "linux.git")
    git(mirror, "fetch", "-q", str(up), "refs/tags/*:refs/tags/*")
    comp = Component("linux", f"file://{up}", "v", sdir, ("1",))
    cfg = Config(root=checkout, cache_dir=cache, components={"linux": comp})
    return World(cfg, up, sdir, checkout)
