"""Pull request content for the pipeline: read through the API (fake GitHub), checked, used.

The PR is untrusted: its paths, patch diff paths and kconfig fragments are
checked before anything is built, and the pipeline sees the PR's series and
fragments with the bot's own code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fakes_github import PAT, FakeGitHub, fake_github
from tests.helpers.gitrepo import REPO_ROOT
from ukl_patchbot.check import pipeline
from ukl_patchbot.check import report as cr
from ukl_patchbot.core import config
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind
from ukl_patchbot.dispatch import execute, prsource
from ukl_patchbot.github.client import Credentials, GitHubClient, TreeLimits

__all__ = ["fake_github"]

REPO = "ukl/patches"
SHA = "c0ffee" + "1" * 34
LINUX_PATCH = "patchsets/linux/6.1/0001-x86-add-CONFIG_UNIKERNEL_LINUX-and-CONFIG_UKL_ARCHIV.patch"


def real_files() -> dict[str, bytes]:
    """This checkout's series and fragments, plus files a PR carries that must not be read."""
    files = {
        p.relative_to(REPO_ROOT).as_posix(): p.read_bytes()
        for d in ("patchsets/linux/6.1", "patchsets/linux/6.12", "patchsets/glibc", "kconfigs")
        for p in sorted((REPO_ROOT / d).iterdir())
        if p.is_file()
    }
    files["patchsets/README.md"] = b"# not a series file\n"
    files["ukl_patchbot/pipeline.py"] = b"raise SystemExit('PR code must never run')\n"
    files["patchbot.toml"] = b'[components.linux]\nseries = "/etc"\n'
    return files


def pr_files(**changes: bytes | tuple[str, bytes] | None) -> dict[str, bytes | tuple[str, bytes]]:
    """`real_files` with ``changes`` (path → new content, or None to drop it)."""
    files: dict[str, bytes | tuple[str, bytes]] = dict(real_files())
    for path, data in changes.items():
        if data is None:
            files.pop(path, None)
        else:
            files[path] = data
    return files


def with_line(patch: bytes, old: bytes, new: bytes) -> bytes:
    assert old in patch
    return patch.replace(old, new, 1)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return dataclasses.replace(config.load(REPO_ROOT / "patchbot.toml"),
                               cache_dir=tmp_path / "cache")


@pytest.fixture
def gh(fake_github: FakeGitHub) -> Iterator[GitHubClient]:
    """A token client on the fake, also handed to prsource as the worker does."""
    client = GitHubClient(Credentials(api_url=fake_github.url, token=PAT), pace=False,
                          attempts=2, sleep=lambda _s: None)
    prsource.use_github(client)
    yield client
    prsource.use_github(None)


def put(fake: FakeGitHub, files: dict[str, bytes | tuple[str, bytes]], sha: str = SHA) -> None:
    fake.repo(REPO).put_commit(sha, files)


# -- reading the tree ---------------------------------------------------------------


def test_reads_only_the_prefixes_at_the_sha(fake_github: FakeGitHub, gh: GitHubClient) -> None:
    files = real_files()
    put(fake_github, dict(files))
    got = gh.read_tree_files(REPO, SHA, ("patchsets/linux/", "kconfigs/"))
    want = {p: d for p, d in files.items() if p.startswith(("patchsets/linux/", "kconfigs/"))}
    assert got == want and len(got) >= 8
    trees = fake_github.calls("GET", r"/git/trees/")
    assert [t.path for t in trees] == [f"/repos/{REPO}/git/trees/{SHA}"]
    assert trees[0].query == {"recursive": ["1"]}
    # One download per distinct content (a blob shared by both Linux lines comes once).
    assert len(fake_github.calls("GET", r"/git/blobs/")) == len(set(want.values()))


@pytest.mark.parametrize(
    ("limits", "complaint"),
    [
        (TreeLimits(max_files=3), "more than 3 files"),
        (TreeLimits(max_file_bytes=1000), "more than 1000 allowed"),
        (TreeLimits(max_total_bytes=5000), "exceed 5000 bytes in total"),
    ],
)
def test_limits_stop_before_any_download(
    fake_github: FakeGitHub, gh: GitHubClient, limits: TreeLimits, complaint: str
) -> None:
    put(fake_github, pr_files())
    with pytest.raises(UserError, match=complaint):
        gh.read_tree_files(REPO, SHA, ("patchsets/linux/", "kconfigs/"), limits)
    assert fake_github.calls("GET", r"/git/blobs/") == []


