"""One reproducer source: commands rebuilt from the CLI's own argument declarations."""

from __future__ import annotations

import shlex
from pathlib import Path

from ukl_patchbot import cli
from ukl_patchbot.check.request import CheckRequest
from ukl_patchbot.core import cmdline
from ukl_patchbot.rebase import request as rebase_request
from ukl_patchbot.upstream import request as upstream_request


def parse(line: str):  # type: ignore[no-untyped-def]
    argv = shlex.split(line)
    assert argv[0] == "patchbot"
    return cli.build_parser().parse_args(argv[1:])


def test_check_reproducer_round_trips_through_the_cli() -> None:
    req = CheckRequest(tag="v6.1.192", variants=("ukl",), use_cache=False)
    line = req.reproduce("v6.1.192", "glibc-2.36-9")
    assert line == "patchbot check v6.1.192 --glibc glibc-2.36-9 --variant ukl --no-cache"
    args = parse(line)
    again = CheckRequest.from_args(args)
    assert (again.tag, again.glibc_tag, again.variants, again.use_cache) == (
        "v6.1.192", "glibc-2.36-9", ("ukl",), False)


def test_app_option_round_trips_and_is_off_by_default() -> None:
    req = CheckRequest(tag="v6.1.192", app="nginx")
    line = req.reproduce("v6.1.192", None)
    assert line == "patchbot check v6.1.192 --app nginx"
    assert CheckRequest.from_args(parse(line)).app == "nginx"
    assert CheckRequest.from_args(parse("patchbot check v6.1.192")).app is None


def test_defaults_are_left_out() -> None:
    assert CheckRequest().reproduce("v6.1.170", None) == "patchbot check v6.1.170"
    assert upstream_request.reproduce_sync() == "patchbot upstream sync"


def test_rebase_and_sync_reproducers_parse() -> None:
    line = rebase_request.reproduce("v6.1.192", "linux", keep_worktree=True)
    assert line == "patchbot rebase v6.1.192 --component linux --keep-worktree"
    args = parse(line)
    assert (args.tag, args.component, args.keep_worktree, args.dry_run) == (
        "v6.1.192", "linux", True, False)
    args = parse(upstream_request.reproduce_sync("glibc", ["2.36-9"]))
    assert (args.component, args.versions) == ("glibc", ["2.36-9"])


def test_shell_line_quotes_directory_and_environment() -> None:
    line = cmdline.shell_line(["make", "O=/b d"], cwd="/w x", env={"B": "2", "A": "1 2"})
    assert line == "cd '/w x' && A='1 2' B=2 make 'O=/b d'"


def test_reproducer_script_is_written_executable(tmp_path: Path) -> None:
    path = cmdline.write_reproducer(tmp_path, ["patchbot check v6.1.192"])
    assert path.name == "reproducer.sh"
    assert path.read_text().splitlines()[-1] == "patchbot check v6.1.192"
    assert path.stat().st_mode & 0o111
