"""`patchbot rebase [TAG]`: carry the patch series onto an upstream tag and report."""

from __future__ import annotations

import argparse

from ukl_patchbot.rebase import request


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "rebase", help="apply the series onto an upstream tag; report per patch and hunk",
        description="The tag's line picks the series (v6.12.117 -> patchsets/linux/6.12); a line "
        "without a series starts from the newest older line's. On a conflict the worktree is "
        "kept and the state saved: resolve there, then --continue (or --abort). "
        "Exit status: 0 the series applies, 2 conflicts, 1 error.",
    )
    request.add_arguments(p)
    p.add_argument("--from", dest="from_line", metavar="LINE",
                   help="start from this line's series (e.g. 6.1) instead of the tag's own")
    steps = p.add_mutually_exclusive_group()
    steps.add_argument("--continue", dest="resume", action="store_const", const="continue",
                       help="go on after resolving the conflict in the kept worktree")
    steps.add_argument("--abort", dest="resume", action="store_const", const="abort",
                       help="drop the stopped rebase (worktree and state); patchsets/ untouched")
    steps.add_argument("--status", dest="resume", action="store_const", const="status",
                       help="say which rebases are stopped, where, and what to do")
    p.set_defaults(func=cmd_rebase, resume=None)


def _components_for(cfg, tag: str | None, wanted: str | None) -> list[str]:  # type: ignore[no-untyped-def]
    from ukl_patchbot.core import versions
    from ukl_patchbot.core.errors import UserError

    if wanted == "all" or (wanted is None and tag is None):
        if tag is not None:
            raise UserError("a tag names one component's version; drop it with --component all")
        return sorted(cfg.components)
    if wanted is not None:
        cfg.component(wanted)
        return [wanted]
    assert tag is not None
    name = versions.component_of_tag(tag, {c.name: c.tag_prefix for c in cfg.components.values()})
    if name is None:
        raise UserError(f"{tag!r} looks like no component's tag",
                        hint="pass --component " + "|".join(sorted(cfg.components)))
    return [name]


def _fetch_if_missing(cfg, component: str, tag: str) -> None:  # type: ignore[no-untyped-def]
    """A tag not yet in the mirror is fetched/imported first, if the upstream has it."""
    import sys

    from ukl_patchbot.core.errors import PatchbotError, UserError
    from ukl_patchbot.upstream import mirror as upstream

    upstream.check_tag_name(tag)  # a bad name is an error, not something to fetch
    try:
        upstream.resolve_tag(cfg, component, tag)
        return
    except UserError as missing:
        print(f"{component}: {tag} is not in the mirror yet; fetching it ...", file=sys.stderr,
              flush=True)
        try:
            upstream.sync(cfg, component, versions=[tag], log_dir=cfg.cache_dir / "logs")
        except PatchbotError:
            raise missing from None


def _resume(cfg, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    """--continue, --abort, --status."""
    from ukl_patchbot.rebase import report as rebase_report
    from ukl_patchbot.rebase import resume

    component = args.component if args.component not in (None, "all") else None
    if args.resume == "status":
        pending = resume.rebase_status(cfg, component)
        if not pending:
            print("no rebase in progress")
        for p in pending:
            print(f"{p.component} {p.line}: {p.state} at {p.current} rebasing {p.old_base} -> "
                  f"{p.tag}; {len(p.done)} patch(es) carried; worktree {p.worktree}")
            print("  resolve there, `git add`, then `patchbot rebase --continue` "
                  "(or --abort)")
        return 0
    if args.resume == "abort":
        p = resume.abort_rebase(cfg, component)
        print(f"{p.component} {p.line}: rebase onto {p.tag} dropped; {p.target_dir} untouched")
        return 0
    report = resume.continue_rebase(cfg, component)
    print(rebase_report.render_markdown(report))
    _write_json(args, [report])
    return 0 if report.ok else 2


def _write_json(args: argparse.Namespace, reports: list) -> None:  # type: ignore[type-arg]
    from ukl_patchbot.core import fsutil
    from ukl_patchbot.rebase import report as rebase_report

    if not args.json:
        return
    if len(reports) == 1:
        fsutil.atomic_write(args.json, rebase_report.render_json(reports[0]))
    else:
        import json

        data = [rebase_report.to_dict(r) for r in reports]
        fsutil.atomic_write(args.json, json.dumps(data, indent=2, sort_keys=True) + "\n")


def cmd_rebase(args: argparse.Namespace) -> int:
    from ukl_patchbot.core import config
    from ukl_patchbot.core.errors import UserError
    from ukl_patchbot.rebase import engine as rebase
    from ukl_patchbot.rebase import report as rebase_report
    from ukl_patchbot.upstream import mirror as upstream

    cfg = config.load(args.config)
    if args.resume:
        if args.tag is not None:
            raise UserError(f"--{args.resume} takes no tag; the saved state knows it",
                            hint="pass --component to choose when several are stopped")
        return _resume(cfg, args)
    reports = []
    for name in _components_for(cfg, args.tag, args.component):
        tag = args.tag
        if tag is None:
            tags = upstream.list_tags(cfg, name)
            if not tags:
                raise UserError(f"the {name} mirror has no tags",
                                hint=f"run `patchbot upstream sync {name}`")
            tag = tags[0]
        else:
            _fetch_if_missing(cfg, name, tag)
        report = rebase.rebase_series(cfg, name, tag, dry_run=args.dry_run,
                                      keep_worktree=args.keep_worktree, force=args.force,
                                      from_line=args.from_line, resumable=True)
        print(rebase_report.render_markdown(report))
        reports.append(report)
    _write_json(args, reports)
    return 0 if all(r.ok for r in reports) else 2
