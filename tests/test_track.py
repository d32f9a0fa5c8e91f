"""`patchbot track` against the fake GitHub and a local bare repository as the push remote.

The upstream is a real git repository (fetched by the real mirror sync), the
series is rebased for real; only the check (build and boot) is a stand-in
that returns the outcome a test asks for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import realtrees
from tests.helpers.fake_reporter import FakeReporter
from tests.helpers.fakes_github import APP_ID, APP_SLUG, PAT, FakeGitHub, fake_github
from tests.helpers.gitrepo import git
from ukl_patchbot.core import config
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind, JobOutcome
from ukl_patchbot.github.client import Credentials, GitHubClient, ReportError
from ukl_patchbot.track import tracker as track
from ukl_patchbot.track.results import LineResult, LineStatus
from ukl_patchbot.track.tracker import TrackOptions
from ukl_patchbot.upstream import gitops
from ukl_patchbot.upstream import mirror as upstream

__all__ = ["fake_github"]

REPO = "ukl/patches"
LINE_MARK = track.marker("linux", "1")


def numbered(n: int = 30) -> str:
    return "".join(f"sys line {i}\n" for i in range(1, n + 1))


@dataclass
class FakeCheck:
    """Stands in for the pipeline: the conclusion per tag, every call recorded."""

    verdicts: dict[str, Conclusion] = field(default_factory=dict)
    summary: str = "| variant | result |\n|---|---|\n| classic | pass |\n| ukl | pass |\n"
    calls: list[str] = field(default_factory=list)

    def __call__(self, job: Job, cfg: config.Config) -> JobOutcome:
        assert job.tag is not None
        self.calls.append(job.tag)
        verdict = self.verdicts.get(job.tag, Conclusion.SUCCESS)
        title = f"{job.tag}: {'both variants boot' if verdict == Conclusion.SUCCESS else 'UKL boot fails'}"
        return JobOutcome(job, verdict, title, f"report for {job.tag}\n\n{self.summary}",
                          out_dir=str(cfg.cache_dir / "runs" / str(job.tag)))


@dataclass
class World:
    upstream: Path
    project: Path
    remote: Path
    cfg: config.Config
    fake: FakeGitHub
    gh: GitHubClient
    check: FakeCheck

    def tag_upstream(self, tag: str, text: str) -> None:
        (self.upstream / "kernel" / "sys.c").write_text(text)
        git(self.upstream, "commit", "-q", "-am", f"release {tag}")
        git(self.upstream, "tag", "-a", tag, "-m", tag)

    def run(self, **kw: object) -> list[LineResult]:
        opts = TrackOptions(repo=REPO, **kw)  # type: ignore[arg-type]
        return track.track(self.cfg, opts, self.gh, check=self.check)

    def open_pulls(self) -> list[int]:
        return sorted(n for n, p in self.fake.repo(REPO).pulls.items() if p.state == "open")

    def issues(self, state: str = "open") -> list[int]:
        return sorted(n for n, i in self.fake.repo(REPO).issues.items() if i["state"] == state)

    def remote_file(self, branch: str, path: str) -> str:
        return git(self.remote, "show", f"refs/heads/{branch}:{path}")


def _series_patch(upstream: Path, tmp: Path) -> str:
    """A real `git format-patch` of a UKL-ish change made on v1.0."""
    work = tmp / "patch-work"
    git(tmp, "clone", "-q", str(upstream), str(work))
    git(work, "checkout", "-q", "v1.0")
    text = (work / "kernel" / "sys.c").read_text().replace("sys line 10\n", "sys line 10 (UKL)\n")
    (work / "kernel" / "sys.c").write_text(text)
    git(work, "commit", "-q", "-am", "ukl: mark line 10")
    return git(work, "format-patch", "-1", "--stdout") + "\n"


@pytest.fixture
def world(tmp_path: Path, fake_github: FakeGitHub) -> Iterator[World]:
    up = tmp_path / "upstream"
    (up / "kernel").mkdir(parents=True)
    git(up, "init", "-q")
    (up / "kernel" / "sys.c").write_text(numbered())
    git(up, "add", "-A")
    git(up, "commit", "-q", "-m", "v1.0")
    git(up, "tag", "-a", "v1.0", "-m", "v1.0")

    proj = tmp_path / "project"
    series = proj / "patchsets" / "linux"
    series.mkdir(parents=True)
    (series / "0001-ukl-mark-line-10.patch").write_text(_series_patch(up, tmp_path))
    (series / "series").write_text("0001-ukl-mark-line-10.patch\n")
    (series / "patchset.toml").write_text('base = "v1.0"\n')
    (proj / "patchbot.toml").write_text(
        f'[components.linux]\nupstream = "{up}"\ntag_prefix = "v"\n'
        'series = "patchsets/linux"\ntracked = ["1"]\n\n'
        '[components.glibc]\ntracked = []\n'
    )
    git(proj, "init", "-q")
    git(proj, "add", "-A")
    git(proj, "commit", "-q", "-m", "series on v1.0")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(proj, "remote", "add", "origin", str(remote))
    git(proj, "push", "-q", "origin", "main")

    cfg = dataclasses.replace(config.load(proj / "patchbot.toml"), cache_dir=tmp_path / "cache")
    fake_github.repo(REPO).git_dir = remote
    # No waiting between retries: the fault tests retry GitHub errors several times.
    gh = GitHubClient(Credentials(api_url=fake_github.url, token=PAT), pace=False,
                      sleep=lambda _s: None)
    yield World(up, proj, remote, cfg, fake_github, gh, FakeCheck())


def num(n: int | None) -> int:
    assert n is not None
    return n


def writes(fake: FakeGitHub) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method != "GET"]


def test_no_new_tag_does_nothing(world: World) -> None:
    [res] = world.run()
    assert res.status == LineStatus.NOTHING_NEW
    assert res.new_tags == ()
    assert "nothing newer than v1.0" in res.actions[0]
    assert world.check.calls == []
    assert writes(world.fake) == []  # only looked for stale threads of ours
    assert git(world.remote, "for-each-ref", "--format=%(refname)") == "refs/heads/main"


def test_nothing_new_closes_what_a_maintainer_made_stale(world: World) -> None:
    """The maintainer carried the series onto v1.1 by hand: our PR and issue are stale."""
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.check.verdicts["v1.1"] = Conclusion.FAILURE
    [failed] = world.run()
    world.tag_upstream("v1.2", "two\nnew lines\n" + numbered())
    [passed] = world.run()  # opens the v1.2 PR, closes the issue
    assert world.issues("closed") == [failed.issue] and world.open_pulls() == [passed.pr]
    (world.project / "patchsets/linux/patchset.toml").write_text('base = "v1.2"\n')
    git(world.project, "commit", "-q", "-am", "series on v1.2, by hand")
    [res] = world.run()
    assert res.status == LineStatus.NOTHING_NEW and res.closed == (passed.pr,)
    assert world.open_pulls() == [] and world.check.calls == ["v1.1", "v1.2"]
    notes = [c["body"] for c in world.fake.repo(REPO).comments.values()
             if c["issue"] == passed.pr]
    assert len(notes) == 1 and "base is now `v1.2`" in notes[0]
    [again] = world.run()
    assert again.closed == ()


def test_new_tag_opens_exactly_one_pr(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())  # the patch moves by one line
    [res] = world.run()
    assert res.status == LineStatus.PASSED, res
    assert (res.tag, res.branch, res.pushed) == ("v1.1", "patchbot/linux-v1.1", True)
    assert world.check.calls == ["v1.1"]
    assert world.open_pulls() == [res.pr]
    pr = world.fake.repo(REPO).pulls[num(res.pr)]
    assert (pr.head_ref, pr.base_ref) == ("patchbot/linux-v1.1", "main")
    assert pr.title == "linux: carry the UKL series onto v1.1"
    assert LINE_MARK in pr.body and "report for v1.1" in pr.body
    assert "0001-ukl-mark-line-10.patch" in pr.body  # the per-patch table of the refresh
    # The branch holds the refreshed series on top of the checkout's main.
    assert 'base = "v1.1"' in world.remote_file(pr.head_ref, "patchsets/linux/patchset.toml")
    patch = world.remote_file(pr.head_ref, "patchsets/linux/0001-ukl-mark-line-10.patch")
    assert "@@ -8,7 +8,7 @@" in patch  # fresh context: one line further down than on v1.0
    parent = git(world.remote, "rev-parse", f"refs/heads/{pr.head_ref}^")
    assert parent == git(world.project, "rev-parse", "HEAD")
    # The checkout itself is untouched.
    assert (world.project / "patchsets/linux/patchset.toml").read_text() == 'base = "v1.0"\n'
    assert git(world.project, "status", "--porcelain") == ""


def test_second_run_updates_the_pr_without_pushing_again(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    [first] = world.run()
    sha = git(world.remote, "rev-parse", "refs/heads/patchbot/linux-v1.1")
    world.check.summary = "| variant | result |\n|---|---|\n| ukl | pass, getppid 41 ns |\n"
    [second] = world.run()
    assert second.status == LineStatus.PASSED
    assert second.pr == first.pr and second.pushed is False
    assert world.open_pulls() == [first.pr]
    assert len(world.fake.calls("POST", r"/pulls$")) == 1
    assert "getppid 41 ns" in world.fake.repo(REPO).pulls[num(first.pr)].body
    assert f"updated pull request #{first.pr}" in second.actions
    # Same inputs, same commit: the branch did not move.
    assert git(world.remote, "rev-parse", "refs/heads/patchbot/linux-v1.1") == sha
    before = len(writes(world.fake))
    [third] = world.run()
    assert f"pull request #{first.pr} already up to date" in third.actions
    assert len(writes(world.fake)) == before  # nothing changed, nothing written


def test_newer_tag_supersedes_the_older_pr(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    [first] = world.run()
    world.tag_upstream("v1.2", "two\nnew lines\n" + numbered())
    [second] = world.run()
    assert second.tag == "v1.2" and second.pr != first.pr
    assert world.open_pulls() == [second.pr]
    old = world.fake.repo(REPO).pulls[num(first.pr)]
    assert old.state == "closed"
    notes = [c["body"] for c in world.fake.repo(REPO).comments.values()
             if c["issue"] == first.pr]
    assert notes == [(f"Superseded by #{second.pr}, which carries the series onto the newer tag "
                     "`v1.2`.")]


def test_a_pr_closed_by_a_maintainer_is_not_reopened_until_the_series_changes(
    world: World,
) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    [first] = world.run()
    world.fake.repo(REPO).pulls[num(first.pr)].state = "closed"  # rejected by a maintainer
    [again] = world.run()
    assert again.pr is None and world.open_pulls() == []
    assert any("closed without merging; not reopened" in a for a in again.actions)
    # A change to the series on main (here: the patch's description) is worth a new PR.
    patch = world.project / "patchsets/linux/0001-ukl-mark-line-10.patch"
    patch.write_text(patch.read_text().replace("ukl: mark line 10", "ukl: mark line ten"))
    git(world.project, "commit", "-q", "-am", "reword the patch")
    [changed] = world.run()
    assert changed.pr not in (None, first.pr) and world.open_pulls() == [changed.pr]
    # A commit elsewhere on main does not change the series: still not reopened after a close.
    world.fake.repo(REPO).pulls[num(changed.pr)].state = "closed"
    (world.project / "NOTES").write_text("unrelated\n")
    git(world.project, "add", "NOTES")
    git(world.project, "commit", "-q", "-m", "unrelated change")
    [later] = world.run()
    assert later.pr is None and world.open_pulls() == []


def test_github_app_auth(world: World) -> None:
    """As a GitHub App: the PR and issue are the App's, found again by its bot login."""
    world.gh = GitHubClient(Credentials(api_url=world.fake.url, app_id=APP_ID,
                                        private_key=world.fake.private_key_pem),
                            pace=False, sleep=lambda _s: None)
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.check.verdicts["v1.1"] = Conclusion.FAILURE
    [failed] = world.run()
    assert world.fake.repo(REPO).issues[num(failed.issue)]["user"] == f"{APP_SLUG}[bot]"
    world.check.verdicts["v1.1"] = Conclusion.SUCCESS
    [passed] = world.run()
    assert world.fake.repo(REPO).pulls[num(passed.pr)].user == f"{APP_SLUG}[bot]"
    assert failed.issue in passed.closed
    [again] = world.run()
    assert again.pr == passed.pr and world.open_pulls() == [passed.pr]


