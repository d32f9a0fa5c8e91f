"""`patchbot tags [component]`: upstream tags in the mirror, newest first."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("tags", help="list upstream tags, newest first, marking the base")
    p.add_argument("component", nargs="?", default="all", help="linux, glibc or all (default)")
    p.add_argument("--newest", action="store_true",
                   help="print only the newest tag's name (for scripts)")
    p.set_defaults(func=cmd_tags)


def cmd_tags(args: argparse.Namespace) -> int:
    from ukl_patchbot.core import config
    from ukl_patchbot.upstream import mirror as upstream

    cfg = config.load(args.config)
    names = sorted(cfg.components) if args.component == "all" else [args.component]
    for name in names:
        comp = cfg.component(name)
        tags = upstream.list_tags(cfg, name)
        if args.newest:
            if not tags:
                from ukl_patchbot.core.errors import UserError

                raise UserError(f"the {name} mirror has no tags",
                                hint=f"run `patchbot upstream sync {name}`")
            print(tags[0])
            continue
        print(f"{name} ({', '.join(comp.upstreams)})")
        if not tags:
            print(f"  (no tags: run `patchbot upstream sync {name}`)")
        for line in comp.lines or [None]:
            _print_line(cfg, name, line.name if line else None, tags)
    return 0


def _print_line(cfg, name: str, line: str | None, tags: list[str]) -> None:  # type: ignore[no-untyped-def]
    """One line's tags, its series and base marked."""
    from ukl_patchbot.core import versions
    from ukl_patchbot.upstream import mirror as upstream

    lcfg = cfg.for_line(name, line) if line else cfg
    comp = lcfg.component(name)
    base = upstream.series_base(comp)
    held = [t for t in tags if line is None or comp.get_line(line).holds(t, comp.tag_prefix)]
    rel = comp.series_dir.relative_to(cfg.root) if comp.series_dir.is_relative_to(cfg.root) \
        else comp.series_dir
    label = f"line {line}" if line else "all tags"
    print(f" {label}: series {rel}, base {base or 'none (starts from an older line)'}")
    base_v = versions.tag_version(base, comp.tag_prefix) if base else None
    if base and held and base not in tags:
        # The archive withdrew it before this mirror imported it: rebases still run,
        # without the old-base detail (range-diff, upstream change per hunk).
        print(f"  {base}  <- base, not in the mirror (the upstream no longer offers it)")
    for tag in held:
        v = versions.tag_version(tag, comp.tag_prefix)
        mark = ""
        if tag == base:
            mark = "  <- base"
        elif base_v is not None and v is not None and v > base_v:
            mark = "  (newer)"
        print(f"  {tag}{mark}")
