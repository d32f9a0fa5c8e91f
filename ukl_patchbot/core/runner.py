"""The one subprocess runner: every git, make, tar, qemu call goes through `run`.

Rules it enforces: argv is a list (never a shell string), the working
directory is passed as ``cwd=`` (never ``os.chdir``, which is process-wide and
wrong in threaded code), every call has a timeout, and output can be streamed
to a log file so a maintainer can read what happened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ukl_patchbot.core import cmdline
from ukl_patchbot.core import sandbox as sb
from ukl_patchbot.core.errors import CommandFailed, InfraError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 3600.0
TAIL_LINES = 20


@dataclass(frozen=True)
class CommandResult:
    """What one command did."""

    argv: tuple[str, ...]
    cwd: str | None
    returncode: int
    duration: float
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    log_path: str | None = None
    tail: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def reproduce(self) -> str:
        """A shell line that runs the same command again."""
        return cmdline.shell_line(self.argv, cwd=self.cwd)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    log_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    input: bytes | str | None = None,
    capture: bool = False,
    check: bool = False,
    on_line: Callable[[str], None] | None = None,
    stdout_file: IO[bytes] | None = None,
    stdin_file: IO[bytes] | int | None = None,
    sandbox: sb.Policy | bool | None = None,
) -> CommandResult:
    """Run one command.

    ``capture=True`` returns stdout/stderr as text (for small outputs such as
    ``git rev-parse``); otherwise output is streamed to ``log_path`` (if given)
    line by line, ``on_line`` sees each line (progress display), and the last
    lines are kept in ``tail``. ``stdout_file`` sends raw stdout to a binary
    file (for pipes such as ``git archive``), stderr then goes to the log.
    ``stdin_file`` feeds the command from a file or pipe descriptor (for
    streams such as ``git fast-import`` fed by a writer thread).
    ``check=True`` raises `CommandFailed` on a non-zero exit.
    ``sandbox``: a `~ukl_patchbot.core.sandbox.Policy` confines the command;
    None (the default) confines it when the process-wide policy covers ``cwd``
    (the build directories of a worker); False never confines it.
    """
    args = [os.fspath(a) for a in argv]
    cwd_s = os.fspath(cwd) if cwd is not None else None
    full_env = dict(os.environ if env is None else env)
    if extra_env:
        full_env.update(extra_env)
    shown = args  # results and reproducers name the command itself, not the sandbox around it
    policy = _policy_for(sandbox, cwd_s)
    if policy is not None:
        args, full_env = sb.wrap(args, os.environ if env is None else env, cwd_s, policy,
                                 extra=extra_env)
    log.debug("run: %s (cwd=%s)", shlex.join(args), cwd_s)
    start = time.monotonic()
    if isinstance(input, str):
        input = input.encode()
    try:
        if capture:
            res = _run_captured(args, cwd_s, timeout, full_env, input, stdin_file)
        else:
            res = _run_streamed(
                args, cwd_s, timeout, full_env, input, log_path, on_line, stdout_file, stdin_file
            )
    except FileNotFoundError as exc:
        raise InfraError(
            f"cannot run {args[0]!r}: not installed or not on PATH",
            hint="install the Debian package that provides it (see README)",
        ) from exc
    returncode, out, err, timed_out, tail = res
    result = CommandResult(
        argv=tuple(shown),
        cwd=cwd_s,
        returncode=returncode,
        duration=time.monotonic() - start,
        stdout=out,
        stderr=err,
        timed_out=timed_out,
        log_path=os.fspath(log_path) if log_path else None,
        tail=tuple(tail),
    )
    if check and not result.ok:
        detail = "\n".join(result.tail) or (err or out)[-2000:]
        if timed_out:
            detail = f"timed out after {timeout}s\n{detail}"
        raise CommandFailed(shown, returncode, result.log_path, detail.rstrip())
    return result


def _policy_for(sandbox: sb.Policy | bool | None, cwd: str | None) -> sb.Policy | None:
    if isinstance(sandbox, sb.Policy):
        return sandbox
    if sandbox is False:
        return None
    policy = sb.installed()
    return policy if policy is not None and policy.confines(cwd) else None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _stdin_for(input: bytes | None, stdin_file: IO[bytes] | int | None) -> IO[bytes] | int:
    if input is not None:
        return subprocess.PIPE
    return stdin_file if stdin_file is not None else subprocess.DEVNULL


def _run_captured(
    args: list[str],
    cwd: str | None,
    timeout: float | None,
    env: dict[str, str],
    input: bytes | None,
    stdin_file: IO[bytes] | int | None = None,
) -> tuple[int, str, str, bool, list[str]]:
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=_stdin_for(input, stdin_file),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        timed_out = True
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    text_err = err.decode(errors="replace")
    return (
        proc.returncode if not timed_out else -signal.SIGKILL,
        out.decode(errors="replace"),
        text_err,
        timed_out,
        text_err.splitlines()[-TAIL_LINES:],
    )


def _open_log(log_path: str | os.PathLike[str] | None, args: list[str]) -> IO[bytes] | None:
    """The command's log opened for appending, headed by the command line; None without one."""
    if log_path is None:
        return None
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    logf = open(log_path, "ab")  # noqa: SIM115 - the caller closes it when the command ends
    logf.write(f"$ {shlex.join(args)}\n".encode())
    logf.flush()
    return logf


def _pump(stream: IO[bytes], logf: IO[bytes] | None, tail: deque[str],
          on_line: Callable[[str], None] | None) -> None:
    """Copy the command's output to the log, the tail and ``on_line``, line by line."""
    for raw in stream:
        if logf is not None:
            logf.write(raw)
        line = raw.decode(errors="replace").rstrip("\n")
        tail.append(line)
        if on_line is not None:
            on_line(line)


def _run_streamed(
    args: list[str],
    cwd: str | None,
    timeout: float | None,
    env: dict[str, str],
    input: bytes | None,
    log_path: str | os.PathLike[str] | None,
    on_line: Callable[[str], None] | None,
    stdout_file: IO[bytes] | None,
    stdin_file: IO[bytes] | int | None = None,
) -> tuple[int, str, str, bool, list[str]]:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    logf = _open_log(log_path, args)
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=_stdin_for(input, stdin_file),
        stdout=stdout_file if stdout_file is not None else subprocess.PIPE,
        stderr=subprocess.PIPE if stdout_file is not None else subprocess.STDOUT,
        start_new_session=True,
    )
    timed_out = False
    timer: threading.Timer | None = None

    def on_timeout() -> None:
        nonlocal timed_out
        timed_out = True
        _kill_group(proc)

    if timeout is not None:
        timer = threading.Timer(timeout, on_timeout)
        timer.daemon = True
        timer.start()
    try:
        if input is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(input)
                proc.stdin.close()
        stream = proc.stderr if stdout_file is not None else proc.stdout
        assert stream is not None
        _pump(stream, logf, tail, on_line)
        proc.wait()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if logf is not None:
            if timed_out:
                logf.write(f"*** killed after timeout of {timeout}s\n".encode())
            logf.close()
    rc = proc.returncode if not timed_out else -signal.SIGKILL
    return rc, "", "", timed_out, list(tail)
