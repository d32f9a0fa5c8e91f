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


def reproduce_sync(component: str = "all", versions: list[str] | None = None) -> str:
    """``patchbot upstream sync`` of ``component``."""
    return cmdline.reproduce(SYNC_WORDS, add_sync_arguments,
                             {"component": component, "versions": versions})