@pytest.mark.parametrize(
    ("path", "entry", "what"),
    [
        (LINUX_PATCH, ("120000", b"/etc/shadow"), "a symlink"),
        ("kconfigs", ("120000", b"/etc"), "a symlink"),  # the prefix's directory itself
        ("patchsets/glibc", ("160000", b"f" * 40), "a submodule"),
    ],
)
def test_links_and_submodules_are_refused(
    fake_github: FakeGitHub, gh: GitHubClient, path: str, entry: tuple[str, bytes], what: str
) -> None:
    files = {p: d for p, d in pr_files().items() if not p.startswith(path + "/")}
    files[path] = entry
    put(fake_github, files)
    with pytest.raises(UserError, match=f"{path}: {what} is not allowed"):
        gh.read_tree_files(REPO, SHA, ("patchsets/linux/", "patchsets/glibc/", "kconfigs/"))
    assert fake_github.calls("GET", r"/git/blobs/") == []


# -- paths and contents ---------------------------------------------------------------

ALLOWED = ("patchsets/linux/6.1", "patchsets/glibc", "kconfigs")


@pytest.mark.parametrize(
    "path",
    [
        "patchsets/linux/../../etc/passwd",
        "kconfigs/../ukl_patchbot/pipeline.py",
        "/etc/passwd",
        "patchsets/linux/./series",
        "kconfigs/.git",
        "patchsets/linux/.git/config",
        "patchsets/linux/sub/0001-x.patch",
        "patchsets/other/series",
        "kconfigs/.hidden.config",
        "kconfigs/a\\b.config",
        "kconfigs/bad name.config",
        "kconfigs//base.config",
        "",
    ],
)
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(UserError, match="pull request path"):
        prsource.check_pr_path(path, ALLOWED)


@pytest.mark.parametrize("path", ["patchsets/linux/6.1/series", "patchsets/glibc/patchset.toml",
                                  "kconfigs/ukl.config", LINUX_PATCH])
def test_plain_paths_pass(path: str) -> None:
    assert prsource.check_pr_path(path, ALLOWED) == path


@pytest.mark.parametrize(
    "line",
    ['CONFIG_INITRAMFS_SOURCE="/etc"', 'CONFIG_CMDLINE="$(shell id)"', "include /etc/passwd",
     "CONFIG_X=y; rm -rf /", 'CONFIG_EXTRA_FIRMWARE_DIR="~"'],
)
def test_kconfig_lines_that_could_reach_the_host_are_refused(line: str) -> None:
    data = (REPO_ROOT / "kconfigs" / "base.config").read_bytes() + line.encode() + b"\n"
    with pytest.raises(UserError, match=r"kconfigs/base.config:\d+: not a plain kconfig line"):
        prsource.check_kconfig("kconfigs/base.config", data)


def test_this_checkouts_fragments_pass() -> None:
    for frag in sorted((REPO_ROOT / "kconfigs").iterdir()):
        prsource.check_kconfig(f"kconfigs/{frag.name}", frag.read_bytes())


# -- the PR's checkout ------------------------------------------------------------------


def test_pr_config_points_at_the_prs_copy(fake_github: FakeGitHub, gh: GitHubClient,
                                          cfg: Config) -> None:
    patch = (REPO_ROOT / LINUX_PATCH).read_bytes()
    changed = with_line(patch, b"\n\n", b"\n\nA line only this pull request has.\n\n")
    put(fake_github, pr_files(**{LINUX_PATCH: changed}))
    prc = prsource.pr_config(cfg, REPO, SHA)
    dest = cfg.cache_dir / "pr-trees" / "ukl" / "patches" / SHA
    assert prc.root == dest and prc.cache_dir == cfg.cache_dir
    # No tag chose a line yet: the newest line with a series in the PR's tree.
    assert prc.component("linux").series_dir == dest / "patchsets" / "linux" / "6.12"
    assert prc.for_tag("linux", "v6.1.192").component("linux").series_dir == (
        dest / "patchsets" / "linux" / "6.1")
    assert prc.component("glibc").series_dir == dest / "patchsets" / "glibc"
    assert (dest / LINUX_PATCH).read_bytes() == changed
    assert (dest / "kconfigs" / "ukl.config").read_bytes() == (
        REPO_ROOT / "kconfigs" / "ukl.config").read_bytes()
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert not any(p.startswith(("ukl_patchbot", "patchbot.toml", "patchsets/README"))
                   for p in written)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no temp dir left
    # A commit never changes: the second job on it reads nothing from GitHub.
    n = len(fake_github.requests)
    assert prsource.pr_config(cfg, REPO, SHA) == prc
    assert len(fake_github.requests) == n


