"""The arguments of `patchbot upstream sync`, declared once for the CLI and for reproducers."""

from __future__ import annotations

import argparse

from ukl_patchbot.core import cmdline

SYNC_WORDS = ("upstream", "sync")


def add_sync_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``patchbot upstream sync``."""
    p.add_argument("component", nargs="?", default="all", help="linux, glibc or all (default)")
    p.add_argument("--version", dest="versions", action="append", metavar="VERSION",
                   help="only this version or tag (repeatable), e.g. 6.1.192")
    p.add_argument("--needed", action="store_true",
                   help="only what the series need: every line's base and the newest tag of "
                   "each tracked line (a Debian upstream otherwise imports every version)")


def reproduce_sync(component: str = "all", versions: list[str] | None = None,
                   needed: bool = False) -> str:
    """``patchbot upstream sync`` of ``component``."""
    return cmdline.reproduce(SYNC_WORDS, add_sync_arguments,
                             {"component": component, "versions": versions, "needed": needed})