def test_failure_opens_one_issue_updated_not_duplicated(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.check.verdicts["v1.1"] = Conclusion.FAILURE
    [res] = world.run()
    assert res.status == LineStatus.FAILED and res.pr is None
    assert world.open_pulls() == []
    assert git(world.remote, "for-each-ref", "--format=%(refname)") == "refs/heads/main"
    assert world.issues() == [res.issue]
    issue = world.fake.repo(REPO).issues[num(res.issue)]
    assert "fails on v1.1" in issue["title"]
    assert LINE_MARK in issue["body"]
    assert "patchbot rebase v1.1 --component linux --keep-worktree" in issue["body"]
    assert "patchbot check v1.1" in issue["body"] and "report for v1.1" in issue["body"]
    # The next week: a newer tag fails too. Same issue, new text.
    world.tag_upstream("v1.2", "two\nnew lines\n" + numbered())
    world.check.verdicts["v1.2"] = Conclusion.FAILURE
    [again] = world.run()
    assert again.issue == res.issue
    assert world.issues() == [res.issue]
    assert len(world.fake.calls("POST", r"/issues$")) == 1
    assert "fails on v1.2" in world.fake.repo(REPO).issues[num(res.issue)]["title"]


def test_later_passing_run_closes_the_issue(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.check.verdicts["v1.1"] = Conclusion.FAILURE
    [failed] = world.run()
    world.check.verdicts["v1.1"] = Conclusion.SUCCESS  # fixed upstream or in the infrastructure
    [passed] = world.run()
    assert passed.status == LineStatus.PASSED
    assert failed.issue in passed.closed
    issue = world.fake.repo(REPO).issues[num(failed.issue)]
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    comments = [c["body"] for c in world.fake.repo(REPO).comments.values()
                if c["issue"] == failed.issue]
    assert comments == [(f"The series now passes the full check on `v1.1`: see #{passed.pr}. "
                        "Closing.")]
    [third] = world.run()
    assert third.closed == ()  # nothing left to close, and no second comment
    assert len(world.fake.calls("POST", rf"/issues/{failed.issue}/comments$")) == 1


def test_series_that_no_longer_applies_becomes_an_issue_even_if_the_check_passed(
    world: World,
) -> None:
    world.tag_upstream("v1.1", numbered().replace("sys line 10\n", "sys line 10 upstream\n"))
    [res] = world.run()
    assert res.status == LineStatus.FAILED
    body = world.fake.repo(REPO).issues[num(res.issue)]["body"]
    assert "conflict" in body.lower()
    assert world.open_pulls() == []


def test_error_outcome_reports_nothing(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.check.verdicts["v1.1"] = Conclusion.ERROR
    [res] = world.run()
    assert res.status == LineStatus.ERROR
    assert writes(world.fake) == []


def test_each_checks_every_new_tag_and_stops_at_the_first_failure(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.tag_upstream("v1.2", "two\nnew lines\n" + numbered())
    world.tag_upstream("v1.3", "three\nnew\nlines\n" + numbered())
    world.check.verdicts["v1.3"] = Conclusion.FAILURE
    [res] = world.run(each=True)  # fetches v1.1 and v1.2 too (a plain sync takes the newest)
    assert world.check.calls == ["v1.1", "v1.2", "v1.3"]
    assert res.status == LineStatus.FAILED and res.tag == "v1.3"
    [pr] = world.open_pulls()
    assert world.fake.repo(REPO).pulls[pr].head_ref == "patchbot/linux-v1.2"
    assert world.issues() == [res.issue]


def test_dry_run_changes_nothing(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    [res] = world.run(dry_run=True)
    assert res.status == LineStatus.PLANNED and res.tag == "v1.1"
    text = "\n".join(res.actions)
    assert "git push --force origin '<commit>:refs/heads/patchbot/linux-v1.1'" in text
    assert "patchbot check v1.1" in text
    assert world.check.calls == []
    assert writes(world.fake) == []
    assert git(world.remote, "for-each-ref", "--format=%(refname)") == "refs/heads/main"


def test_kill_after_push_then_rerun_opens_one_pr(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.fake.fail("POST", r"/pulls$", 500, times=10)  # GitHub down right after the push
    with pytest.raises(ReportError):
        world.run()
    assert git(world.remote, "rev-parse", "--verify", "refs/heads/patchbot/linux-v1.1")
    world.fake.faults.clear()
    [res] = world.run()
    assert res.pushed is False and world.open_pulls() == [res.pr]


def test_lost_answer_to_create_does_not_duplicate(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.fake.fail("POST", r"/pulls$", 502, apply=True)  # created, but the answer is lost
    world.check.verdicts["v1.1"] = Conclusion.SUCCESS
    [res] = world.run()
    assert world.open_pulls() == [res.pr]
    world.tag_upstream("v1.2", "two\nnew lines\n" + numbered())
    world.check.verdicts["v1.2"] = Conclusion.FAILURE
    world.fake.fail("POST", r"/issues$", 502, apply=True)
    [failed] = world.run()
    assert world.issues() == [failed.issue]


def test_a_second_run_at_the_same_time_is_refused(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    with (gitops.locked(world.cfg.cache_dir / "track.lock"),
          pytest.raises(InfraError, match="another patchbot track")):
        world.run()
    assert world.check.calls == [] and writes(world.fake) == []
    [res] = world.run()  # once the first one is done
    assert res.status == LineStatus.PASSED


def test_concurrent_runs_converge_on_one_pr(world: World, tmp_path: Path) -> None:
    """Two real processes at once (the second waits for the lock): one branch, one PR."""
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    env = {**os.environ, "PATCHBOT_GITHUB_TOKEN": PAT, "PATCHBOT_GITHUB_API_URL": world.fake.url,
           "PATCHBOT_GITHUB_PACE": "0", "PATCHBOT_CACHE_DIR": str(world.cfg.cache_dir)}
    argv = [sys.executable, "-m", "ukl_patchbot", "--config", str(world.project / "patchbot.toml"),
            "track", "--repo", REPO, "--wait", "120", "--check", "tests.test_track:passing_check"]
    procs = [subprocess.Popen(argv, env=env, cwd=Path(__file__).parent.parent,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert len(world.open_pulls()) == 1
    assert len(world.fake.calls("POST", r"/pulls$")) == 1
    texts = "".join(o for o, _ in outs)
    assert "opened pull request" in texts and "already up to date" in texts


def passing_check(job: Job, cfg: config.Config) -> JobOutcome:
    """For the CLI: every tag passes."""
    return JobOutcome(job, Conclusion.SUCCESS, f"{job.tag}: both variants boot", "all good\n")


def test_cli_json_and_exit_codes(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                 ) -> None:
    from ukl_patchbot import cli

    monkeypatch.setenv("PATCHBOT_GITHUB_TOKEN", PAT)
    monkeypatch.setenv("PATCHBOT_GITHUB_API_URL", world.fake.url)
    monkeypatch.setenv("PATCHBOT_GITHUB_PACE", "0")
    monkeypatch.setenv("PATCHBOT_CACHE_DIR", str(world.cfg.cache_dir))
    base = ["--config", str(world.project / "patchbot.toml"), "track", "--repo", REPO]
    out = tmp_path / "track.json"
    assert cli.main([*base, "--json", str(out)]) == 0  # nothing new
    assert json.loads(out.read_text())[0]["status"] == "nothing-new"
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    assert cli.main([*base, "--check", "tests.test_track:failing_check"]) == 2
    assert cli.main([*base, "--check", "tests.test_track:passing_check", "--json", str(out)]) == 0
    [line] = json.loads(out.read_text())
    assert line["status"] == "passed" and line["branch"] == "patchbot/linux-v1.1"
    assert world.issues() == [] and len(world.open_pulls()) == 1


def failing_check(job: Job, cfg: config.Config) -> JobOutcome:
    return JobOutcome(job, Conclusion.FAILURE, f"{job.tag}: UKL boot fails", "oops\n")


def test_track_without_github_is_a_user_error(world: World) -> None:
    with pytest.raises(UserError, match="needs a GitHub repository"):
        track.track(world.cfg, TrackOptions(), None, check=world.check)


def test_check_tag_asks_the_pipeline_for_the_right_pair(world: World,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A Linux tag is checked with glibc at its base; a glibc tag with Linux at its base."""
    from ukl_patchbot.check import pipeline
    from ukl_patchbot.check.report import Attribution, CheckReport, Verdict

    seen: list[pipeline.CheckRequest] = []

    def run_check(cfg: config.Config, req: pipeline.CheckRequest, **_kw: object) -> CheckReport:
        seen.append(req)
        if req.glibc_tag == "glibc-broken":
            raise UserError("unknown glibc tag 'glibc-broken'")
        return CheckReport("linux", req.tag or "", Verdict.PASS, Attribution.NONE, "all good")

    monkeypatch.setattr(pipeline, "run_check", run_check)
    out = track.check_tag(Job(JobKind.CHECK, component="linux", tag="v1.1"), world.cfg)
    assert out.conclusion == Conclusion.SUCCESS and "v1.1" in out.summary_md
    assert (seen[-1].tag, seen[-1].glibc_tag) == ("v1.1", None)
    out = track.check_tag(Job(JobKind.CHECK, component="glibc", tag="glibc-2.36-x"), world.cfg)
    assert (seen[-1].tag, seen[-1].glibc_tag) == ("v1.0", "glibc-2.36-x")
    out = track.check_tag(Job(JobKind.CHECK, component="glibc", tag="glibc-broken"), world.cfg)
    assert out.conclusion == Conclusion.ERROR and "glibc-broken" in out.summary_md


def slow_check(job: Job, cfg: config.Config) -> JobOutcome:
    """For the kill test: announce the check, then take long enough to be killed in it."""
    Path(os.environ["PATCHBOT_TEST_STARTED"]).write_text(str(job.tag))
    time.sleep(60)
    return passing_check(job, cfg)


def test_killed_mid_check_then_rerun(world: World, tmp_path: Path) -> None:
    """SIGKILL while the check runs: the lock dies with the process, the rerun finishes."""
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    started = tmp_path / "started"
    env = {**os.environ, "PATCHBOT_GITHUB_TOKEN": PAT, "PATCHBOT_GITHUB_API_URL": world.fake.url,
           "PATCHBOT_GITHUB_PACE": "0", "PATCHBOT_CACHE_DIR": str(world.cfg.cache_dir),
           "PATCHBOT_TEST_STARTED": str(started)}
    argv = [sys.executable, "-m", "ukl_patchbot", "--config", str(world.project / "patchbot.toml"),
            "track", "--repo", REPO]
    proc = subprocess.Popen([*argv, "--check", "tests.test_track:slow_check"], env=env,
                            cwd=Path(__file__).parent.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert started.read_text() == "v1.1"
    proc.kill()
    proc.wait(timeout=30)
    done = subprocess.run([*argv, "--check", "tests.test_track:passing_check"], env=env,
                          cwd=Path(__file__).parent.parent, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "opened pull request" in done.stdout
    assert len(world.open_pulls()) == 1


def test_track_outside_a_git_checkout_is_a_user_error(world: World, tmp_path: Path) -> None:
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(world.project, plain, ignore=shutil.ignore_patterns(".git"))
    cfg = dataclasses.replace(config.load(plain / "patchbot.toml"), cache_dir=world.cfg.cache_dir)
    with pytest.raises(UserError, match="not a git checkout"):
        track.track(cfg, TrackOptions(repo=REPO), world.gh, check=world.check)


def test_new_tags_by_version_not_spelling() -> None:
    comp = config.Component("linux", "x", "v", Path("s"), ("6.1",))
    tags = ["v6.1.99", "v6.1.170", "v6.1.192", "v6.10.1", "v6.1.200-rc1", "v6.2"]
    assert track.new_tags(comp, "6.1", tags, "v6.1.170") == ["v6.1.192"]
    assert track.new_tags(comp, "6.1", tags, None) == ["v6.1.99", "v6.1.170", "v6.1.192"]
    assert track.new_tags(comp, "6.10", tags, "v6.1.192") == ["v6.10.1"]


def _line(results: list[LineResult], line: str) -> LineResult:
    """The result for ``line`` (the real config tracks 6.1 and 6.12; the tests carry 6.1)."""
    [res] = [r for r in results if r.line == line]
    return res


@pytest.mark.slow
def test_real_series_onto_the_newest_linux_tag(linux_mirror: Path, real_config: config.Config,
                                               tmp_path: Path, fake_github: FakeGitHub) -> None:
    """This repository's Linux series carried onto the newest 6.1 tag of the real mirror."""
    import shutil

    from tests.helpers.gitrepo import REPO_ROOT

    proj = tmp_path / "project"
    proj.mkdir()
    shutil.copy(REPO_ROOT / "patchbot.toml", proj / "patchbot.toml")
    shutil.copytree(REPO_ROOT / "patchsets", proj / "patchsets")
    git(proj, "init", "-q")
    git(proj, "add", "-A")
    git(proj, "commit", "-q", "-m", "series")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(proj, "remote", "add", "origin", str(remote))
    fake_github.repo(REPO).git_dir = remote
    cfg = dataclasses.replace(config.load(proj / "patchbot.toml"),
                              cache_dir=real_config.cache_dir)
    comp = cfg.for_line("linux", "6.1").component("linux")  # the 6.1 line's series
    base = upstream.series_base(comp)
    newest = track.new_tags(comp, "6.1", upstream.list_tags(cfg, "linux"), base)[-1]
    gh = GitHubClient(Credentials(api_url=fake_github.url, token=PAT), pace=False)
    check = FakeCheck()
    opts = TrackOptions(repo=REPO, components=("linux",))

    def no_sync(_c: config.Config, _n: str) -> None:
        return None  # the fixture synced the shared mirror

    res = _line(track.track(cfg, opts, gh, check=check, sync=no_sync), "6.1")
    assert res.status == LineStatus.PASSED, res.actions
    assert res.tag == newest and res.pushed and check.calls == [newest]
    branch = f"patchbot/linux-{newest}"
    meta = git(remote, "show", f"refs/heads/{branch}:patchsets/linux/6.1/patchset.toml")
    assert f'base = "{newest}"' in meta
    series = git(remote, "show",
                 f"refs/heads/{branch}:patchsets/linux/6.1/series").splitlines()
    assert [s for s in series if s and not s.startswith("#")]
    body = fake_github.repo(REPO).pulls[num(res.pr)].body
    assert "range-diff" in body.lower()
    # The refresh is deterministic on the real series too: a rerun pushes nothing.
    again = _line(track.track(cfg, opts, gh, check=check, sync=no_sync), "6.1")
    assert again.pushed is False and again.pr == res.pr


@pytest.mark.slow
def test_real_pipeline_pr_carries_the_check_report(linux_mirror: Path, glibc_mirror: Path,
                                                   real_config: config.Config, tmp_path: Path,
                                                   fake_github: FakeGitHub) -> None:
    """`patchbot track` with the real check (rebase, build, boot both variants) on v6.1.192.

    Shares the test cache with test_check_e2e: with its images (or its whole
    check) cached this takes seconds; cold it builds glibc and both kernels.
    """
    import shutil

    from tests.helpers.gitrepo import REPO_ROOT

    proj = tmp_path / "project"
    proj.mkdir()
    shutil.copy(REPO_ROOT / "patchbot.toml", proj / "patchbot.toml")
    for d in ("patchsets", "kconfigs"):
        shutil.copytree(REPO_ROOT / d, proj / d)
    git(proj, "init", "-q")
    git(proj, "add", "-A")
    git(proj, "commit", "-q", "-m", "series")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(proj, "remote", "add", "origin", str(remote))
    fake_github.repo(REPO).git_dir = remote
    cfg = dataclasses.replace(config.load(proj / "patchbot.toml"),
                              cache_dir=real_config.cache_dir)
    comp = cfg.for_line("linux", "6.1").component("linux")  # the 6.1 line's series
    tags = track.new_tags(comp, "6.1", upstream.list_tags(cfg, "linux"),
                          upstream.series_base(comp))
    new = realtrees.linux_new_tag()
    assert tags and tags[-1] == new, tags
    gh = GitHubClient(Credentials(api_url=fake_github.url, token=PAT), pace=False)

    def no_sync(_c: config.Config, _n: str) -> None:
        return None  # the fixtures synced the shared mirrors

    opts = TrackOptions(repo=REPO, components=("linux",))
    res = _line(track.track(cfg, opts, gh, check=track.check_tag, sync=no_sync), "6.1")
    # The real series passes on v6.1.192 (test_check_e2e pins the same).
    assert (res.status, res.tag) == (LineStatus.PASSED, new), res
    body = fake_github.repo(REPO).pulls[num(res.pr)].body
    assert f"## patchbot check linux {new}: PASS" in body
    assert re.search(r"\| ukl \| ok \|.*\| pass \|", body)
    assert "UKL/classic syscall cost ratio" in body
    assert "range-diff" in body


# -- with only a workflow's GITHUB_TOKEN (issue 11) ------------------------------------
@pytest.mark.parametrize("allowed", [False, True])
def test_github_token_only_opens_the_pr_or_an_issue_with_the_branch(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    allowed: bool,
) -> None:
    """track.yml's fallback token: GET /user is 403 and, unless the repository allows it,
    so is POST /pulls. The run still succeeds: a PR, or the line's issue linking the branch."""
    from ukl_patchbot import cli

    world.fake.repo(REPO).actions_may_open_prs = allowed
    monkeypatch.setenv("PATCHBOT_GITHUB_TOKEN", world.fake.actions_token())
    monkeypatch.setenv("PATCHBOT_GITHUB_API_URL", world.fake.url)
    monkeypatch.setenv("PATCHBOT_GITHUB_PACE", "0")
    monkeypatch.setenv("PATCHBOT_CACHE_DIR", str(world.cfg.cache_dir))
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    out = tmp_path / "track.json"
    base = ["--config", str(world.project / "patchbot.toml"), "track", "--repo", REPO,
            "--check", "tests.test_track:passing_check", "--json", str(out)]
    assert cli.main(base) == 0
    [line] = json.loads(out.read_text())
    assert line["status"] == "passed" and line["branch"] == "patchbot/linux-v1.1"
    assert git(world.remote, "rev-parse", "--verify", "refs/heads/patchbot/linux-v1.1")
    if allowed:
        assert len(world.open_pulls()) == 1 and world.issues() == []
        return
    assert world.open_pulls() == [] and world.issues() == [line["issue"]]
    issue = world.fake.repo(REPO).issues[line["issue"]]
    assert issue["user"] == "github-actions[bot]" and LINE_MARK in issue["body"]
    assert "/compare/patchbot/linux-v1.1?expand=1" in issue["body"]
    assert "Allow GitHub Actions to create and approve pull requests" in issue["body"]
    said = capsys.readouterr().out
    assert "does not let GitHub Actions open pull requests" in said
    # The next run updates that one issue, and opens the PR once the setting is on.
    assert cli.main(base) == 0 and world.issues() == [line["issue"]]
    world.fake.repo(REPO).actions_may_open_prs = True
    assert cli.main(base) == 0
    assert len(world.open_pulls()) == 1 and world.issues() == []


def test_a_superseded_prs_branch_is_deleted(world: World) -> None:
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.run()
    world.tag_upstream("v1.2", "two\nnew lines\n" + numbered())
    [second] = world.run()
    assert "deleted branch patchbot/linux-v1.1" in second.actions
    refs = git(world.remote, "for-each-ref", "--format=%(refname)").split()
    assert refs == ["refs/heads/main", "refs/heads/patchbot/linux-v1.2"]


# -- the weekly job's logic against the in-memory reporter (no HTTP) --------------------
def test_logic_pass_fail_supersede_with_the_fake_reporter(world: World) -> None:
    gh = FakeReporter()
    world.gh = gh  # type: ignore[assignment]
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    world.check.verdicts["v1.1"] = Conclusion.FAILURE
    [failed] = world.run()
    assert failed.status == LineStatus.FAILED
    issue = gh.threads[num(failed.issue)]
    assert issue.head is None and LINE_MARK in issue.body and "v1.1" in issue.title
    world.tag_upstream("v1.2", "two\nnew lines\n" + numbered())
    [passed] = world.run()
    assert passed.status == LineStatus.PASSED and issue.state == "closed"
    assert issue.comments == [
        f"The series now passes the full check on `v1.2`: see #{passed.pr}. Closing."]
    world.tag_upstream("v1.3", "three\nnew\nlines\n" + numbered())
    [newer] = world.run()
    assert gh.threads[num(passed.pr)].state == "closed"
    assert gh.branches_deleted == ["patchbot/linux-v1.2"]
    assert [t.number for t in gh.threads.values() if t.state == "open"] == [newer.pr]


def test_logic_pr_refused_falls_back_to_the_issue_with_the_fake_reporter(world: World) -> None:
    gh = FakeReporter(login="github-actions[bot]")
    gh.pulls_forbidden = True
    world.gh = gh  # type: ignore[assignment]
    world.tag_upstream("v1.1", "new top line\n" + numbered())
    [res] = world.run()
    assert res.status == LineStatus.PASSED and res.pr is None
    issue = gh.threads[num(res.issue)]
    assert "passed" in issue.title and "compare/patchbot/linux-v1.1" in issue.body
    assert any("could not open a pull request" in a for a in res.actions)
    [again] = world.run()
    assert again.issue == res.issue and len(gh.threads) == 1
