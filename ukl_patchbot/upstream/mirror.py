"""The local upstream mirror: one bare git repository per component, one tag per version.

Two kinds of upstream fill it (``upstream =`` in patchbot.toml):

- ``debian:<package>``: every version apt offers, imported from the Debian
  source package (see `ukl_patchbot.upstream.debian`);
- a git URL (``https://``, ``git://``, ``file://``, a path): only the tags
  needed are fetched, shallow (``--depth 1``): the series' base tag, the
  newest tag of each tracked line, and any versions asked for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ukl_patchbot.core import versions
from ukl_patchbot.core.config import Component, Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.series import meta as series_meta
from ukl_patchbot.upstream import debian, gitops

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 3600.0


@dataclass(frozen=True)
class SyncResult:
    """What one `sync` did for one component."""

    component: str
    added: tuple[str, ...]  # tags new in the mirror (or moved to a newer Debian revision)
    present: tuple[str, ...]  # tags that were already there
    mirror: str


def _lock_path(cfg: Config, component: str) -> Path:
    return cfg.mirror_dir(component).with_suffix(".lock")


def series_base(comp: Component) -> str | None:
    """The base tag recorded in the series' ``patchset.toml``, if there is one."""
    return series_meta.recorded_base(comp.series_dir)


def _wanted(requested: list[str] | None, tag: str, prefix: str) -> bool:
    if requested is None:
        return True
    bare = tag[len(prefix):]
    return tag in requested or bare in requested


def sync(
    cfg: Config,
    component: str,
    *,
    versions: list[str] | None = None,
    log_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    needed_only: bool = False,
) -> SyncResult:
    """Bring the mirror of ``component`` up to date; safe to run concurrently (file lock).

    ``versions`` limits the work to those versions or tags (``6.1.192`` or
    ``v6.1.192``); None means all a Debian upstream offers, or the needed tags
    of a git upstream. ``needed_only`` limits a Debian upstream to the needed
    tags too (every line's series base and the newest tag of each tracked
    line): a Linux version costs ~150 MB and a minute or two to import.
    ``progress`` hears one line per version imported.
    """
    comp = cfg.component(component)
    mirror = cfg.mirror_dir(component)
    with gitops.locked(_lock_path(cfg, component)):
        gitops.ensure_mirror(mirror)
        if comp.is_debian:
            added, present = _sync_debian(cfg, comp, mirror, versions, log_dir, progress,
                                          needed_only)
        else:
            added, present = _sync_git(comp, mirror, versions, log_dir)
    return SyncResult(component, tuple(added), tuple(present), str(mirror))


def _sync_debian(
    cfg: Config, comp: Component, mirror: Path, requested: list[str] | None, log_dir: Path | None,
    progress: Callable[[str], None] | None = None,
    needed_only: bool = False,
) -> tuple[list[str], list[str]]:
    # Several packages may feed one mirror (linux-source-6.1 and -6.12): every tag in one place.
    every = [dv for pkg in comp.debian_packages for dv in debian.available(pkg, comp.tag_prefix)]
    if needed_only and requested is None:
        requested = needed_remote_tags(comp, [dv.tag for dv in every], None)
    offered = [dv for dv in every if _wanted(requested, dv.tag, comp.tag_prefix)]
    if requested is not None:
        missing = [r for r in requested
                   if not any(_wanted([r], dv.tag, comp.tag_prefix) for dv in offered)]
        if missing:
            raise UserError(
                f"{', '.join(comp.debian_packages)}: apt offers no version {', '.join(missing)}",
                hint=f"offered: {', '.join(d.tag for d in every)}",
            )
    added: list[str] = []
    present: list[str] = []
    for dv in offered:
        current = debian.parse_tag_message(gitops.tag_message(mirror, dv.tag)).get("revision")
        if current is not None and versions.compare_debian(current, dv.version) >= 0:
            present.append(dv.tag)
            continue
        log_path = log_dir / f"import-{dv.tag}.log" if log_dir else None
        if progress:
            progress(f"{comp.name}: importing {dv.tag} ({dv.package} {dv.version})")
        deb = debian.download(dv, cfg.cache_dir / "downloads", log_path=log_path)
        debian.import_version(mirror, deb, dv, log_path=log_path)
        added.append(dv.tag)
    return added, present


