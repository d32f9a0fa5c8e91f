"""`patchbot check <linux-tag>`: rebase, build classic and UKL, boot both, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "check", help="rebase, build and boot both kernel variants of an upstream tag",
        description="Rebase the series onto TAG, build the classic and the UKL kernel, boot both "
        "in QEMU and report. Exit 0 when everything passes, 2 on a failed result, 1 on an error.",
    )
    p.add_argument("tag", nargs="?", help="Linux upstream tag (default: the newest in the mirror)")
    p.add_argument("--glibc", metavar="TAG", help="glibc upstream tag (default: the series base)")
    p.add_argument("--out", type=Path, metavar="DIR", help="directory for logs, images and reports")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON report here")
    p.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    p.add_argument("--variant", action="append", choices=["classic", "ukl"],
                   help="check only this variant (repeatable; default both)")
    p.add_argument("--no-cache", action="store_true", help="do not answer from a cached check")
    p.add_argument("--boot-timeout", type=float, default=60.0, metavar="S",
                   help="hard limit per QEMU boot in seconds (default 60)")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from ukl_patchbot.check import pipeline
    from ukl_patchbot.check import report as check_report
    from ukl_patchbot.core import config
    from ukl_patchbot.core.fsutil import atomic_write
    from ukl_patchbot.core.progress import for_stream
    from ukl_patchbot.history import record as history_record  # issue 14
    from ukl_patchbot.history.model import Source  # issue 14

    cfg = config.load(args.config)
    req = pipeline.CheckRequest(
        tag=args.tag, glibc_tag=args.glibc, out_dir=args.out,
        variants=tuple(args.variant) if args.variant else pipeline.variants.VARIANTS,
        boot_timeout=args.boot_timeout, use_cache=not args.no_cache)
    if args.dry_run:
        for line in pipeline.plan(cfg, req):
            print(line)
        return 0
    progress = for_stream(sys.stderr)
    try:
        # issue 14: run and record in the results history
        report = history_record.checked(cfg, req, source=Source.CLI, progress=progress)
    finally:
        progress.close()
    print(check_report.render_markdown(report))
    if args.json:
        atomic_write(args.json, check_report.render_json(report))
    return 0 if report.verdict == check_report.Verdict.PASS else 2
