"""The client against the fake where GitHub behaves beyond its REST description (issue 11).

Each test drives real HTTP through PyGithub to `tests.helpers.fakes_github`, which answers
with GitHub's statuses, headers and messages; every request is also checked
against the REST description by the fixture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fakes_github import (
    ACTIONS_USER,
    APP_ID,
    PAT,
    FakeGitHub,
    PullRequest,
    fake_github,
)
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind, JobOutcome
from ukl_patchbot.github.client import (
    Credentials,
    GitHubClient,
    PullRequestsForbidden,
    RateLimited,
    ReportError,
)
from ukl_patchbot.github.publish import MARKER, MAX_SUMMARY
from ukl_patchbot.github.transport import SECONDARY_WAIT

__all__ = ["fake_github"]

REPO = "ukl/patches"
SHA = "b2" * 20
MARK = "<!-- ukl-patchbot:track linux 6.1 -->"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def app(fake: FakeGitHub, **kw: object) -> GitHubClient:
    creds = Credentials(api_url=fake.url, app_id=APP_ID, private_key=fake.private_key_pem)
    return GitHubClient(creds, pace=False, **kw)  # type: ignore[arg-type]


def token(fake: FakeGitHub, tok: str = PAT, **kw: object) -> GitHubClient:
    return GitHubClient(Credentials(api_url=fake.url, token=tok), pace=False,
                        **kw)  # type: ignore[arg-type]


def outcome(summary: str = "fine", conclusion: Conclusion = Conclusion.SUCCESS) -> JobOutcome:
    job = Job(JobKind.CHECK, component="linux", repo=REPO, pr=7, head_sha=SHA)
    return JobOutcome(job, conclusion, "checked", summary)


@pytest.fixture
def gh_repo(fake_github: FakeGitHub) -> FakeGitHub:
    r = fake_github.repo(REPO)
    r.pulls[7] = PullRequest(7, SHA, ["patchsets/linux/x.patch"])
    r.permissions.update({"teamdev": "write", "rita": "read"})
    return fake_github


# -- 1. the weekly job's default token --------------------------------------------------
def test_a_workflow_token_learns_its_login_without_get_user(gh_repo: FakeGitHub) -> None:
    gh = token(gh_repo, gh_repo.actions_token())
    assert gh.bot_login(REPO) == ACTIONS_USER
    gh.upsert_comment(REPO, 7, MARKER + "\nfirst")
    gh.upsert_comment(REPO, 7, MARKER + "\nsecond")  # found again by that login: edited
    [c] = gh_repo.repo(REPO).comments.values()
    assert c["body"].endswith("second") and c["user"]["login"] == ACTIONS_USER


def test_a_configured_login_is_not_asked_for(gh_repo: FakeGitHub) -> None:
    gh = GitHubClient(Credentials(api_url=gh_repo.url, token=PAT, login="someone"), pace=False)
    assert gh.bot_login(REPO) == "someone"
    assert gh_repo.calls("GET", r"^/user$") == []
    env = {"PATCHBOT_GITHUB_TOKEN": PAT, "PATCHBOT_GITHUB_LOGIN": "ukl-bot"}
    assert Credentials.from_env(env).login == "ukl-bot"


def test_actions_may_not_open_prs_is_a_clear_error(gh_repo: FakeGitHub) -> None:
    gh_repo.repo(REPO).refs.add("patchbot/linux-v6.1.2")
    gh = token(gh_repo, gh_repo.actions_token())
    with pytest.raises(PullRequestsForbidden) as err:
        gh.open_pull(REPO, head="patchbot/linux-v6.1.2", base="main", title="t",
                     body=MARK, marker=MARK)
    assert "Allow GitHub Actions to create and approve pull requests" in str(err.value)
    assert len(gh_repo.calls("POST", r"/pulls$")) == 1  # a refusal is not retried
    gh_repo.repo(REPO).actions_may_open_prs = True
    th = gh.open_pull(REPO, head="patchbot/linux-v6.1.2", base="main", title="t",
                      body=MARK, marker=MARK)
    assert gh_repo.repo(REPO).pulls[th.number].user == ACTIONS_USER


# -- 2. check run output limits are bytes -----------------------------------------------
def test_a_long_report_of_wide_characters_completes_the_check_run(gh_repo: FakeGitHub) -> None:
    gh = app(gh_repo)
    summary = "| ✅ | ⚠️ classic → ukl · 6.1 – 6.2 |\n" * 3000  # ~120 kB, ~36k characters
    out = outcome(summary, Conclusion.FAILURE)
    cid = gh.start_check(out.job, None)
    assert gh.publish(out, cid, "https://logs.example.org/run/9/").failures == ()
    run = gh_repo.repo(REPO).check_runs[cid or 0]
    assert run["status"] == "completed" and run["conclusion"] == "failure"
    shown = run["output"]["summary"]
    assert len(shown.encode()) <= MAX_SUMMARY
    assert "Report truncated" in shown and "https://logs.example.org/run/9/" in shown
    assert "\ufffd" not in shown  # never half a character


# -- 3. permission from the API, cached --------------------------------------------------
def test_permission_is_asked_of_the_api_and_remembered(gh_repo: FakeGitHub) -> None:
    gh = token(gh_repo)
    assert gh.may_command(REPO, "teamdev") and gh.may_command(REPO, "teamdev")
    assert not gh.may_command(REPO, "rita") and not gh.may_command(REPO, "stranger")
    asked = gh_repo.calls("GET", r"/collaborators/[^/]+/permission$")
    assert [r.path.split("/")[-2] for r in asked] == ["teamdev", "rita", "stranger"]
    gh._clock = lambda: 1e12  # five minutes later: asked again (a writer may have lost it)
    gh.may_command(REPO, "teamdev")
    assert len(gh_repo.calls("GET", r"/collaborators/teamdev/permission$")) == 2


# -- 4. rate limits ---------------------------------------------------------------------
def test_a_secondary_limit_without_retry_after_waits_a_minute(gh_repo: FakeGitHub) -> None:
    sleeps = Sleeps()
    gh = token(gh_repo, sleep=sleeps)
    gh_repo.secondary_limit("GET", r"/pulls/7$")
    assert gh.pr_head(REPO, 7) == SHA
    assert sleeps == [SECONDARY_WAIT]
    gh_repo.secondary_limit("GET", r"/pulls/7$", retry_after=7)  # GitHub's own wait wins
    assert gh.pr_head(REPO, 7) == SHA and sleeps == [SECONDARY_WAIT, 7.0]


def test_a_429_without_retry_after_waits_a_minute(gh_repo: FakeGitHub) -> None:
    sleeps = Sleeps()
    gh = token(gh_repo, sleep=sleeps)
    gh_repo.secondary_limit("GET", r"/pulls/7$", status=429, times=2)
    assert gh.pr_head(REPO, 7) == SHA
    assert sleeps == [SECONDARY_WAIT, 2 * SECONDARY_WAIT]


def test_a_long_limit_is_a_report_to_publish_again(gh_repo: FakeGitHub) -> None:
    sleeps = Sleeps()
    gh = token(gh_repo, sleep=sleeps, max_wait=120.0)
    gh_repo.primary_limit("POST", r"/issues/7/comments$", reset_in=1800)
    with pytest.raises(RateLimited) as err:
        gh.reply(REPO, 7, "hello")
    assert 1700 < err.value.wait <= 1802 and sleeps == []
    gh_repo.primary_limit("POST", r"/statuses/", reset_in=900)
    published = gh.publish(outcome(), None)
    assert published.failures == ("commit statuses",)
    assert published.retry_after is not None and 800 < published.retry_after <= 902
    assert any(MARKER in c["body"] for c in gh_repo.repo(REPO).comments.values())
    gh_repo.fail("GET", r"/pulls/7$", 403)  # a plain 403 is a refusal: not retried, not later
    with pytest.raises(ReportError) as refused:
        gh.pr_head(REPO, 7)
    assert not isinstance(refused.value, RateLimited) and sleeps == []


# -- 7. check runs: links, lost answers, re-runs ---------------------------------------
def test_check_runs_link_the_logs(gh_repo: FakeGitHub) -> None:
    gh = app(gh_repo)
    out = outcome()
    link = "https://logs.example.org/patchbot/k/"
    cid = gh.start_check(out.job, None, queued=True, details_url=link)
    assert gh_repo.repo(REPO).check_runs[cid or 0]["details_url"] == link
    gh.publish(out, cid, link)
    assert gh_repo.repo(REPO).check_runs[cid or 0]["details_url"] == link


def test_a_lost_answer_does_not_create_a_second_check_run(gh_repo: FakeGitHub) -> None:
    gh = app(gh_repo, sleep=lambda _s: None)
    gh_repo.fail("POST", r"/check-runs$", 502, apply=True)
    out = outcome()
    cid = gh.start_check(out.job, None)
    runs = gh_repo.repo(REPO).check_runs
    assert list(runs) == [cid] and runs[cid or 0]["external_id"] == out.job.key


def test_a_lost_answer_does_not_reply_twice(gh_repo: FakeGitHub) -> None:
    gh = token(gh_repo, sleep=lambda _s: None)
    gh_repo.fail("POST", r"/issues/7/comments$", 502, apply=True)
    gh.reply(REPO, 7, "@rita only writers can run that")
    assert [c["body"] for c in gh_repo.repo(REPO).comments.values()] == [
        "@rita only writers can run that"]


def test_a_completed_run_is_never_moved_back(gh_repo: FakeGitHub) -> None:
    gh = app(gh_repo)
    out = outcome()
    first = gh.start_check(out.job, None)
    gh.publish(out, first)
    second = gh.start_check(out.job, first, queued=True)  # the job is run again
    runs = gh_repo.repo(REPO).check_runs
    assert second != first and runs[first or 0]["history"] == ["in_progress", "completed"]
    assert runs[second or 0]["status"] == "queued"


def test_app_lists_a_hundred_at_a_time(gh_repo: FakeGitHub) -> None:
    r = gh_repo.repo(REPO)
    for i in range(150):
        r.comments[i] = {"id": i, "issue": 7, "body": f"chatter {i}",
                         "user": {"login": "alice", "id": 1, "type": "User"},
                         "url": f"{gh_repo.url}/repos/{REPO}/issues/comments/{i}"}
    gh = app(gh_repo)
    gh.upsert_comment(REPO, 7, MARKER + "\nreport")
    gh.upsert_comment(REPO, 7, MARKER + "\nreport 2")  # found on the second page
    pages = gh_repo.calls("GET", r"/issues/7/comments$")
    assert {q for r in pages for q in r.query.get("per_page", [])} == {"100"}
    assert sum(MARKER in c["body"] for c in r.comments.values()) == 1


def test_a_pr_left_by_another_identity_is_adopted(gh_repo: FakeGitHub) -> None:
    r = gh_repo.repo(REPO)
    r.pulls[3] = PullRequest(3, SHA, title="old", body=MARK + "\nold", head_ref="patchbot/l",
                             user=ACTIONS_USER)  # opened before the App was installed
    gh = app(gh_repo)
    th = gh.open_pull(REPO, head="patchbot/l", base="main", title="new", body=MARK + "\nnew",
                      marker=MARK)
    assert th.number == 3 and gh_repo.calls("POST", r"/pulls$") == []
    assert [p.number for p in r.pulls.values() if p.head_ref == "patchbot/l"] == [3]


def test_a_superseded_branch_is_deleted(gh_repo: FakeGitHub) -> None:
    r = gh_repo.repo(REPO)
    r.refs.add("patchbot/linux-v6.1.1")
    gh = token(gh_repo)
    gh.delete_branch(REPO, "patchbot/linux-v6.1.1")
    gh.delete_branch(REPO, "patchbot/linux-v6.1.1")  # gone already: fine
    assert r.refs == set()


def test_errors_carry_githubs_words(gh_repo: FakeGitHub) -> None:
    gh = token(gh_repo)
    with pytest.raises(ReportError, match="Not Found"):
        gh.pr_head(REPO, 99)


def test_the_lines_issue_survives_a_change_of_credentials(gh_repo: FakeGitHub) -> None:
    """GITHUB_TOKEN opened the issue; the App (or a writer's token) finds and keeps it."""
    r = gh_repo.repo(REPO)
    r.permissions["maint"] = "maintain"
    old = token(gh_repo, gh_repo.actions_token()).open_issue(
        REPO, title="fails", body=MARK + "\nreport", marker=MARK)
    r.issues[old.number + 1] = {"title": "copy", "body": MARK, "state": "open",
                                "state_reason": None, "user": "rita"}  # a reader's copy
    gh = app(gh_repo)
    assert [t.number for t in gh.find_marked(REPO, MARK, pulls=False)] == [old.number]
    again = gh.open_issue(REPO, title="fails", body=MARK + "\nreport 2", marker=MARK)
    assert again.number == old.number and len(r.issues) == 2


def test_the_installation_is_looked_up_again_after_an_hour(gh_repo: FakeGitHub) -> None:
    gh = app(gh_repo)
    now = [0.0]
    gh._clock = lambda: now[0]
    gh.pr_head(REPO, 7)
    gh.pr_head(REPO, 7)
    assert len(gh_repo.calls("GET", r"/installation$")) == 1
    now[0] = 3601.0  # reinstalled meanwhile, perhaps: not cached forever
    gh.pr_head(REPO, 7)
    assert len(gh_repo.calls("GET", r"/installation$")) == 2


def test_the_fakes_errors_are_checked_against_githubs_error_schemas(gh_repo: FakeGitHub) -> None:
    spec = gh_repo.spec
    path = f"/repos/{REPO}/pulls"
    assert spec.check_error("POST", path, 422, {"message": "Validation Failed"})  # no doc url
    bad = {"message": "Validation Failed", "documentation_url": "d", "errors": [{"field": "x"}]}
    assert any("'code' is a required property" in p for p in spec.check_error("POST", path, 422, bad))
    good = {"message": "Validation Failed", "documentation_url": "d",
            "errors": [{"resource": "PullRequest", "code": "custom", "message": "exists"}]}
    assert spec.check_error("POST", path, 422, good) == []


RECORDED = Path(__file__).parent / "data" / "github-errors"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / f"{name}.json").read_text())  # type: ignore[no-any-return]