def _remote_tags(mirror: Path, url: str, prefix: str) -> list[str]:
    res = gitops.git(mirror, "ls-remote", "--tags", "--refs", url, timeout=600)
    tags = []
    for line in res.stdout.splitlines():
        ref = line.split("\t", 1)[-1]
        if ref.startswith("refs/tags/"):
            tags.append(ref[len("refs/tags/"):])
    return [t for t in tags if versions.tag_version(t, prefix) is not None]


def remote_tags(cfg: Config, component: str) -> list[str]:
    """Version tags a git upstream offers, newest first (``git ls-remote``; nothing fetched)."""
    comp = cfg.component(component)
    if comp.is_debian:
        raise UserError(f"{component}: the upstream is a Debian package, not a git remote")
    mirror = gitops.ensure_mirror(cfg.mirror_dir(component))
    return versions.sort_tags(_remote_tags(mirror, comp.upstream, comp.tag_prefix),
                              comp.tag_prefix)


def needed_remote_tags(comp: Component, remote: list[str], requested: list[str] | None) -> list[str]:
    """The tags worth fetching: the series base, the newest of each tracked line, requested ones."""
    if requested is not None:
        return [t for t in remote if _wanted(requested, t, comp.tag_prefix)]
    want = set()
    for d in comp.series_dirs():  # every line's base
        base = series_base(replace(comp, series_dir=d))
        if base in remote:
            want.add(base)
    for line in comp.tracked:
        in_line = [t for t in versions.sort_tags(remote, comp.tag_prefix)
                   if (v := versions.tag_version(t, comp.tag_prefix)) and v.in_line(line)
                   and v.stage >= 0]
        if in_line:
            want.add(in_line[0])
    return versions.sort_tags(want, comp.tag_prefix)


def _sync_git(
    comp: Component, mirror: Path, requested: list[str] | None, log_dir: Path | None
) -> tuple[list[str], list[str]]:
    remote = _remote_tags(mirror, comp.upstream, comp.tag_prefix)
    want = needed_remote_tags(comp, remote, requested)
    if requested is not None and len(want) < len(requested):
        raise UserError(
            f"{comp.upstream} has no tag for some of {', '.join(requested)}",
            hint="closest: " + ", ".join(versions.closest_tags(requested[0], remote, comp.tag_prefix)),
        )
    have = set(gitops.list_tags(mirror))
    fetch = [t for t in want if t not in have]
    if fetch:
        # Shallow: one commit per tag is all a rebase needs; history (for
        # `git log -L` in conflict reports) comes with --deepen by hand.
        gitops.git(
            mirror, "fetch", "--depth=1", "--no-tags", comp.upstream,
            *[f"+refs/tags/{t}:refs/tags/{t}" for t in fetch],
            timeout=FETCH_TIMEOUT,
            log_path=log_dir / f"fetch-{comp.name}.log" if log_dir else None,
        )
    return fetch, [t for t in want if t in have]


def list_tags(cfg: Config, component: str) -> list[str]:
    """Tags in the mirror of ``component``, newest version first."""
    comp = cfg.component(component)
    return versions.sort_tags(gitops.list_tags(cfg.mirror_dir(component)), comp.tag_prefix)


def check_tag_name(tag: str) -> None:
    """A UserError unless ``tag`` is a plain tag name (no option, path, ref or shell syntax)."""
    if not re.fullmatch(r"[A-Za-z0-9._+-]+", tag) or tag.startswith(("-", ".")):
        raise UserError(f"{tag!r} is not a valid tag name",
                        hint="give an upstream tag as the mirror lists it, e.g. v6.1.192")


def resolve_tag(cfg: Config, component: str, tag: str) -> str:
    """The commit ``tag`` names in the mirror; a UserError naming the closest tags otherwise."""
    comp = cfg.component(component)
    mirror = cfg.mirror_dir(component)
    check_tag_name(tag)
    sha = gitops.rev_parse(mirror, f"refs/tags/{tag}") if mirror.exists() else None
    if sha is not None:
        return sha
    known = gitops.list_tags(mirror)
    close = versions.closest_tags(tag, known, comp.tag_prefix)
    if close:
        hint = f"closest known tags: {', '.join(close)}; `patchbot upstream sync {component}` " \
               "fetches new ones"
    else:
        hint = f"the {component} mirror has no tags yet: run `patchbot upstream sync {component}`"
    raise UserError(f"unknown {component} tag {tag!r}", hint=hint)
