"""The GitHub side against the fake GitHub (real HTTP; each request checked against the spec)."""

from __future__ import annotations

import logging
import time

import pytest

from tests.helpers.fakes_github import APP_ID, PAT, PAT_USER, FakeGitHub, PullRequest, fake_github
from ukl_patchbot.core.jobs import Annotation, Conclusion, Job, JobKind, JobOutcome, StatusLine
from ukl_patchbot.github.client import Credentials, GitHubClient, ReportError, retry_wait
from ukl_patchbot.github.publish import MARKER, MAX_ANNOTATIONS_PER_REQUEST, MAX_SUMMARY

__all__ = ["fake_github"]

SHA = "a1" * 20
REPO = "ukl/patches"


def client(fake: FakeGitHub, mode: str, **kw: float) -> GitHubClient:
    if mode == "app":
        creds = Credentials(api_url=fake.url, app_id=APP_ID, private_key=fake.private_key_pem)
    else:
        creds = Credentials(api_url=fake.url, token=PAT)
    return GitHubClient(creds, pace=False, **kw)  # type: ignore[arg-type]


def outcome(
    n_annotations: int = 0, summary: str = "all good", conclusion: Conclusion = Conclusion.SUCCESS
) -> JobOutcome:
    job = Job(JobKind.CHECK, component="linux", repo=REPO, pr=7, head_sha=SHA)
    anns = tuple(
        Annotation(
            "patchsets/linux/0003-ukl-linker.patch", i, i, "failure", f"conflict in hunk {i}"
        )
        for i in range(1, n_annotations + 1)
    )
    return JobOutcome(
        job,
        conclusion,
        "series applies, both variants boot",
        summary,
        annotations=anns,
        statuses=(
            StatusLine("patchbot/classic", "success", "built and booted"),
            StatusLine("patchbot/ukl", "success", "marker seen"),
        ),
    )


@pytest.fixture
def repo(fake_github: FakeGitHub) -> FakeGitHub:
    r = fake_github.repo(REPO)
    r.pulls[7] = PullRequest(7, SHA, ["patchsets/linux/0003-ukl-linker.patch"])
    r.permissions.update(
        {
            "maint": "maintain",
            "admin": "admin",
            "writer": "write",
            "reader": "read",
            "triager": "triage",
        }
    )
    return fake_github


@pytest.mark.parametrize("mode", ["app", "token"])
def test_permission_lookup(repo: FakeGitHub, mode: str) -> None:
    gh = client(repo, mode)
    allowed = {
        u: gh.may_command(REPO, u)
        for u in ("maint", "admin", "writer", "reader", "triager", "stranger")
    }
    assert allowed == {
        "maint": True,
        "admin": True,
        "writer": True,
        "reader": False,
        "triager": False,
        "stranger": False,
    }


def test_app_auth_uses_jwt_then_installation_token_and_refreshes(repo: FakeGitHub) -> None:
    repo.token_ttl = 2  # PyGithub refreshes a token that is about to expire
    gh = client(repo, "app")
    assert gh.pr_head(REPO, 7) == SHA
    first = repo.calls("GET", r"/pulls/7$")[-1].auth
    time.sleep(2.5)
    assert gh.pr_files(REPO, 7) == ["patchsets/linux/0003-ukl-linker.patch"]
    later = repo.calls("GET", r"/pulls/7/files$")[-1].auth
    assert len(repo.calls("POST", r"/app/installations/77/access_tokens$")) >= 2
    assert first.startswith("token ghs_") and later.startswith("token ghs_") and first != later
    jwt_calls = repo.calls("GET", r"/repos/[^/]+/[^/]+/installation$")
    assert jwt_calls and all(c.auth.startswith("Bearer ") for c in jwt_calls)
    assert all(c.status < 400 for c in repo.requests)


def test_check_run_lifecycle_with_batched_annotations_and_truncation(repo: FakeGitHub) -> None:
    gh = client(repo, "app")
    out = outcome(
        n_annotations=120,
        summary="| patch | result |\n" + "| x | y |\n" * 9000,
        conclusion=Conclusion.FAILURE,
    )
    cid = gh.start_check(out.job, None, queued=True)
    assert gh.start_check(out.job, cid) == cid
    assert gh.publish(out, cid, "https://logs.example.org/run/1/").failures == ()
    run = repo.repo(REPO).check_runs[cid]  # type: ignore[index]
    assert run["history"] == ["queued", "in_progress", "completed"]
    assert run["conclusion"] == "failure"
    assert len(run["annotations"]) == 120
    sizes = [
        len((c.body or {}).get("output", {}).get("annotations", []))
        for c in repo.calls("PATCH", r"/check-runs/\d+$")
    ]
    assert max(sizes) <= MAX_ANNOTATIONS_PER_REQUEST and sum(sizes) == 120
    summary = run["output"]["summary"]
    assert len(summary) <= MAX_SUMMARY
    assert "Report truncated" in summary and "https://logs.example.org/run/1/" in summary
    assert len(repo.calls("POST", r"/check-runs$")) == 1


def test_token_mode_posts_one_status_per_variant(repo: FakeGitHub) -> None:
    gh = client(repo, "token")
    assert gh.start_check(outcome().job, None) is None  # check runs need an App
    assert gh.publish(outcome(), None, "/srv/out/1").failures == ()
    statuses = repo.repo(REPO).statuses
    assert {(s["context"], s["state"]) for s in statuses} == {
        ("patchbot/classic", "success"),
        ("patchbot/ukl", "success"),
    }
    assert all(s["sha"] == SHA for s in statuses)
    assert not repo.calls("POST", r"/check-runs$")


