"""``patchset.toml``: the one module that reads and edits it.

The file records the tag a series was last verified on (``base = "<tag>"``).
`read_base` is the strict reader for loading a series (a missing or broken
file is the user's error, with file and line); `recorded_base` is the lenient
one for callers that can do without (syncing mirrors, picking a default tag);
`set_base` rewrites the one ``base`` line in place, keeping comments and
anything else in the file as the maintainer wrote it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from ukl_patchbot.core.errors import UserError

META_NAME = "patchset.toml"
_BASE_LINE = re.compile(r'(?m)^(\s*base\s*=\s*)"[^"]*"')


def file_error(path: Path, line: int | None, msg: str, hint: str | None = None) -> UserError:
    """A UserError about ``path`` (at ``line``, when known)."""
    where = f"{path}:{line}" if line else str(path)
    return UserError(f"{where}: {msg}", hint=hint)


def read_base(directory: Path) -> str:
    """The base tag of the series in ``directory``; a UserError naming the file otherwise."""
    meta = directory / META_NAME
    try:
        data = tomllib.loads(meta.read_text())
    except FileNotFoundError:
        raise file_error(meta, None, "missing", hint='create it with a line: base = "<tag>"') from None
    except tomllib.TOMLDecodeError as exc:
        raise file_error(meta, getattr(exc, "lineno", None), f"invalid TOML: {exc}") from None
    base = data.get("base")
    if not isinstance(base, str) or not base:
        raise file_error(meta, None, 'needs base = "<tag>" (the tag the series was verified on)')
    return base


def recorded_base(directory: Path) -> str | None:
    """The base tag if ``directory`` records a readable one, else None."""
    try:
        return read_base(directory)
    except UserError:
        return None


def set_base(directory: Path, tag: str, *, shown: Path | None = None) -> None:
    """Point the ``base`` line of ``directory``'s file at ``tag`` (``shown`` names it in errors)."""
    meta = directory / META_NAME
    text, n = _BASE_LINE.subn(lambda m: f'{m.group(1)}"{tag}"', meta.read_text())
    if n != 1:
        raise UserError(f"{(shown or directory) / META_NAME}: cannot find the base = \"...\" line")
    meta.write_text(text)
