"""`patchbot check <linux-tag>`: rebase, build classic and UKL, boot both, report."""

from __future__ import annotations

import argparse
import sys

from ukl_patchbot.check import request


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "check", help="rebase, build and boot both kernel variants of an upstream tag",
        description="Rebase the series onto TAG, build the classic and the UKL kernel, boot both "
        "in QEMU and report. Exit 0 when everything passes, 2 on a failed result, 1 on an error.",
    )
    request.add_arguments(p)
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
    req = request.CheckRequest.from_args(args)
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