def test_an_escaping_path_in_the_listing_writes_nothing(fake_github: FakeGitHub,
                                                       gh: GitHubClient, cfg: Config) -> None:
    put(fake_github, pr_files(**{"patchsets/linux/6.1/../../../etc/passwd": b"root::0:0::/:/bin/sh\n"}))
    with pytest.raises(UserError, match=r"patchsets/linux/6\.1/\.\./\.\./\.\./etc/passwd.*escapes"):
        prsource.pr_config(cfg, REPO, SHA)
    assert not (cfg.cache_dir / "pr-trees" / "ukl" / "patches" / SHA).exists()


@pytest.mark.parametrize(("repo", "sha"), [("../x", SHA), ("a/b/c", SHA), ("ukl/..", SHA),
                                           (REPO, "HEAD"), (REPO, "../" + SHA[3:])])
def test_odd_repo_or_sha_is_refused(cfg: Config, repo: str, sha: str) -> None:
    with pytest.raises(UserError, match="unusual"):
        prsource.pr_config(cfg, repo, sha, reader=None)
    assert not (cfg.cache_dir / "pr-trees").exists()


# -- execute_job ----------------------------------------------------------------------


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Config, pipeline.CheckRequest]]:
    """pipeline.run_check replaced: records its arguments and returns a passing report."""
    calls: list[tuple[Config, pipeline.CheckRequest]] = []

    def fake_run_check(c: Config, req: pipeline.CheckRequest, **_kw: object) -> cr.CheckReport:
        calls.append((c, req))
        return cr.CheckReport("linux", req.tag or "v6.1.999", cr.Verdict.PASS,
                              cr.Attribution.NONE, "all passed", glibc_tag=req.glibc_tag)

    monkeypatch.setattr(pipeline, "run_check", fake_run_check)
    return calls


def pr_job(component: str = "linux", tag: str | None = None) -> Job:
    return Job(JobKind.CHECK, component=component, tag=tag, repo=REPO, pr=7, head_sha=SHA)


def test_a_pr_job_checks_the_prs_series(fake_github: FakeGitHub, gh: GitHubClient, cfg: Config,
                                        seen: list[tuple[Config, pipeline.CheckRequest]]) -> None:
    patch = (REPO_ROOT / LINUX_PATCH).read_bytes()
    changed = with_line(patch, b"\n\n", b"\n\nOnly in the PR.\n\n")
    put(fake_github, pr_files(**{LINUX_PATCH: changed}))
    out = execute.execute_job(pr_job(tag="v6.1.192"), cfg)
    assert out.conclusion == Conclusion.SUCCESS, out.summary_md
    (used, req), = seen
    series_dir = used.component("linux").series_dir
    assert series_dir.is_relative_to(cfg.cache_dir / "pr-trees") and series_dir != (
        cfg.component("linux").series_dir)
    assert (series_dir / Path(LINUX_PATCH).name).read_bytes() == changed
    assert used.root / "kconfigs" == series_dir.parent.parent.parent / "kconfigs"
    assert req == pipeline.CheckRequest(tag="v6.1.192")


def test_a_job_without_a_repo_checks_this_checkout(
    cfg: Config, seen: list[tuple[Config, pipeline.CheckRequest]]
) -> None:
    out = execute.execute_job(Job(JobKind.CHECK, tag="v6.1.192"), cfg)
    assert out.conclusion == Conclusion.SUCCESS
    assert seen == [(cfg.for_tag("linux", "v6.1.192"), pipeline.CheckRequest(tag="v6.1.192"))]
    assert seen[0][0].component("linux").series_dir == REPO_ROOT / "patchsets" / "linux" / "6.1"


