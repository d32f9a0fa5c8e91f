"""`patchbot track`: the weekly job (new upstream tags become pull requests or issues)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "track", help="check new upstream tags of the tracked lines; open a PR or an issue",
        description="For each tracked line in patchbot.toml: sync the mirror, check the newest "
        "tag newer than the series base, then push patchbot/<component>-<tag> and open or update "
        "the line's pull request (pass) or open or update the line's issue (conflict, failure). "
        "Nothing new: nothing is done. Exit 0 when every line passed or had nothing new, 2 when "
        "a line failed (its issue is open), 1 on an error.",
    )
    p.add_argument("components", nargs="*", metavar="COMPONENT",
                   help="only these components (default: every one with tracked lines)")
    p.add_argument("--each", action="store_true",
                   help="check every new tag, oldest first, stopping at the first failure "
                   "(default: only the newest)")
    p.add_argument("--dry-run", action="store_true",
                   help="sync and show what would be checked, pushed and opened; change nothing")
    p.add_argument("--repo", metavar="OWNER/NAME",
                   help="GitHub repository (default: $GITHUB_REPOSITORY, as set by Actions)")
    p.add_argument("--remote", default="origin",
                   help="git remote (name or URL) the branch is pushed to (default origin)")
    p.add_argument("--base-branch", metavar="BRANCH",
                   help="branch the pull request targets (default: the checkout's branch)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for another running `patchbot track` (default: "
                   "fail at once)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--check", metavar="MODULE:FUNCTION",
                   help="check tags with this function (job, cfg) -> JobOutcome instead of the "
                   "full pipeline (for tests)")
    p.set_defaults(func=cmd_track)


def cmd_track(args: argparse.Namespace) -> int:
    from ukl_patchbot.core import config
    from ukl_patchbot.core.config import Config
    from ukl_patchbot.core.fsutil import atomic_write
    from ukl_patchbot.core.jobs import Job, JobOutcome
    from ukl_patchbot.core.progress import for_stream
    from ukl_patchbot.track import render as track_render
    from ukl_patchbot.track import tracker as track
    from ukl_patchbot.track.results import LineStatus

    cfg = config.load(args.config)
    repo = args.repo or os.environ.get("GITHUB_REPOSITORY") or None
    gh = None
    if (repo and not args.dry_run) or _has_credentials():
        from ukl_patchbot.core.secrets import install_log_redaction
        from ukl_patchbot.github.client import Credentials, GitHubClient

        install_log_redaction()
        pace = os.environ.get("PATCHBOT_GITHUB_PACE", "1") != "0"
        gh = GitHubClient(Credentials.from_env(), pace=pace)
    progress = for_stream(sys.stderr)

    def check(job: Job, cfg: Config) -> JobOutcome:
        return track.check_tag(job, cfg, progress)

    if args.check:
        from ukl_patchbot.bot.runtime import load_executor

        check = load_executor(args.check)  # type: ignore[assignment]
    opts = track.TrackOptions(repo=repo, remote=args.remote, base_branch=args.base_branch,
                              each=args.each, dry_run=args.dry_run,
                              components=tuple(args.components), lock_wait=args.wait)
    try:
        results = track.track(cfg, opts, gh, check=check)
    finally:
        progress.close()
    sys.stdout.write(track_render.render_text(results))
    if args.json:
        atomic_write(args.json, track_render.render_json(results))
    if any(r.status == LineStatus.ERROR for r in results):
        return 1
    return 2 if any(r.status == LineStatus.FAILED for r in results) else 0


def _has_credentials() -> bool:
    return any(os.environ.get(v) for v in (
        "PATCHBOT_GITHUB_TOKEN", "PATCHBOT_GITHUB_TOKEN_FILE", "PATCHBOT_GITHUB_APP_ID"))
