"""A content-keyed cache of directories (kernel images, glibc builds, finished checks).

An entry is a directory named by its key. It is filled in a private staging
directory and renamed into place only when complete, so a reader sees a whole
entry or none: a build killed halfway or a full disk leaves at worst a stale
staging directory, which the next run removes (`ContentCache.clean_stale`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_STAGING_PREFIX = ".staging-"
# A staging directory whose writer is gone is garbage; one younger than this
# may belong to a live writer in another process on a shared cache.
STALE_AFTER_S = 6 * 3600


def cache_key(kind: str, inputs: Mapping[str, object]) -> str:
    """A key for ``inputs`` (JSON-able values): same inputs, same key, any dict order."""
    blob = json.dumps({"kind": kind, "inputs": inputs}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


def hash_files(paths: Mapping[str, Path]) -> str:
    """One digest of several files' names and contents (e.g. the kconfig fragments)."""
    h = hashlib.sha256()
    for name in sorted(paths):
        h.update(name.encode() + b"\0")
        h.update(hash_file(paths[name]).encode() + b"\0")
    return h.hexdigest()


def hash_file(path: Path) -> str:
    """The SHA-256 of one file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_tree(root: Path) -> str:
    """A digest over every regular file under ``root`` (relative path and content)."""
    files = {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}
    return hash_files(files)


class ContentCache:
    """Directories keyed by content under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> Path | None:
        """The entry for ``key`` if a complete one exists."""
        p = self.path(key)
        return p if p.is_dir() else None

    @contextmanager
    def put(self, key: str) -> Iterator[Path]:
        """Yield an empty staging directory; on normal exit it becomes the entry for ``key``.

        On an exception (including KeyboardInterrupt or a full disk) the
        staging directory is removed and nothing is published. If another
        writer published the same key meanwhile, theirs is kept (same key,
        same content).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f"{_STAGING_PREFIX}{key}.{os.getpid()}.{time.monotonic_ns()}"
        staging.mkdir()
        try:
            yield staging
            try:
                os.rename(staging, self.path(key))
            except OSError:
                if not self.path(key).is_dir():
                    raise
                log.debug("cache entry %s appeared meanwhile; keeping the existing one", key)
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def store_files(self, key: str, files: Mapping[str, Path]) -> Path:
        """Copy ``files`` (name in the entry -> source path) into a new entry; return it."""
        with self.put(key) as stage:
            for name, src in files.items():
                dest = stage / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
        entry = self.get(key)
        assert entry is not None
        return entry

    def clean_stale(self, *, max_age_s: float = STALE_AFTER_S) -> list[Path]:
        """Remove staging directories left by killed writers. Returns what was removed."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        now = time.time()
        for p in self.root.iterdir():
            if not p.name.startswith(_STAGING_PREFIX):
                continue
            pid = _pid_of(p.name)
            dead = pid is not None and not process_alive(pid)
            if dead or now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed


def _pid_of(name: str) -> int | None:
    parts = name.rsplit(".", 2)
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Whether a build with this pid may still be writing (our own pid counts as alive)."""
    if pid == os.getpid():
        # Our own pid: a leftover from an earlier process that had the same pid
        # is indistinguishable; staging dirs of this process are in use.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
