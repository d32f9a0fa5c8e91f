"""The arguments of `patchbot rebase`, declared once for the CLI and for reproducers."""

from __future__ import annotations

import argparse
from pathlib import Path

from ukl_patchbot.core import cmdline

WORDS = ("rebase",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``patchbot rebase``."""
    p.add_argument("tag", nargs="?", help="upstream tag, e.g. v6.1.192 (default: newest in the "
                   "mirror, per component)")
    p.add_argument("--component", default=None,
                   help="linux, glibc or all (default: the component the tag belongs to)")
    p.add_argument("--dry-run", action="store_true", help="report only; write nothing to patchsets/")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    p.add_argument("--force", action="store_true",
                   help="rewrite patchsets/ even if it has uncommitted local edits")
    p.add_argument("--keep-worktree", action="store_true",
                   help="keep the throwaway worktree (on conflict: stopped at the first one)")


def reproduce(tag: str, component: str | None = None, *, keep_worktree: bool = False,
              dry_run: bool = False) -> str:
    """``patchbot rebase`` of ``component`` onto ``tag``."""
    return cmdline.reproduce(WORDS, add_arguments, {"tag": tag, "component": component,
                                                    "dry_run": dry_run,
                                                    "keep_worktree": keep_worktree})