@pytest.mark.parametrize("mode", ["app", "token"])
def test_sticky_comment_is_edited_in_place(repo: FakeGitHub, mode: str) -> None:
    gh = client(repo, mode)
    gh.publish(outcome(summary="first run"), None)
    gh.publish(outcome(summary="second run", conclusion=Conclusion.FAILURE), None)
    gh.publish(outcome(summary="second run", conclusion=Conclusion.FAILURE), None)
    ours = [c for c in repo.repo(REPO).comments.values() if MARKER in c["body"]]
    assert len(ours) == 1
    assert "second run" in ours[0]["body"] and ours[0].get("edits") == 1
    assert ours[0]["user"]["login"] == (PAT_USER if mode == "token" else "ukl-patchbot[bot]")


def test_marker_copied_by_someone_else_is_not_edited(repo: FakeGitHub) -> None:
    r = repo.repo(REPO)
    r.comments[1] = {
        "id": 1,
        "issue": 7,
        "body": f"{MARKER} fake report",
        "user": {"login": "mallory", "id": 9, "type": "User"},
        "url": f"{repo.url}/repos/{REPO}/issues/comments/1",
    }
    client(repo, "app").publish(outcome(summary="real report"), None)
    assert r.comments[1]["body"] == f"{MARKER} fake report"
    assert sum(MARKER in c["body"] for c in r.comments.values()) == 2


def test_lost_answer_to_comment_post_does_not_duplicate(repo: FakeGitHub) -> None:
    repo.fail("POST", r"/issues/7/comments$", 502, apply=True)  # created, but the answer is lost
    gh = client(repo, "token", sleep=0)  # type: ignore[arg-type]
    gh._sleep = lambda s: None
    assert gh.publish(outcome(summary="once"), None).failures == ()
    ours = [c for c in repo.repo(REPO).comments.values() if MARKER in c["body"]]
    assert len(ours) == 1
    assert len(repo.calls("POST", r"/issues/7/comments$")) == 1


@pytest.mark.parametrize("fault", ["502", "rate-limit-reset", "retry-after", "429"])
def test_transient_failures_are_retried(repo: FakeGitHub, fault: str) -> None:
    headers = {
        "502": {},
        "429": {"Retry-After": "1"},
        "retry-after": {"Retry-After": "1"},
        "rate-limit-reset": {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(int(time.time()) + 1),
        },
    }[fault]
    status = {"502": 502, "429": 429}.get(fault, 403)
    repo.fail("POST", r"/statuses/", status, times=2, headers=headers)
    slept: list[float] = []
    gh = client(repo, "token")
    gh._sleep = slept.append
    assert gh.publish(outcome(), None).failures == ()
    assert len(repo.repo(REPO).statuses) == 2
    assert len(slept) == 2
    if fault != "502":
        assert all(0.5 <= s <= 3 for s in slept), slept  # waited as GitHub said, not blindly


def test_failures_after_retries_are_reported_not_raised(
    repo: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    repo.fail("POST", r"/statuses/", 502, times=100)
    gh = client(repo, "token", attempts=3)
    gh._sleep = lambda s: None
    failures = gh.publish(outcome(), None).failures
    assert failures == ("commit statuses",)
    assert any(MARKER in c["body"] for c in repo.repo(REPO).comments.values())  # still commented
    assert "reporting commit statuses failed" in caplog.text


def test_long_rate_limit_is_not_slept_through(repo: FakeGitHub) -> None:
    repo.fail(
        "GET",
        r"/pulls/7$",
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)},
    )
    gh = client(repo, "token", max_wait=30)
    gh._sleep = lambda s: pytest.fail("slept")  # type: ignore[assignment]
    with pytest.raises(ReportError, match="rate limited"):
        gh.pr_head(REPO, 7)


def test_plain_403_is_not_retried(repo: FakeGitHub) -> None:
    repo.fail("GET", r"/pulls/7$", 403, times=5)
    gh = client(repo, "token")
    with pytest.raises(ReportError):
        gh.pr_head(REPO, 7)
    assert len(repo.calls("GET", r"/pulls/7$")) == 1


def test_retry_wait_reads_headers() -> None:
    from github import GithubException

    assert retry_wait(GithubException(403, {}, {"Retry-After": "7"}), 1) == 7
    reset = time.time() + 10
    w = retry_wait(
        GithubException(
            403, {}, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(reset))}
        ),
        1,
    )
    assert w is not None and 8 <= w <= 12
    assert retry_wait(GithubException(404, {}, {}), 1) is None
    assert retry_wait(GithubException(503, {}, {}), 3) == 8


def test_secrets_stay_out_of_logs_and_reprs(
    repo: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    from ukl_patchbot.core.secrets import RedactingFilter, read_secret

    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactingFilter())
    env = {"PATCHBOT_GITHUB_TOKEN": PAT, "PATCHBOT_GITHUB_API_URL": repo.url}
    creds = Credentials.from_env(env)
    assert PAT not in repr(creds)
    app = Credentials(api_url=repo.url, app_id=APP_ID, private_key=repo.private_key_pem)
    assert "PRIVATE KEY" not in repr(app)
    assert read_secret("PATCHBOT_GITHUB_TOKEN", env) == PAT
    repo.fail("GET", r"/pulls/7$", 502, times=1)
    gh = GitHubClient(creds, pace=False)
    gh._sleep = lambda s: None
    gh.pr_head(REPO, 7)
    logging.getLogger("ukl_patchbot.test").error("careless: token=%s", PAT)
    assert PAT not in caplog.text
    assert "[redacted]" in caplog.text