def test_a_glibc_job_checks_linux_at_the_prs_linux_base(
    fake_github: FakeGitHub, gh: GitHubClient, cfg: Config,
    seen: list[tuple[Config, pipeline.CheckRequest]],
) -> None:
    # The PR moves the Linux base: the glibc check must follow the PR, not this checkout.
    # glibc pairs with every Linux line; its job checks the newest line with a series.
    put(fake_github, pr_files(**{"patchsets/linux/6.12/patchset.toml": b'base = "v6.12.116"\n'}))
    out = execute.execute_job(pr_job("glibc", tag="glibc-2.36-deb12u99"), cfg)
    assert out.conclusion == Conclusion.SUCCESS, out.summary_md
    (_used, req), = seen
    assert req == pipeline.CheckRequest(tag="v6.12.116", glibc_tag="glibc-2.36-deb12u99")


def test_a_glibc_job_from_the_weekly_job_uses_this_checkouts_linux_base(
    cfg: Config, seen: list[tuple[Config, pipeline.CheckRequest]]
) -> None:
    from ukl_patchbot.upstream import mirror as upstream

    execute.execute_job(Job(JobKind.CHECK, component="glibc", tag="glibc-2.36-deb12u99"), cfg)
    base = upstream.series_base(cfg.component("linux"))
    assert base and seen[0][1] == pipeline.CheckRequest(tag=base, glibc_tag="glibc-2.36-deb12u99")


def test_a_patch_whose_diff_leaves_the_tree_builds_nothing(
    fake_github: FakeGitHub, gh: GitHubClient, cfg: Config,
    seen: list[tuple[Config, pipeline.CheckRequest]],
) -> None:
    patch = (REPO_ROOT / LINUX_PATCH).read_bytes()
    first = patch.split(b"\n+++ b/", 1)[1].split(b"\n", 1)[0]
    evil = with_line(patch, b"+++ b/" + first, b"+++ b/../../etc/passwd")
    put(fake_github, pr_files(**{LINUX_PATCH: evil}))
    out = execute.execute_job(pr_job(), cfg)
    assert out.conclusion == Conclusion.ERROR
    assert "../../etc/passwd" in out.summary_md and "escapes the tree" in out.summary_md
    assert Path(LINUX_PATCH).name in out.summary_md  # names the file (and line) to fix
    assert seen == []


def test_a_bad_kconfig_fragment_builds_nothing(
    fake_github: FakeGitHub, gh: GitHubClient, cfg: Config,
    seen: list[tuple[Config, pipeline.CheckRequest]],
) -> None:
    put(fake_github, pr_files(**{"kconfigs/classic.config": b'CONFIG_INITRAMFS_SOURCE="/root"\n'}))
    out = execute.execute_job(pr_job(), cfg)
    assert out.conclusion == Conclusion.ERROR and "kconfigs/classic.config:1" in out.summary_md
    assert seen == []


def test_github_failing_is_raised_for_the_worker_to_retry(
    fake_github: FakeGitHub, gh: GitHubClient, cfg: Config,
    seen: list[tuple[Config, pipeline.CheckRequest]],
) -> None:
    put(fake_github, pr_files())
    fake_github.fail("GET", r"/git/trees/", 502, times=2)
    with pytest.raises(InfraError, match="list the tree"):
        execute.execute_job(pr_job(), cfg)
    assert seen == []
    out = execute.execute_job(pr_job(), cfg)  # the retry, GitHub answering again
    assert out.conclusion == Conclusion.SUCCESS and len(seen) == 1


def test_without_a_registered_client_the_environment_is_used(
    fake_github: FakeGitHub, cfg: Config, monkeypatch: pytest.MonkeyPatch,
    seen: list[tuple[Config, pipeline.CheckRequest]],
) -> None:
    put(fake_github, pr_files())
    prsource.use_github(None)
    for name in ("PATCHBOT_GITHUB_APP_ID", "PATCHBOT_GITHUB_TOKEN", "PATCHBOT_GITHUB_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATCHBOT_GITHUB_API_URL", fake_github.url)
    monkeypatch.setenv("PATCHBOT_GITHUB_PACE", "0")
    with pytest.raises(InfraError, match="no GitHub credentials"):
        execute.execute_job(pr_job(), cfg)
    monkeypatch.setenv("PATCHBOT_GITHUB_TOKEN", PAT)
    out = execute.execute_job(pr_job(), cfg)
    assert out.conclusion == Conclusion.SUCCESS
    assert seen[0][0].component("linux").series_dir.is_relative_to(cfg.cache_dir / "pr-trees")


