"""`patchbot upstream sync [component]`: update the local upstream mirrors."""

from __future__ import annotations

import argparse

from ukl_patchbot.upstream import request


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("upstream", help="manage the local upstream mirrors")
    sub = p.add_subparsers(dest="upstream_command", metavar="ACTION", required=True)
    s = sub.add_parser("sync", help="import/fetch upstream versions into the mirror")
    request.add_sync_arguments(s)
    s.set_defaults(func=cmd_sync)


def cmd_sync(args: argparse.Namespace) -> int:
    from ukl_patchbot.core import config
    from ukl_patchbot.upstream import mirror as upstream

    cfg = config.load(args.config)
    names = sorted(cfg.components) if args.component == "all" else [args.component]
    log_dir = cfg.cache_dir / "logs"
    for name in names:
        print(f"{name}: syncing {cfg.component(name).upstream} ...", flush=True)
        res = upstream.sync(cfg, name, versions=args.versions, log_dir=log_dir,
                            progress=lambda line: print(line, flush=True),
                            needed_only=args.needed)
        added = ", ".join(res.added) or "nothing new"
        print(f"{name}: added {added}; {len(res.present)} already present; mirror {res.mirror}")
    return 0
