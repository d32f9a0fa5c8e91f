"""The trust model and failure visibility, through the real worker and the fake GitHub:
outside contributors' pull requests wait for a maintainer's approval of one head sha, only
our repositories are served, a failed event is reported and can run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.bot_harness import REPO, SHA, Bot
from tests.helpers.fakes_github import FakeGitHub, PullRequest, fake_github
from ukl_patchbot.bot.jobqueue import Submitted
from ukl_patchbot.bot.ledger import JobState
from ukl_patchbot.bot.routing import Command
from ukl_patchbot.bot.triggers import components_touched
from ukl_patchbot.bot.trust import BotPolicy

__all__ = ["fake_github"]

SHA2 = "b2" * 20


@pytest.fixture
def bot(tmp_path: Path, fake_github: FakeGitHub) -> Bot:
    r = fake_github.repo(REPO)
    r.pulls[7] = PullRequest(7, SHA, ["patchsets/linux/6.1/0001-ukl-kconfig.patch"])
    r.permissions.update({"alice": "maintain", "rita": "read"})  # eve: not a collaborator
    b = Bot(tmp_path, fake_github)
    b.worker.policy = BotPolicy(frozenset({REPO}))
    return b


def outsider_pr(bot: Bot, sha: str = SHA) -> Submitted:
    return bot.send(actor="eve", author="eve", head_sha=sha)


def test_outsider_pr_is_not_built_and_says_why_once(bot: Bot) -> None:
    assert outsider_pr(bot) == Submitted.QUEUED
    bot.drain()
    assert bot.run.jobs == []
    runs = list(bot.fake.repo(REPO).check_runs.values())
    assert [r["conclusion"] for r in runs] == ["neutral"]
    assert "approval" in runs[0]["output"]["title"]
    assert len(bot.comments) == 1 and "/patchbot check" in str(bot.comments[0]["body"])
    # The same head again (a reopen: new delivery, same identity) adds nothing.
    bot.send(actor="eve", author="eve", event="pull_request")
    bot.drain()
    assert bot.run.jobs == [] and len(bot.comments) == 1


def test_maintainer_check_approves_that_head_and_a_new_push_needs_approval_again(
    bot: Bot,
) -> None:
    outsider_pr(bot)
    bot.drain()
    bot.send(event="issue_comment", actor="alice", command=Command.CHECK, head_sha=None,
             comment="check")
    bot.drain()
    assert [(j.head_sha, j.requested_by) for j in bot.run.jobs] == [(SHA, "alice")]
    assert bot.queue.ledger.approved_by(REPO, 7, SHA) == "alice"
    # eve pushes again: the new head waits for a new approval.
    bot.fake.repo(REPO).pulls[7].head_sha = SHA2
    outsider_pr(bot, SHA2)
    bot.drain()
    assert len(bot.run.jobs) == 1
    assert bot.queue.ledger.approved_by(REPO, 7, SHA2) is None
    runs = [r for r in bot.fake.repo(REPO).check_runs.values() if r["head_sha"] == SHA2]
    assert [r["conclusion"] for r in runs] == ["neutral"]


def test_pr_by_a_writer_is_built_without_approval(bot: Bot) -> None:
    bot.send(actor="alice", author="alice")
    bot.drain()
    assert [j.head_sha for j in bot.run.jobs] == [SHA]


def test_read_permission_is_not_enough(bot: Bot) -> None:
    bot.send(actor="rita", author="rita")
    bot.drain()
    assert bot.run.jobs == []


def test_outsider_commands_get_one_reply_an_hour(bot: Bot) -> None:
    for _ in range(3):
        bot.send(event="issue_comment", actor="eve", command=Command.DENY, head_sha=None,
                 comment="check")
    bot.drain()
    assert bot.run.jobs == []
    assert len(bot.comments) == 1 and "@eve" in str(bot.comments[0]["body"])


def test_repository_not_ours_is_refused_by_the_worker_too(bot: Bot) -> None:
    bot.send(repo="evil/other", actor="alice", author="alice")
    bot.drain()
    assert bot.run.jobs == []
    assert bot.fake.calls("GET", r"/repos/evil/other") == []


def test_failed_event_is_reported_and_runs_again_on_redelivery(bot: Bot) -> None:
    bot.fake.fail("GET", r"/pulls/7/files$", 403, times=3)  # every resolve attempt fails
    assert bot.send(delivery_id="flaky-1") == Submitted.QUEUED
    bot.drain()
    assert bot.run.jobs == []
    assert bot.queue.ledger.state_of("flaky-1", ns="trg") == JobState.FAILED
    runs = list(bot.fake.repo(REPO).check_runs.values())
    assert [r["conclusion"] for r in runs] == ["action_required"]
    body = str(bot.comments[0]["body"])
    assert "flaky-1" in body and "/patchbot retry" in body and "403" in body
    # GitHub recovered: the redelivery (same delivery id) and a reopen both run it.
    assert bot.send(delivery_id="flaky-1") == Submitted.QUEUED
    bot.drain()
    assert [j.head_sha for j in bot.run.jobs] == [SHA]


def test_close_reopen_after_a_failure_runs_again(bot: Bot) -> None:
    bot.fake.fail("GET", r"/pulls/7/files$", 403, times=3)
    bot.send(delivery_id="first")
    bot.drain()
    assert bot.send(delivery_id="reopened") == Submitted.QUEUED  # not "duplicate"
    bot.drain()
    assert len(bot.run.jobs) == 1


def test_retry_with_no_earlier_job_checks_the_pr(bot: Bot) -> None:
    bot.fake.fail("GET", r"/pulls/7/files$", 403, times=3)
    bot.send()
    bot.drain()
    bot.send(event="issue_comment", actor="alice", command=Command.RETRY, head_sha=None,
             comment="retry")
    bot.drain()
    assert [(j.head_sha, j.component) for j in bot.run.jobs] == [(SHA, "linux")]


def test_a_404_is_final_not_retried(bot: Bot) -> None:
    bot.fake.fail("GET", r"/pulls/7/files$", 404, times=100)
    bot.send(delivery_id="gone")
    bot.drain()
    assert len(bot.fake.calls("GET", r"/pulls/7/files$")) == 1
    assert bot.queue.ledger.state_of("gone", ns="trg") == JobState.FAILED


def test_worker_policy_defaults_to_no_repository(tmp_path: Path) -> None:
    assert not BotPolicy.load(tmp_path / "missing.toml", {}).allows(REPO)


def test_job_that_could_not_run_runs_again_on_redelivery_and_reopen(bot: Bot) -> None:
    from ukl_patchbot.core.errors import UserError
    from ukl_patchbot.core.jobs import Conclusion, Job, JobOutcome

    def broken_then_ok(job: Job) -> JobOutcome:
        if len(bot.run.jobs) == 1:
            raise UserError("mirror missing a tag")
        return JobOutcome(job, Conclusion.SUCCESS, "ok", "ok")

    bot.run.behaviour = broken_then_ok
    bot.send(delivery_id="job-fails")
    bot.drain()
    assert "mirror missing a tag" in str(bot.comments[0]["body"])
    assert bot.send(delivery_id="job-fails") == Submitted.QUEUED  # GitHub's redelivery
    bot.drain()
    assert len(bot.run.jobs) == 2
    assert bot.send(delivery_id="reopened") == Submitted.DUPLICATE  # it succeeded this time


def test_reopen_after_a_job_that_could_not_run_runs_it_again(bot: Bot) -> None:
    from ukl_patchbot.core.errors import UserError
    from ukl_patchbot.core.jobs import Conclusion, Job, JobOutcome

    def broken_then_ok(job: Job) -> JobOutcome:
        if len(bot.run.jobs) == 1:
            raise UserError("mirror missing a tag")
        return JobOutcome(job, Conclusion.SUCCESS, "ok", "ok")

    bot.run.behaviour = broken_then_ok
    bot.send(delivery_id="opened")
    bot.drain()
    assert bot.send(delivery_id="reopened") == Submitted.QUEUED  # not "duplicate"
    bot.drain()
    assert len(bot.run.jobs) == 2


@pytest.mark.parametrize("author", ["alice", "eve"])
def test_pr_touching_only_ci_or_workflows_builds_nothing(bot: Bot, author: str) -> None:
    """The worker runs its own checkout's code: a PR's .github/ or ci/ changes are never run
    and trigger no build (and an outsider's get no approval request either)."""
    bot.fake.repo(REPO).pulls[7].files = [".github/workflows/check.yml", "ci/main-job.sh",
                                          "ukl_patchbot/check/kbuild.py"]
    bot.send(actor=author, author=author)
    bot.drain()
    assert bot.run.jobs == []
    assert bot.comments == [] and not bot.fake.repo(REPO).check_runs


def test_path_tricks_in_pr_file_lists_select_no_series(bot: Bot) -> None:
    assert components_touched(bot.cfg, [
        "patchsets/linux/../../ci/main-job.sh", "/patchsets/linux/x.patch",
        "kconfigs/../ci/x",
    ]) == []
    assert components_touched(bot.cfg, ["patchsets/glibc/0001-x.patch"]) == ["glibc"]