# -- through the worker -------------------------------------------------------------------


def test_worker_reports_a_pr_whose_patch_escapes_the_tree(
    tmp_path: Path, fake_github: FakeGitHub, cfg: Config,
    seen: list[tuple[Config, pipeline.CheckRequest]],
) -> None:
    """Webhook trigger → worker → execute_job (the default executor) → check run and comment."""
    from tests.helpers.fakes_github import APP_ID, PullRequest
    from ukl_patchbot.bot.jobqueue import JobQueue
    from ukl_patchbot.bot.routing import Command, Trigger
    from ukl_patchbot.bot.runtime import WorkerSettings
    from ukl_patchbot.bot.worker import BotWorker

    app = GitHubClient(Credentials(api_url=fake_github.url, app_id=APP_ID,
                                   private_key=fake_github.private_key_pem), pace=False)
    prsource.use_github(app)
    try:
        patch = (REPO_ROOT / LINUX_PATCH).read_bytes()
        first = patch.split(b"\n+++ b/", 1)[1].split(b"\n", 1)[0]
        good, bad = SHA, "bad" + SHA[3:]
        put(fake_github, pr_files(), good)
        put(fake_github, pr_files(**{LINUX_PATCH: with_line(
            patch, b"+++ b/" + first, b"+++ b/../../etc/passwd")}), bad)
        repo = fake_github.repo(REPO)
        repo.pulls[7] = PullRequest(7, good, [LINUX_PATCH])
        repo.pulls[8] = PullRequest(8, bad, [LINUX_PATCH])
        repo.permissions["alice"] = "write"  # the PRs' author: built without an approval
        queue = JobQueue(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
        BotWorker(queue, cfg, app, settings=WorkerSettings(lease=5, retry_delay=0.05),
                  owner="test-worker")  # executor: the default, execute.execute_job
        for n, (pr, sha) in enumerate(((7, good), (8, bad))):
            queue.submit_trigger(Trigger(delivery_id=f"d{n}", event="pull_request", repo=REPO,
                                         command=Command.CHECK, actor="alice", pr=pr,
                                         head_sha=sha))
        queue.drain(timeout=30)
    finally:
        prsource.use_github(None)
    runs = {r["head_sha"]: r for r in repo.check_runs.values()}
    assert runs[good]["conclusion"] == "success"
    assert runs[bad]["conclusion"] == "action_required"
    assert "../../etc/passwd" in runs[bad]["output"]["summary"]
    bodies = {c["issue"]: str(c["body"]) for c in repo.comments.values()}
    assert "escapes the tree" in bodies[8] and "escapes the tree" not in bodies[7]
    assert len(seen) == 1 and seen[0][0].component("linux").series_dir.is_relative_to(
        cfg.cache_dir / "pr-trees" / "ukl" / "patches" / good)


def test_a_pr_rebase_job_rebases_the_prs_series(
    fake_github: FakeGitHub, gh: GitHubClient, cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ukl_patchbot.rebase import engine as rebase
    from ukl_patchbot.rebase.report import PatchResult, PatchStatus, RebaseReport

    calls: list[tuple[Path, str, bool]] = []

    def fake_rebase(c: Config, component: str, tag: str, **kw: object) -> RebaseReport:
        calls.append((c.component(component).series_dir, tag, bool(kw.get("write"))))
        return RebaseReport(component, "v6.1.170", tag,
                            (PatchResult("0001-x.patch", "x", PatchStatus.CLEAN),))

    monkeypatch.setattr(rebase, "rebase_series", fake_rebase)
    put(fake_github, pr_files())
    job = Job(JobKind.REBASE, tag="v6.1.192", repo=REPO, pr=7, head_sha=SHA)
    out = execute.execute_job(job, cfg)
    assert out.conclusion == Conclusion.SUCCESS, out.summary_md
    dest = cfg.cache_dir / "pr-trees" / "ukl" / "patches" / SHA
    assert calls == [(dest / "patchsets" / "linux" / "6.1", "v6.1.192", False)]  # never writes
