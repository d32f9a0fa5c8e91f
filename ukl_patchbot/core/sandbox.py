"""The sandbox for commands that run untrusted content (bubblewrap).

A pull request's patch series changes the kernel's and glibc's makefiles, so
building it runs code the bot's operator never read. This module owns the
sandbox tool, ``bwrap``: `wrap` turns one command into a bubblewrap command
that

- has its own user, pid, ipc, uts, cgroup and network namespaces
  (``--unshare-all``: no network at all, not even the host's loopback; no
  view of the worker's processes, so ``/proc/<ppid>/environ`` is not there);
- starts from an empty environment (``--clearenv``) plus an allow-list
  (`ALLOWED_ENV`) and the variables the caller passes explicitly;
- sees the system read-only, with ``/home``, ``/root``, ``/tmp``,
  ``/var/tmp``, ``/run`` and ``/mnt`` replaced by empty tmpfs, the secret
  files and any `Policy.hidden` path masked, the `Policy.read_only` trees
  bound back read-only and only the `Policy.writable` trees writable;
- runs in a new session (``--new-session``: no terminal injection) and dies
  with the worker (``--die-with-parent``); address space and file size are
  capped with ``prlimit`` (util-linux).

`install` sets the process-wide policy (the worker does, at start);
`ukl_patchbot.core.runner.run` then confines every command whose working
directory lies in a writable tree of the policy (the build directories), so
the build modules need no change. Git and the bot's own bookkeeping run
with other working directories and are not confined.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ukl_patchbot.core.errors import InfraError

BWRAP = "bwrap"
PRLIMIT = "prlimit"
# Environment variables a build may see from the worker's environment. Anything
# else (credentials, queue URLs, tokens of other tools) is dropped.
ALLOWED_ENV = frozenset({"PATH", "LANG", "LC_ALL", "LC_CTYPE", "LANGUAGE", "TZ", "TERM",
                         "SOURCE_DATE_EPOCH"})
# Replaced by an empty tmpfs: where the worker's user keeps its files and secrets.
MASKED_DIRS = ("/home", "/root", "/tmp", "/var/tmp", "/run", "/mnt", "/media", "/srv")
SANDBOX_HOME = "/tmp/home"


@dataclass(frozen=True)
class Policy:
    """What a confined command may touch."""

    writable: tuple[Path, ...]  # the build and output trees
    read_only: tuple[Path, ...] = ()  # e.g. the checkout with kconfig fragments, the PR's files
    hidden: tuple[Path, ...] = ()  # files or directories masked even where the system is visible
    memory_bytes: int | None = 8 * 1024**3  # address space per process
    file_bytes: int | None = 16 * 1024**3  # largest file a process may write
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def confines(self, cwd: str | os.PathLike[str] | None) -> bool:
        """True when a command run in ``cwd`` works on untrusted content."""
        if cwd is None:
            return False
        p = Path(os.path.abspath(cwd))
        return any(p == w or p.is_relative_to(w) for w in self._abs(self.writable))

    @staticmethod
    def _abs(paths: Iterable[Path]) -> list[Path]:
        return [Path(os.path.abspath(p)) for p in paths]


_lock = threading.Lock()
_installed: Policy | None = None
_hidden_extra: set[str] = set()


def install(policy: Policy | None) -> None:
    """Make ``policy`` the process-wide sandbox (None removes it)."""
    global _installed
    with _lock:
        _installed = policy


def installed() -> Policy | None:
    with _lock:
        return _installed


def hide(path: str | os.PathLike[str]) -> None:
    """Mask ``path`` in every sandbox (the secrets module registers the files it read)."""
    with _lock:
        _hidden_extra.add(os.path.abspath(path))


def available() -> bool:
    return shutil.which(BWRAP) is not None


def allowed_env(env: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a confined command gets: the allow-list of ``env``, then ``extra``."""
    out = {k: v for k, v in env.items() if k in ALLOWED_ENV}
    out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    out["HOME"] = SANDBOX_HOME
    out.update(extra or {})
    return out


def wrap(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    policy: Policy,
    extra: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(argv, env) that run ``argv`` confined by ``policy``.

    The command sees the allow-listed part of ``env`` plus ``extra`` (variables the
    caller sets on purpose, e.g. ``CCACHE_DIR``) plus `Policy.extra_env`.
    """
    child_env = allowed_env(env, {**policy.extra_env, **(extra or {})})
    out: list[str] = [BWRAP, "--unshare-all", "--die-with-parent", "--new-session",
                      "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for d in MASKED_DIRS:
        if os.path.isdir(d) and not os.path.islink(d):
            out += ["--tmpfs", d]
    out += ["--dir", SANDBOX_HOME]
    for p in Policy._abs(policy.read_only):
        if p.exists():
            out += ["--ro-bind", str(p), str(p)]
    for p in Policy._abs(policy.writable):
        p.mkdir(parents=True, exist_ok=True)
        out += ["--bind", str(p), str(p)]
    with _lock:
        hidden = sorted({*map(str, Policy._abs(policy.hidden)), *_hidden_extra})
    for h in hidden:
        if os.path.isdir(h):
            out += ["--tmpfs", h]
        elif os.path.lexists(h):
            out += ["--ro-bind", "/dev/null", h]
    out.append("--clearenv")
    for k, v in sorted(child_env.items()):
        out += ["--setenv", k, v]
    if cwd is not None:
        out += ["--chdir", os.path.abspath(cwd)]
    out.append("--")
    limits = []
    if policy.memory_bytes:
        limits.append(f"--as={policy.memory_bytes}")
    if policy.file_bytes:
        limits.append(f"--fsize={policy.file_bytes}")
    if limits:
        out += [PRLIMIT, *limits, "--"]
    out += list(argv)
    # bwrap itself gets only the allowed environment too: its own /proc/<pid>/environ
    # is readable by the processes it starts.
    return out, child_env


def probe(policy: Policy, timeout: float = 30) -> str | None:
    """None when ``policy`` can confine a command on this machine, else why not."""
    if not available():
        return f"{BWRAP} is not installed (Debian package bubblewrap)"
    from ukl_patchbot.core import runner  # the runner imports this module

    cwd = Policy._abs(policy.writable)[0] if policy.writable else None
    if cwd is not None:
        cwd.mkdir(parents=True, exist_ok=True)
    try:
        res = runner.run(["true"], cwd=cwd, capture=True, timeout=timeout,
                         sandbox=policy)
    except InfraError as exc:
        return f"{BWRAP} did not start: {exc}"
    if not res.ok:
        return f"{BWRAP} failed: {res.stderr.strip()[-500:]}"
    return None


def require(policy: Policy) -> None:
    """Raise `InfraError` when ``policy`` cannot confine commands here."""
    why = probe(policy)
    if why is not None:
        raise InfraError(
            f"the build sandbox does not work: {why}",
            hint="install bubblewrap and allow unprivileged user namespaces"
            " (sysctl kernel.unprivileged_userns_clone=1), or set sandbox = \"none\" under [bot]"
            " in patchbot.toml to build pull requests without it (not on a public repository)",
        )
