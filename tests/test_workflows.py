"""The CI definitions in ci/: GitHub Actions workflows and the systemd units.

They only run on GitHub or a server, so these tests check what can be
checked here: the files parse, carry the keys GitHub and systemd need, and
every `patchbot ...` command they run exists in our CLI with those options.
"""

from __future__ import annotations

import argparse
import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from ukl_patchbot import cli

CI = Path(__file__).resolve().parent.parent / "ci"
WORKFLOWS = sorted((CI / "workflows").glob("*.yml"))
PATCHBOT_CALL = re.compile(r"(?:^|[\s/])patchbot((?:\s+[a-z][\w-]*)+)")


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def subparser(parser: argparse.ArgumentParser, words: list[str]) -> tuple[argparse.ArgumentParser,
                                                                          list[str]]:
    """Walk ``words`` down the subcommands; (deepest parser, the subcommand path)."""
    path: list[str] = []
    for w in words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or w not in subs[0].choices:
            break
        parser = subs[0].choices[w]
        path.append(w)
    return parser, path


def patchbot_calls(script: str) -> list[tuple[list[str], set[str]]]:
    """(subcommand path, --options named for it) for every `patchbot` call in a shell script.

    Options may be on the call line or collected into a bash array
    (``args+=(--each)``) that the call expands.
    """
    calls = []
    lines = script.splitlines()
    array_opts = {o for ln in lines if re.search(r"\bargs\+?=\(", ln)
                  for o in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", ln)}
    for ln in lines:
        m = PATCHBOT_CALL.search(ln)
        if not m:
            continue
        words = m.group(1).split()
        opts = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", ln[m.end():]))
        if '"${args[@]}"' in ln:
            opts |= array_opts
        calls.append((words, opts))
    return calls


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return cli.build_parser()


def test_both_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"track.yml", "check.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_shape(path: Path) -> None:
    doc = load(path)
    assert doc.get("name") and doc.get("on") and doc.get("jobs"), path
    for name, job in doc["jobs"].items():
        assert job.get("runs-on"), f"{path.name}: job {name} has no runs-on"
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: no timeout"
        assert job["steps"], name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: {step}"
            if "uses" in step:
                # Pinned to a major version at least, never a moving branch.
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_track_workflow_is_weekly_and_manual() -> None:
    doc = load(CI / "workflows" / "track.yml")
    [sched] = doc["on"]["schedule"]
    fields = sched["cron"].split()
    assert len(fields) == 5 and fields[2] == "*" and fields[3] == "*" and fields[4] != "*"
    assert set(doc["on"]["workflow_dispatch"]["inputs"]) == {"each", "dry_run"}
    assert doc["permissions"] == {"contents": "write", "pull-requests": "write",
                                  "issues": "write"}
    assert doc["concurrency"]["cancel-in-progress"] is False
    steps = doc["jobs"]["track"]["steps"]
    cached = " ".join(str(s["with"]["path"]) for s in steps
                      if s.get("uses", "").startswith("actions/cache@"))
    for what in ("mirrors", "ccache", "glibc"):
        assert f"patchbot-cache/{what}" in cached, what
    env = doc["jobs"]["track"]["env"]
    assert cached.count(env["PATCHBOT_CACHE_DIR"]) >= 3
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "patchbot track" in runs and "ci/install-deps.sh" in runs


def test_check_workflow_runs_on_series_and_kconfig_changes() -> None:
    doc = load(CI / "workflows" / "check.yml")
    assert set(doc["on"]) == {"pull_request"}
    assert set(doc["on"]["pull_request"]["paths"]) == {"patchsets/**", "kconfigs/**"}
    assert doc["permissions"] == {"contents": "read"}  # untrusted PR code gets no write token
    runs = "\n".join(s.get("run", "") for s in doc["jobs"]["check"]["steps"])
    assert re.search(r"patchbot check\b", runs)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_patchbot_command_exists(path: Path, parser: argparse.ArgumentParser) -> None:
    doc = load(path)
    calls = [c for job in doc["jobs"].values() for step in job["steps"]
             for c in patchbot_calls(step.get("run", ""))]
    assert calls, f"{path.name} runs no patchbot command"
    for words, opts in calls:
        sub, cmd = subparser(parser, words)
        assert cmd, f"{path.name}: `patchbot {' '.join(words)}` is not a patchbot command"
        known = set(sub._option_string_actions)
        assert opts <= known, f"{path.name}: patchbot {' '.join(cmd)}: unknown {opts - known}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_scripts_are_valid_bash(path: Path, tmp_path: Path) -> None:
    """`bash -n` on every run script (GitHub runs them with bash -e); expressions stubbed."""
    import subprocess

    doc = load(path)
    for job in doc["jobs"].values():
        for i, step in enumerate(job["steps"]):
            if "run" not in step:
                continue
            script = tmp_path / f"step{i}.sh"
            script.write_text(re.sub(r"\$\{\{[^}]*\}\}", "x", step["run"]))
            res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                                 timeout=30, check=False)
            assert res.returncode == 0, f"{path.name} step {i}: {res.stderr}"


def test_the_helper_catches_unknown_commands_and_options(parser: argparse.ArgumentParser
                                                         ) -> None:
    [(words, opts)] = patchbot_calls('args=(--repo x)\nargs+=(--evry)\n'
                                     '.venv/bin/patchbot track "${args[@]}"')
    sub, cmd = subparser(parser, words)
    assert cmd == ["track"] and opts == {"--repo", "--evry"}
    assert "--evry" not in sub._option_string_actions
    assert subparser(parser, ["trak"])[1] == []
    assert subparser(parser, ["upstream", "sync", "all"])[1] == ["upstream", "sync"]


def _unit(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(path.read_text())
    return cp


def test_systemd_units(parser: argparse.ArgumentParser) -> None:
    service = _unit(CI / "systemd" / "patchbot-track.service")
    timer = _unit(CI / "systemd" / "patchbot-track.timer")
    assert service["Service"]["Type"] == "oneshot"
    argv = shlex.split(service["Service"]["ExecStart"])
    assert argv[0].endswith("/patchbot") and argv[1] == "track"
    parser.parse_args(argv[1:])  # SystemExit (test error) on an unknown option
    assert "2" in service["Service"]["SuccessExitStatus"].split()
    assert timer["Timer"]["Unit"] == "patchbot-track.service"
    assert timer["Timer"]["OnCalendar"].startswith("Mon ")
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
