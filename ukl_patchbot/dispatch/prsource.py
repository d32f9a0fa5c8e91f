"""A pull request's patch series and kconfig fragments, as a checkout the pipeline can use.

PR content is untrusted: only files under ``patchsets/<component>/`` and
``kconfigs/`` are read (through the REST API, never by cloning or running
anything from the PR), every path and name is checked, and the result is
written to a fresh directory in the bot's cache. `pr_config` returns the
bot's own `Config` with ``root`` and each component's ``series_dir`` pointing
there, so the pipeline builds the PR's series with the bot's own code, probe
and ``patchbot.toml``.

Checks before anything is built:

* every path relative, without ``..``, ``.git`` or odd characters, and exactly
  one level below ``patchsets/<component>/`` or ``kconfigs/``;
* every series loads (`ukl_patchbot.series.patchset.load_series`), which refuses a
  patch whose diff paths leave the tree (``+++ b/../../etc/passwd``);
* kconfig fragments hold only ``CONFIG_X=value`` and comment lines, and no
  string value that could name a host file or expand in make (``/``, ``$``).

Any violation is a `UserError` naming the path, so the job's outcome says
what to fix.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Protocol

from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.paths import path_problem
from ukl_patchbot.series import patchset as series

log = logging.getLogger(__name__)

KCONFIG_DIR = "kconfigs"
# One path segment: what patch files, `series`, `patchset.toml` and fragments are called.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
_REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
_SHA = re.compile(r"[0-9a-f]{40}")
_KCONFIG_LINE = re.compile(
    r"CONFIG_[A-Za-z0-9_]+=(?:[ynm]|-?[0-9]+|0x[0-9A-Fa-f]+|\"[^\"\\$`/~]*\")"
    r"|# CONFIG_[A-Za-z0-9_]+ is not set|#.*|"
)
KEEP_DAYS = 7.0  # PR trees older than this are removed when a new one is written


class TreeReader(Protocol):
    """What is needed of GitHub (`ukl_patchbot.github.client.GitHubClient.read_tree_files`)."""

    def read_tree_files(
        self, repo: str, sha: str, prefixes: tuple[str, ...]
    ) -> dict[str, bytes]: ...


_reader: TreeReader | None = None
_reader_lock = threading.Lock()


def use_github(reader: TreeReader | None) -> None:
    """Read PR files with ``reader`` (the worker's GitHub client) from now on.

    `patchbot worker` calls this, because it removes the credentials from the
    environment once read; without it, `pr_config` builds a client from the
    environment (``ukl_patchbot.github.client.Credentials.from_env``).
    """
    global _reader
    with _reader_lock:
        _reader = reader


def _default_reader() -> TreeReader:
    with _reader_lock:
        if _reader is not None:
            return _reader
    from ukl_patchbot.github.client import Credentials, GitHubClient

    try:
        creds = Credentials.from_env()
    except UserError as exc:
        # A deployment problem, not the PR's: retried and reported as an infrastructure error.
        raise InfraError(
            f"cannot read the pull request's files: {exc.message}", hint=exc.hint
        ) from None
    # PATCHBOT_GITHUB_PACE=0 drops PyGithub's spacing of requests, as for the worker's client.
    return GitHubClient(creds, pace=os.environ.get("PATCHBOT_GITHUB_PACE", "1") != "0")


def series_dirs(cfg: Config) -> dict[str, tuple[str, ...]]:
    """Component name → its series directories relative to the checkout (one per line)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, comp in cfg.components.items():
        rel = []
        for d in comp.series_dirs():
            if not d.is_relative_to(cfg.root):
                raise InfraError(
                    f"{name}: series directory {d} is outside {cfg.root}",
                    hint="pull requests can only be checked with series in the checkout",
                )
            rel.append(d.relative_to(cfg.root).as_posix())
        out[name] = tuple(rel)
    return out


def check_pr_path(path: str, allowed_dirs: tuple[str, ...]) -> str:
    """``path`` if it is a plain file name directly in one of ``allowed_dirs``; else UserError."""
    shown = repr(path[:200])
    if (problem := path_problem(path)) is not None:
        raise UserError(f"pull request path {shown} {problem}")
    parts = PurePosixPath(path).parts
    parent, name = "/".join(parts[:-1]), parts[-1]
    if "/".join(parts) != path or parent not in allowed_dirs:
        raise UserError(
            f"pull request path {shown} is outside " + ", ".join(f"{d}/" for d in allowed_dirs),
            hint="patchbot reads only patch series and kconfig fragments, without subdirectories",
        )
    if not _NAME.fullmatch(name):
        raise UserError(
            f"pull request path {shown}: unusual file name",
            hint="use letters, digits and . _ + - (not leading), at most 200",
        )
    return path


def check_kconfig(path: str, data: bytes) -> None:
    """Refuse a fragment with anything but plain option lines and comments."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    for lno, line in enumerate(text.splitlines(), 1):
        if not _KCONFIG_LINE.fullmatch(line.strip()):
            raise UserError(
                f"{path}:{lno}: not a plain kconfig line: {line[:80]!r}",
                hint='fragments hold CONFIG_X=y|n|m|number|"string" and comments;'
                " string values may not contain / $ ` ~ \\ (host paths, make)",
            )


def _write(files: dict[str, bytes], dest: Path) -> None:
    """Write ``files`` under a temporary directory, then rename it to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            # Exclusive creation: a name given twice never overwrites, nothing follows a link.
            with open(target, "xb") as f:
                f.write(data)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():
                raise
            # Another job wrote the same commit first; its copy is identical.
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _listing(root: Path) -> list[str]:
    """Every file below ``root`` as a relative posix path; a symlink or special file is refused."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink() or not (p.is_dir() or p.is_file()):
            raise UserError(f"{rel}: not a plain file")
        if p.is_file():
            out.append(rel)
    return out


def _prune(parent: Path, keep: Path) -> None:
    """Remove PR trees not used for `KEEP_DAYS` (best effort; they are only caches)."""
    cutoff = time.time() - KEEP_DAYS * 86400
    for d in parent.glob("*/*/*"):
        try:
            if d != keep and d.is_dir() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d)
        except OSError as exc:
            log.warning("could not prune %s: %s", d, exc)


def pr_config(cfg: Config, repo: str, sha: str, *, reader: TreeReader | None = None) -> Config:
    """``cfg`` with the series and kconfig fragments of ``repo`` at commit ``sha``.

    The files are read once per commit into ``<cache>/pr-trees/<owner>/<name>/<sha>``
    (a commit's content never changes); the paths and every series are checked
    each time, before the caller builds anything.
    """
    if not _REPO.fullmatch(repo) or any(p in (".", "..") for p in repo.split("/")):
        raise UserError(f"unusual repository name {repo[:200]!r}")
    if not _SHA.fullmatch(sha):
        raise UserError(f"unusual commit id {sha[:80]!r}")
    dirs = series_dirs(cfg)
    allowed = (*(d for ds in dirs.values() for d in ds), KCONFIG_DIR)
    for d in allowed:  # the bot's own config must fit the rules it applies to PRs
        for part in d.split("/"):
            if not _NAME.fullmatch(part):
                raise InfraError(f"series directory {d!r} cannot be matched against PR paths")
    owner, name = repo.split("/", 1)
    dest = cfg.cache_dir / "pr-trees" / owner / name / sha
    if not dest.is_dir():
        files = (reader or _default_reader()).read_tree_files(
            repo, sha, tuple(f"{d}/" for d in allowed)
        )
        for path, data in files.items():
            check_pr_path(path, allowed)
            if path.startswith(f"{KCONFIG_DIR}/"):
                check_kconfig(path, data)
        _write(files, dest)
        _prune(cfg.cache_dir / "pr-trees", dest)
        log.info("%s@%s: %d series and kconfig files read", repo, sha[:12], len(files))
    os.utime(dest)  # in use: not pruned
    for path in _listing(dest):
        check_pr_path(path, allowed)
        if path.startswith(f"{KCONFIG_DIR}/"):
            check_kconfig(path, (dest / path).read_bytes())
    comps = {n: c.rerooted(cfg.root, dest) for n, c in cfg.components.items()}
    for n, c in comps.items():
        for sdir in c.series_dirs():
            if sdir.is_dir():
                series.load_series(sdir, n)  # refuses diff paths that leave the tree
    return replace(cfg, root=dest, components=comps)
