"""What `patchbot check` is asked to do: its arguments, the request, and its reproducer.

The arguments are declared once here; the CLI registers them and the
reproducer walks them (`core.cmdline`), so the command a report quotes is
the command the CLI reads.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.check import variant_records
from ukl_patchbot.check.apps import recipes
from ukl_patchbot.core import cmdline

DEFAULT_BOOT_TIMEOUT = 60.0
WORDS = ("check",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``patchbot check``."""
    p.add_argument("tag", nargs="?", help="Linux upstream tag (default: the newest in the mirror)")
    p.add_argument("--glibc", metavar="TAG", help="glibc upstream tag (default: the series base)")
    p.add_argument("--out", type=Path, metavar="DIR", help="directory for logs, images and reports")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON report here")
    p.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    p.add_argument("--variant", action="append", choices=variant_records.NAMES,
                   help="check only this variant (repeatable; default both)")
    p.add_argument("--no-cache", action="store_true", help="do not answer from a cached check")
    p.add_argument("--boot-timeout", type=float, default=DEFAULT_BOOT_TIMEOUT, metavar="S",
                   help="hard limit per QEMU boot in seconds (default 60)")
    p.add_argument("--profile", metavar="NAME",
                   help="also apply kconfigs/profile-NAME.config to every variant, after "
                        "base.config (e.g. realistic: closer to a distribution kernel)")
    p.add_argument("--app", choices=recipes.NAMES, metavar="PROGRAM",
                   help="also boot this real program as the app of every variant that passed "
                        f"and request a document from it ({', '.join(recipes.NAMES)}; "
                        "default: none, the probe only)")


@dataclass(frozen=True)
class CheckRequest:
    """What to check. ``tag=None`` means the newest upstream tag in the mirror."""

    tag: str | None = None
    glibc_tag: str | None = None
    out_dir: Path | None = None
    variants: tuple[str, ...] = variant_records.NAMES
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT
    retries: int = 1
    use_cache: bool = True
    jobs: int = 2
    profile: str | None = None  # kconfigs/profile-<profile>.config on top of base.config
    app: str | None = None  # a real program (`apps.recipes`) to run after the probe

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CheckRequest:
        """The request the parsed ``patchbot check`` arguments ask for."""
        return cls(tag=args.tag, glibc_tag=args.glibc, out_dir=args.out,
                   variants=tuple(args.variant) if args.variant else variant_records.NAMES,
                   boot_timeout=args.boot_timeout, use_cache=not args.no_cache,
                   profile=args.profile, app=args.app)

    def reproduce(self, tag: str, glibc_tag: str | None) -> str:
        """``patchbot check`` for this request once its tags are resolved."""
        values = {"tag": tag, "glibc": glibc_tag, "no_cache": not self.use_cache,
                  "profile": self.profile, "app": self.app,
                  "variant": None if tuple(self.variants) == variant_records.NAMES
                  else list(self.variants)}
        return cmdline.reproduce(WORDS, add_arguments, values)
