"""Secrets: read from the environment or a file it names, kept out of logs and child processes.

A secret ``NAME`` comes from ``$NAME`` or, if that is unset, from the file
named by ``$NAME_FILE`` (the usual way to hand secrets to containers).
`scrub_environment` removes both variables from ``os.environ`` once read, so
build and boot processes started through `ukl_patchbot.core.runner.run` never
inherit them. `RedactingFilter` replaces every known secret value in log
records, as a second line of defence against a careless log call.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from ukl_patchbot.core.errors import UserError

SECRET_VARS = (
    "PATCHBOT_WEBHOOK_SECRET",
    "PATCHBOT_GITHUB_TOKEN",
    "PATCHBOT_GITHUB_APP_PRIVATE_KEY",
)
REDACTED = "[redacted]"

_known: set[str] = set()
_known_lock = threading.Lock()


def read_secret(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Secret ``name`` from ``$name`` or the file ``$name_FILE``; None if neither is set."""
    env = os.environ if env is None else env
    value = env.get(name)
    if not value:
        path = env.get(f"{name}_FILE")
        if path:
            try:
                value = Path(path).read_text().strip()
            except OSError as exc:
                raise UserError(
                    f"cannot read {name}_FILE={path}: {exc.strerror}",
                    hint=f"point {name}_FILE at a readable file, or set {name}",
                ) from None
            if not value:
                raise UserError(f"{name}_FILE={path} is empty")
    if value:
        remember(value)
    return value or None


def remember(value: str) -> None:
    """Register ``value`` so `RedactingFilter` hides it (and each line of it) from logs."""
    with _known_lock:
        for part in [value, *value.splitlines()]:
            part = part.strip()
            # Short fragments such as "-----" would redact half of every log line.
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
