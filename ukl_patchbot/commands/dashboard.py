"""`patchbot dashboard --out DIR`: write the results dashboard as a static site."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "dashboard", help="write the results dashboard (matrix, trends, findings) as static HTML",
        description="Write the pages `patchbot serve` shows at / as a static site in DIR "
        "(replaced atomically), from the results history (PATCHBOT_HISTORY_URL, [history] url "
        "in patchbot.toml, or <cache>/history.sqlite).",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="directory to write (created, or replaced if an earlier run wrote it)")
    p.set_defaults(func=cmd_dashboard)


def history_opener(config_path: Path | None) -> Any:
    """A function that opens this checkout's history (also without a patchbot.toml)."""
    from ukl_patchbot.core import config
    from ukl_patchbot.core.errors import UserError
    from ukl_patchbot.history import store

    try:
        cfg = config.load(config_path)
    except UserError:
        if config_path is not None:
            raise
        from ukl_patchbot.commands.serve import cache_dir_for

        cfg = config.Config(root=Path.cwd(), cache_dir=cache_dir_for(None))
    url = store.history_url(cfg)
    return lambda: store.open_store(url)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ukl_patchbot.dashboard.site import write_site

    history = history_opener(args.config)()
    try:
        n = write_site(history, args.out)
    finally:
        history.close()
    index = args.out.resolve() / "index.html"
    print(f"patchbot dashboard: {n} checks from {history.url} -> {index}")
    return 0
