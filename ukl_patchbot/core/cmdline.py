"""Reproducer command lines: the one place that turns a request back into a command.

A `patchbot` command line is rebuilt by walking the same argparse parser that
reads it (each stage declares its command's arguments once, in an
``add_arguments`` function the CLI registers too) and writing out every value
that differs from the parser's default. A test parses the result with the
real CLI, so the reproducer cannot drift from the options it names.

`shell_line` is the one formatter for a lower-level command (``make``,
QEMU) as a shell line, with its directory and environment.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ukl_patchbot.core.fsutil import atomic_write

PROG = "patchbot"
REPRODUCER_NAME = "reproducer.sh"


def parser_for(words: Sequence[str], add_arguments: Callable[[argparse.ArgumentParser], None]
               ) -> argparse.ArgumentParser:
    """A parser of the ``patchbot <words...>`` subcommand, built by its stage's ``add_arguments``."""
    p = argparse.ArgumentParser(prog=" ".join([PROG, *words]), add_help=False)
    add_arguments(p)
    return p


def _long_option(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def reproduce_argv(words: Sequence[str], parser: argparse.ArgumentParser,
                   values: Mapping[str, Any]) -> list[str]:
    """``patchbot <words...>`` with every value in ``values`` (by parser dest) not at its default."""
    argv = [PROG, *words]
    for action in parser._actions:  # argparse keeps no public list of a parser's arguments
        if action.dest not in values:
            continue
        value = values[action.dest]
        if value is None or value == action.default:
            continue
        items = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        if not action.option_strings:
            argv += items
        elif action.nargs == 0:  # a flag (store_true and friends)
            if value:
                argv.append(_long_option(action))
        else:
            for item in items:
                argv += [_long_option(action), item]
    return argv


def reproduce(words: Sequence[str], add_arguments: Callable[[argparse.ArgumentParser], None],
              values: Mapping[str, Any]) -> str:
    """The shell line of `reproduce_argv` for the subcommand declared by ``add_arguments``."""
    return shlex.join(reproduce_argv(words, parser_for(words, add_arguments), values))


def shell_line(argv: Sequence[str | Path], *, cwd: str | Path | None = None,
               env: Mapping[str, str] | None = None) -> str:
    """``cd DIR && K=V ... argv``: one command as a line to paste into a shell."""
    prefix = f"cd {shlex.quote(str(cwd))} && " if cwd else ""
    env_part = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted((env or {}).items()))
    return prefix + (env_part + " " if env_part else "") + shlex.join(str(a) for a in argv)


def write_reproducer(run_dir: Path, commands: Sequence[str]) -> Path:
    """Write ``reproducer.sh`` (the commands that redo this run by hand) into ``run_dir``."""
    path = run_dir / REPRODUCER_NAME
    text = ("#!/bin/sh\n# Redo this run by hand, from a ukl-patchbot checkout.\nset -e\n"
            + "".join(c + "\n" for c in commands))
    atomic_write(path, text)
    path.chmod(0o755)
    return path