def test_recorded_github_errors(gh_repo: FakeGitHub) -> None:
    """GitHub's own error answers, replayed: each leads where the client promises."""
    assert sorted(p.stem for p in RECORDED.glob("*.json")) == [
        "check-run-summary-bytesize", "create-pull-actions-not-permitted",
        "get-user-installation-token", "primary-rate-limit", "pull-already-exists",
        "secondary-rate-limit"]
    gh_repo.replay(recorded("get-user-installation-token"))
    assert token(gh_repo).bot_login(REPO) == ACTIONS_USER

    gh_repo.repo(REPO).refs.add("patchbot/linux-v6.1.2")
    gh_repo.replay(recorded("create-pull-actions-not-permitted"))
    with pytest.raises(PullRequestsForbidden):
        token(gh_repo).open_pull(REPO, head="patchbot/linux-v6.1.2", base="main", title="t",
                                 body=MARK, marker=MARK)

    sleeps = Sleeps()
    gh = app(gh_repo, sleep=sleeps)
    gh_repo.replay(recorded("check-run-summary-bytesize"))
    with pytest.raises(ReportError, match="maximum bytesize") as err:
        gh.start_check(outcome().job, None)
    assert not isinstance(err.value, RateLimited) and sleeps == []

    gh_repo.replay(recorded("secondary-rate-limit"))
    assert gh.pr_head(REPO, 7) == SHA and sleeps == [SECONDARY_WAIT]

    gh_repo.replay(recorded("primary-rate-limit"))
    with pytest.raises(RateLimited) as limited:
        gh.pr_head(REPO, 7)
    assert 3500 < limited.value.wait <= 3602

    gh_repo.repo(REPO).pulls[12] = PullRequest(12, SHA, head_ref="patchbot/linux-v6.1.2",
                                               user="someone-else")
    gh_repo.replay(recorded("pull-already-exists"))
    th = app(gh_repo).open_pull(REPO, head="patchbot/linux-v6.1.2", base="main", title="t",
                                body=MARK + "\nnew", marker=MARK)
    assert th.number == 12 and gh_repo.repo(REPO).pulls[12].body == MARK + "\nnew"
