"""Secrets: read from the environment or a file it names, kept out of logs and child processes.

A secret ``NAME`` comes from ``$NAME`` or, if that is unset, from the file
named by ``$NAME_FILE`` (the usual way to hand secrets to containers). A
secret shorter than `MIN_LENGTH` or made of whitespace is refused.

Removing a variable from ``os.environ`` does not change
``/proc/<pid>/environ``, which shows the environment the process was started
with to every process of the same user. So `isolate` (called first thing by
`patchbot serve` and `patchbot worker`) reads the secrets, then re-executes
the same command with an environment that holds neither the secrets nor the
``_FILE`` pointers; the values travel through an inherited pipe that the new
process reads once and closes. Children never inherit them.
`RedactingFilter` replaces every known secret value in log records, as a
second line of defence against a careless log call; secret files are masked
in the build sandbox (`ukl_patchbot.core.sandbox.hide`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from ukl_patchbot.core import sandbox
from ukl_patchbot.core.errors import InfraError, UserError

SECRET_VARS = (
    "PATCHBOT_WEBHOOK_SECRET",
    "PATCHBOT_GITHUB_TOKEN",
    "PATCHBOT_GITHUB_APP_PRIVATE_KEY",
)
REDACTED = "[redacted]"
MIN_LENGTH = 16
FD_VAR = "PATCHBOT_SECRETS_FD"  # the pipe `isolate` hands to the re-executed process
_MAX_PAYLOAD = 60 * 1024  # below a pipe's buffer, so writing never blocks before exec

_known: set[str] = set()
_known_lock = threading.Lock()
_provided: dict[str, str] = {}  # secrets handed over by `isolate`, by variable name
_files: set[str] = set()  # files secrets were read from


def read_secret(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Secret ``name`` from ``$name`` or the file ``$name_FILE``; None if neither is set.

    Raises `UserError` for a secret that is too short, whitespace only, or a file
    that cannot be read. In a process started by `isolate`, the secrets it was
    handed come first.
    """
    if (env is None or env is os.environ) and name in _provided:
        return _provided[name]
    env = os.environ if env is None else env
    value = env.get(name)
    source = f"${name}"
    if value is None or value == "":
        path = env.get(f"{name}_FILE")
        if path:
            source = f"{name}_FILE={path}"
            try:
                value = Path(path).read_text().strip()
            except OSError as exc:
                raise UserError(
                    f"cannot read {name}_FILE={path}: {exc.strerror}",
                    hint=f"point {name}_FILE at a readable file, or set {name}",
                ) from None
            if not value:
                raise UserError(f"{name}_FILE={path} is empty")
            _files.add(os.path.abspath(path))
            sandbox.hide(path)
    if value is None or value == "":
        return None
    if not value.strip() or len(value.strip()) < MIN_LENGTH:
        raise UserError(
            f"the secret in {source} is too weak: {len(value.strip())} characters"
            f" (at least {MIN_LENGTH}, not only whitespace)",
            hint=f"generate one, e.g. `openssl rand -hex 32`, and set it in {name} or a file"
            f" named by {name}_FILE",
        )
    remember(value)
    return value


def remember(value: str) -> None:
    """Register ``value`` so `RedactingFilter` hides it (and each longer line of it) from logs.

    The whole value is always registered, whatever its length; of a multi-line
    value (a PEM key) only lines of 8 characters or more, since fragments such
    as "-----" would redact half of every log line.
    """
    with _known_lock:
        if value.strip():
            _known.add(value)
            _known.add(value.strip())
        for part in value.splitlines():
            part = part.strip()
            if len(part) >= 8:
                _known.add(part)


def redact(text: str) -> str:
    """``text`` with every remembered secret replaced."""
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _pointer_vars() -> list[str]:
    return [n for name in SECRET_VARS for n in (name, f"{name}_FILE")]


def isolate(argv: list[str] | None = None) -> None:
    """Make sure no secret is in this process's start environment; re-exec when one is.

    First call in a process that holds secrets in its environment: read them all
    (raising `UserError` for a bad one), then replace the process by the same
    command (``sys.orig_argv``) with the secret variables and their ``_FILE``
    pointers removed, handing the values over through an inherited pipe. In the
    re-executed process (or when there is nothing to hide) it only loads what it
    was handed and returns.
    """
    fd = os.environ.pop(FD_VAR, None)
    if fd is not None:
        _receive(int(fd))
        scrub_environment()
        return
    if not any(os.environ.get(n) for n in _pointer_vars()):
        return
    values = {}
    for name in SECRET_VARS:
        value = read_secret(name)
        if value is not None:
            values[name] = value
    data = json.dumps({"values": values, "files": sorted(_files)}).encode()
    if len(data) > _MAX_PAYLOAD:
        raise UserError(f"secrets of {len(data)} bytes are larger than {_MAX_PAYLOAD}")
    env = {k: v for k, v in os.environ.items() if k not in _pointer_vars()}
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    os.set_inheritable(r, True)
    env[FD_VAR] = str(r)
    sys.stdout.flush()
    sys.stderr.flush()
    args = argv if argv is not None else list(sys.orig_argv)
    try:
        os.execve(sys.executable, [sys.executable, *args[1:]], env)
    except OSError as exc:  # only returns on failure
        raise InfraError(f"cannot re-execute {sys.executable} without the secrets: {exc}") from None


def _receive(fd: int) -> None:
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError as exc:
        raise InfraError(f"cannot read the secrets handed over on fd {fd}: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    payload = json.loads(b"".join(chunks) or b"{}")
    for name, value in payload.get("values", {}).items():
        if name in SECRET_VARS and isinstance(value, str):
            _provided[name] = value
            remember(value)
    for path in payload.get("files", []):
        _files.add(path)
        sandbox.hide(path)


def scrub_environment() -> None:
    """Drop the secret variables (and their ``_FILE`` pointers) from this process's environment."""
    for name in SECRET_VARS:
        os.environ.pop(name, None)
        os.environ.pop(f"{name}_FILE", None)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts remembered secrets from the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts (e.g. an HTTP error echoing a header) are redacted via exc_text.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_redaction() -> None:
    """Attach `RedactingFilter` to every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
