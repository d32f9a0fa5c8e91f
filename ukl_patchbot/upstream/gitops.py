"""Git plumbing for mirrors and throwaway worktrees.

This is the one module that talks to git. Commands run through
`ukl_patchbot.core.runner.run`, so every call has a timeout, a log and a
reproducible command line; bulk reads of objects use one ``git cat-file
--batch`` process (see `ukl_patchbot.rebase.fastpath.read_files`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.runner import CommandResult, run

log = logging.getLogger(__name__)

GIT_TIMEOUT = 600.0
# Identity for commits the bot makes (imports, applied series, track branches).
BOT_NAME = "ukl-patchbot"
BOT_EMAIL = "patchbot@localhost"


def bot_identity(roles: tuple[str, ...] = ("COMMITTER",), *, name: str = BOT_NAME,
                 keep_environment: bool = True) -> dict[str, str]:
    """``GIT_<ROLE>_NAME``/``_EMAIL`` naming the bot, for each of ``roles`` (AUTHOR, COMMITTER).

    With ``keep_environment`` a variable the environment already sets is left
    out, so a user's own identity wins; without it the bot's is forced (for
    commits that must come out the same on every machine).
    """
    env = {}
    for role in roles:
        for part, value in (("NAME", name), ("EMAIL", BOT_EMAIL)):
            key = f"GIT_{role}_{part}"
            if not (keep_environment and key in os.environ):
                env[key] = value
    return env


def committer() -> tuple[str, str]:
    """(name, email) of the committer: the environment's, else the bot's."""
    ident = bot_identity(keep_environment=False)
    return (os.environ.get("GIT_COMMITTER_NAME", ident["GIT_COMMITTER_NAME"]),
            os.environ.get("GIT_COMMITTER_EMAIL", ident["GIT_COMMITTER_EMAIL"]))


def git(
    repo: Path,
    *args: str,
    check: bool = True,
    timeout: float = GIT_TIMEOUT,
    input: bytes | str | None = None,
    extra_env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> CommandResult:
    """Run ``git -C repo args...`` capturing output (or logging it when ``log_path`` is set)."""
    env = bot_identity() | dict(extra_env or {})
    return run(
        ["git", "-C", str(repo), *args],
        timeout=timeout,
        capture=log_path is None,
        log_path=log_path,
        check=check,
        input=input,
        extra_env=env,
    )


def out(repo: Path, *args: str, timeout: float = GIT_TIMEOUT) -> str:
    """stdout of a git command that must succeed, stripped."""
    return git(repo, *args, timeout=timeout).stdout.strip()


def rev_parse(repo: Path, rev: str) -> str | None:
    """The commit ``rev`` names in ``repo``, or None if it names none."""
    res = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return res.stdout.strip() or None if res.ok else None


def list_tags(repo: Path) -> list[str]:
    """All tag names in ``repo`` (unsorted)."""
    if not repo.exists():
        return []
    text = out(repo, "for-each-ref", "--format=%(refname:strip=2)", "refs/tags")
    return [t for t in text.splitlines() if t]


def tag_message(repo: Path, tag: str) -> str:
    """The message of an annotated tag ('' for a lightweight one)."""
    res = git(repo, "for-each-ref", "--format=%(contents)", f"refs/tags/{tag}", check=False)
    return res.stdout.strip()


def update_ref(repo: Path, ref: str, sha: str) -> None:
    git(repo, "update-ref", ref, sha)


# --- mirrors ----------------------------------------------------------------------------


def ensure_mirror(path: Path) -> Path:
    """Create the bare mirror at ``path`` if needed and set it up for linked worktrees.

    ``extensions.worktreeConfig`` lets each throwaway worktree carry its own
    sparse-checkout setting without touching the shared config (which would
    race between concurrent runs); ``core.bare`` must then move to the main
    worktree's own config. Automatic gc is off: a gc on a 2 GB mirror in the
    middle of a rebase would take minutes.
    """
    if not (path / "HEAD").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the mirror is shared by our runs
        try:
            git(tmp, "init", "-q", "--bare")
            git(tmp, "config", "gc.auto", "0")
            git(tmp, "config", "extensions.worktreeConfig", "true")
            git(tmp, "config", "--unset", "core.bare")
            git(tmp, "config", "--worktree", "core.bare", "true")
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (path / "HEAD").exists():
                raise
    return path


@contextlib.contextmanager
def locked(lock_path: Path, *, timeout: float = 3600.0, shared: bool = False) -> Iterator[None]:
    """Hold an advisory file lock (flock) on ``lock_path`` for the block.

    Used around mirror updates so concurrent runs (worker, CLI, test sessions)
    never import into the same mirror at once. Waits at most ``timeout`` s.
    """
    import time

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InfraError(
                        f"timed out after {timeout:.0f}s waiting for lock {lock_path}",
                        hint="another patchbot run holds it; wait or check for a hung process",
                    ) from None
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


def fast_import(
    repo: Path,
    feed: Callable[[IO[bytes]], None],
    *,
    log_path: Path | None,
    timeout: float,
    extra_args: list[str] | None = None,
) -> None:
    """Run ``git fast-import`` in ``repo``, its input written by ``feed`` as it goes.

    fast-import runs in a thread (through the runner) reading a pipe; ``feed``
    runs here and writes the stream, so decompression and hashing use both cores
    and nothing is unpacked to disk.
    """
    rfd, wfd = os.pipe()
    result: list[CommandResult] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            with os.fdopen(rfd, "rb") as rf:
                # A low compression level: fast-import is the bottleneck, and the
                # mirror lives on local disk where size matters less than time.
                result.append(
                    run(
                        ["git", "-C", str(repo), "-c", "pack.compression=1", "fast-import",
                         "--quiet", "--done", "--force", *(extra_args or [])],
                        stdin_file=rf,
                        log_path=log_path,
                        timeout=timeout,
                    )
                )
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=consume, name="fast-import", daemon=True)
    thread.start()
    try:
        with os.fdopen(wfd, "wb", buffering=1 << 20) as wf:
            feed(wf)
            wf.write(b"done\n")
    except BrokenPipeError:
        pass  # fast-import died: its exit status below says why
    finally:
        thread.join(timeout)
    if errors:
        raise errors[0]
    if not result or not result[0].ok:
        tail = "\n".join(result[0].tail) if result else "no result"
        raise InfraError(
            f"git fast-import into {repo} failed:\n{tail}",
            hint=f"full log: {log_path}" if log_path else None,
        )


# --- worktrees --------------------------------------------------------------------------


def _escape_sparse(path: str) -> str:
    """A non-cone sparse-checkout pattern matching exactly ``path``."""
    special = "\\*?[]!#"
    return "/" + "".join("\\" + c if c in special else c for c in path)


def prune_worktrees(mirror: Path, work_root: Path) -> list[Path]:
    """Remove throwaway worktrees left by interrupted runs; returns what was removed.

    A worktree in use holds a flock on its ``.lock`` file; one kept for a
    maintainer has a ``.keep`` file. Everything else under ``work_root`` whose
    lock can be taken is stale.
    """
    removed: list[Path] = []
    if work_root.is_dir():
        for lock in sorted(work_root.glob("*.lock")):
            wt = lock.with_suffix("")
            if wt.with_suffix(".keep").exists():
                continue
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # in use by a live run
            try:
                shutil.rmtree(wt, ignore_errors=True)
                lock.unlink(missing_ok=True)
                removed.append(wt)
            finally:
                os.close(fd)
    if mirror.exists():
        git(mirror, "worktree", "prune", check=False)
    for wt in removed:
        log.info("removed stale worktree %s", wt)
    return removed


@contextlib.contextmanager
def temp_worktree(
    mirror: Path,
    commitish: str,
    *,
    sparse_paths: list[str] | None = None,
    work_root: Path | None = None,
    keep: bool | Callable[[], bool] = False,
    name: str = "wt",
) -> Iterator[Path]:
    """A detached throwaway worktree of ``mirror`` at ``commitish``, removed afterwards.

    ``sparse_paths`` checks out only those files (the series touches a few
    dozen of the kernel's 80,000), which makes creating the worktree take
    well under a second. ``keep`` (or a callable deciding at exit) leaves the
    worktree for a maintainer. Stale worktrees of interrupted runs are pruned
    on entry.
    """
    work_root = work_root or mirror.parent / "worktrees"
    work_root.mkdir(parents=True, exist_ok=True)
    prune_worktrees(mirror, work_root)
    wt = work_root / f"{name}-{uuid.uuid4().hex[:8]}"
    lock = wt.with_suffix(".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    kept = False
    try:
        git(mirror, "worktree", "add", "--detach", "--no-checkout", str(wt), commitish)
        if sparse_paths is not None:
            git(wt, "config", "--worktree", "core.sparseCheckout", "true")
            git(wt, "config", "--worktree", "core.sparseCheckoutCone", "false")
            # info/ itself is shared by all worktrees; info/sparse-checkout is per worktree.
            spec = Path(out(wt, "rev-parse", "--git-path", "info/sparse-checkout"))
            spec = spec if spec.is_absolute() else wt / spec
            spec.parent.mkdir(parents=True, exist_ok=True)
            patterns = sorted({_escape_sparse(p) for p in sparse_paths}) or ["!/*"]
            spec.write_text("\n".join(patterns) + "\n")
        git(wt, "read-tree", "-mu", "HEAD")
        yield wt
        kept = keep() if callable(keep) else keep
    finally:
        if kept:
            wt.with_suffix(".keep").touch()
        else:
            git(mirror, "worktree", "remove", "--force", str(wt), check=False)
            shutil.rmtree(wt, ignore_errors=True)
            git(mirror, "worktree", "prune", check=False)
        os.close(fd)
        if not kept:
            lock.unlink(missing_ok=True)


def export_tree(mirror: Path, commitish: str, dest: Path) -> Path:
    """Write the tree of ``commitish`` into ``dest`` (a new or empty directory) for building.

    Uses a private index file, so it needs no worktree registration and leaves
    nothing behind in the mirror.
    """
    if dest.exists() and any(dest.iterdir()):
        raise UserError(f"{dest} is not empty", hint="export into a new directory")
    sha = rev_parse(mirror, commitish)
    if sha is None:
        raise UserError(f"{commitish!r} is not a commit in {mirror}")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="patchbot-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(mirror, "read-tree", sha, extra_env=env)
        # Parallel checkout: a Linux tree has 80,000 files.
        git(mirror, f"--work-tree={dest}", "-c", "checkout.workers=2", "checkout-index", "-a",
            extra_env=env)
    return dest


def is_dirty(repo: Path, pathspec: str) -> list[str]:
    """Uncommitted changes (incl. untracked files) under ``pathspec``; [] if clean or no repo."""
    res = git(repo, "status", "--porcelain", "--untracked-files=all", "--", pathspec,
              check=False)
    if not res.ok:
        return []  # not a git checkout: nothing to protect against
    return [line for line in res.stdout.splitlines() if line.strip()]
