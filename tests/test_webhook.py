"""`patchbot serve`'s webhook over real HTTP on loopback, driven by GitHub's published payloads."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.octokit_specs import examples, webhook_spec
from tests.helpers.webhook_client import (
    OUR_REPOS,
    SECRET,
    RunningServer,
    deliver,
    sign,
    start_server,
    webhook_server,
)
from ukl_patchbot.bot.jobqueue import JobQueue
from ukl_patchbot.bot.routing import Command, Trigger
from ukl_patchbot.bot.webhook import WebhookSettings, signature_ok
from ukl_patchbot.core.errors import InfraError, UserError

__all__ = ["webhook_server"]  # the fixture, imported for pytest


def parked(server: RunningServer, delivery: str) -> Trigger | None:
    data = server.queue.ledger.trigger_data(delivery)
    return Trigger.from_dict(data) if data else None


def pr_comment(
    body: str,
    association: str = "MEMBER",
    user_type: str = "User",
    login: str = "alice",
    action: str = "created",
) -> dict[str, Any]:
    """A real issue_comment example turned into a comment on a pull request, schema-checked."""
    base = next(
        e
        for e in examples("issue_comment", action)
        if not webhook_spec().errors("issue_comment", action, e)
    )
    number = base["issue"]["number"]
    repo_url = base["repository"]["html_url"]
    base["issue"]["pull_request"] = {
        "url": f"{base['repository']['url']}/pulls/{number}",
        "html_url": f"{repo_url}/pull/{number}",
        "diff_url": f"{repo_url}/pull/{number}.diff",
        "patch_url": f"{repo_url}/pull/{number}.patch",
        "merged_at": None,
    }
    base["comment"]["body"] = body
    base["comment"]["author_association"] = association
    base["comment"]["user"]["type"] = user_type
    base["comment"]["user"]["login"] = login
    errors = webhook_spec().errors("issue_comment", action, base)
    assert errors == [], errors
    return base


def test_ping_answers_pong(webhook_server: RunningServer) -> None:
    for ex in examples("ping"):
        ans = deliver(webhook_server.url, "ping", ex)
        assert (ans.status, ans.json()["status"]) == (200, "pong")
    assert webhook_server.queue.pending() == 0


@pytest.mark.parametrize("action", ["opened", "reopened", "synchronize"])
def test_pull_request_examples_queue_a_check_of_the_head(
    webhook_server: RunningServer, action: str
) -> None:
    payloads = list(examples("pull_request", action))
    assert payloads, f"no {action} example"
    seen: set[tuple[str, int, str]] = set()
    for i, ex in enumerate(payloads):
        delivery = f"{action}-{i}"
        ident = (ex["repository"]["full_name"], ex["number"], ex["pull_request"]["head"]["sha"])
        ans = deliver(webhook_server.url, "pull_request", ex, delivery=delivery)
        if ident in seen:  # several examples show the same PR head: one job
            assert ans.status == 200 and ans.json()["status"] == "duplicate"
            continue
        seen.add(ident)
        assert ans.status == 202, ans.body
        t = parked(webhook_server, delivery)
        assert t is not None
        assert (t.repo, t.pr, t.head_sha, t.command) == (
            ex["repository"]["full_name"],
            ex["number"],
            ex["pull_request"]["head"]["sha"],
            Command.CHECK,
        )
        assert t.installation_id == (ex.get("installation") or {}).get("id")


def test_redelivery_and_same_job_identity_are_collapsed(webhook_server: RunningServer) -> None:
    ex = next(examples("pull_request", "opened"))
    assert deliver(webhook_server.url, "pull_request", ex, delivery="d-1").status == 202
    pending = webhook_server.queue.pending()
    again = deliver(webhook_server.url, "pull_request", ex, delivery="d-1")  # GitHub redelivery
    assert (again.status, again.json()["status"]) == (200, "duplicate")
    ex["action"] = "reopened"  # new delivery, same repo/PR/head sha/command
    same_job = deliver(webhook_server.url, "pull_request", ex, delivery="d-2")
    assert (same_job.status, same_job.json()["status"]) == (200, "duplicate")
    ex["pull_request"]["head"]["sha"] = "f" * 40  # a new push is new work
    assert deliver(webhook_server.url, "pull_request", ex, delivery="d-3").status == 202
    assert webhook_server.queue.pending() == pending + 1


@pytest.mark.parametrize("action", ["closed", "labeled", "assigned", "ready_for_review"])
def test_other_pull_request_actions_need_no_work(
    webhook_server: RunningServer, action: str
) -> None:
    ex = next(examples("pull_request", action))
    assert deliver(webhook_server.url, "pull_request", ex).status == 204
    assert webhook_server.queue.pending() == 0


def test_unknown_event_is_204_and_logged(
    webhook_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ukl_patchbot")
    ex = next(examples("star"))
    assert deliver(webhook_server.url, "star", ex, delivery="star-1").status == 204
    assert any(
        "star-1" in r.getMessage() and "not handled" in r.getMessage() for r in caplog.records
    )
    assert webhook_server.queue.pending() == 0


@pytest.mark.parametrize("how", ["missing", "wrong secret", "sha1", "garbage", "tampered"])
def test_bad_signature_is_401_and_queues_nothing(webhook_server: RunningServer, how: str) -> None:
    ex = next(examples("pull_request", "opened"))
    body = json.dumps(ex).encode()
    sig = {
        "missing": "",
        "wrong secret": sign(body, "not the secret"),
        "sha1": "sha1=" + sign(body)[7:47],
        "garbage": "sha256=zz",
        "tampered": sign(body.replace(b'"opened"', b'"closed"')),
    }[how]
    ans = deliver(webhook_server.url, "pull_request", body=body, signature=sig, delivery="x-1")
    assert ans.status == 401
    assert webhook_server.queue.pending() == 0
    # The delivery id was not burnt: the genuine delivery is still accepted.
    assert deliver(webhook_server.url, "pull_request", body=body, delivery="x-1").status == 202


def test_signature_compare_is_exact() -> None:
    body = b'{"a": 1}'
    good = sign(body)
    assert signature_ok(SECRET.encode(), body, good)
    assert not signature_ok(SECRET.encode(), body, good.upper())
    assert not signature_ok(SECRET.encode(), body + b" ", good)
    assert not signature_ok(SECRET.encode(), body, None)


def test_oversize_body_is_413(webhook_server: RunningServer) -> None:
    ex = next(examples("pull_request", "opened"))
    ex["pull_request"]["body"] = "x" * (300 * 1024)  # over the 256 KiB limit of the fixture
    ans = deliver(webhook_server.url, "pull_request", ex)
    assert ans.status == 413
    assert webhook_server.queue.pending() == 0


@pytest.mark.parametrize(
    "body,ctype",
    [
        (b"{not json", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"zen": "x"}', "text/plain"),
        (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_malformed_or_unknown_content_is_400(
    webhook_server: RunningServer, body: bytes, ctype: str
) -> None:
    ans = deliver(webhook_server.url, "ping", body=body, content_type=ctype)
    assert ans.status == 400, ans.body
    assert webhook_server.queue.pending() == 0


def test_form_encoded_payload_is_accepted(webhook_server: RunningServer) -> None:
    ex = next(examples("pull_request", "opened"))
    body = urllib.parse.urlencode({"payload": json.dumps(ex)}).encode()
    ans = deliver(
        webhook_server.url,
        "pull_request",
        body=body,
        content_type="application/x-www-form-urlencoded",
        delivery="form-1",
    )
    assert ans.status == 202
    assert parked(webhook_server, "form-1") is not None


@pytest.mark.parametrize(
    "body,association,expect",
    [
        ("/patchbot rebase v6.1.192", "MEMBER", (Command.REBASE, "v6.1.192")),
        ("Looks good.\n/patchbot check\nthanks", "OWNER", (Command.CHECK, None)),
        ("/patchbot check glibc-2.36", "COLLABORATOR", (Command.CHECK, "glibc-2.36")),
        ("/patchbot retry", "MEMBER", (Command.RETRY, None)),
        # author_association is no permission (team grants arrive as CONTRIBUTOR): the
        # worker asks the collaborator permission API for everyone.
        ("/patchbot rebase v6.1.192", "CONTRIBUTOR", (Command.REBASE, "v6.1.192")),
        ("/patchbot check", "NONE", (Command.CHECK, None)),
    ],
)
def test_pr_comment_commands(
    webhook_server: RunningServer, body: str, association: str, expect: tuple[Command, str | None]
) -> None:
    payload = pr_comment(body, association)
    ans = deliver(webhook_server.url, "issue_comment", payload, delivery="c-1")
    assert ans.status == 202
    t = parked(webhook_server, "c-1")
    assert t is not None and (t.command, t.tag) == expect
    assert t.comment == body.split("/patchbot ")[1].split("\n")[0]
    assert (t.pr, t.actor, t.head_sha) == (payload["issue"]["number"], "alice", None)


@pytest.mark.parametrize(
    "change",
    ["bot type", "our login", "edited", "no command", "on issue", "bad tag", "not at line start"],
)
def test_comments_that_must_not_trigger(webhook_server: RunningServer, change: str) -> None:
    payload = pr_comment(
        "/patchbot check v6.1.1", action="edited" if change == "edited" else "created"
    )
    if change == "bot type":
        payload["comment"]["user"]["type"] = "Bot"
    elif change == "our login":
        payload["comment"]["user"]["login"] = "UKL-Patchbot[bot]"
    elif change == "no command":
        payload["comment"]["body"] = "please run the patchbot later"
    elif change == "on issue":
        del payload["issue"]["pull_request"]
    elif change == "bad tag":
        payload["comment"]["body"] = "/patchbot rebase v6.1;rm -rf /"
    elif change == "not at line start":
        payload["comment"]["body"] = "> quoting: /patchbot check"
    assert deliver(webhook_server.url, "issue_comment", payload).status == 204
    assert webhook_server.queue.pending() == 0


def test_push_to_default_branch_only(webhook_server: RunningServer) -> None:
    branch = next(e for e in examples("push") if e["ref"] == "refs/heads/master")
    ans = deliver(webhook_server.url, "push", branch, delivery="p-1")
    assert ans.status == 202
    t = parked(webhook_server, "p-1")
    assert t is not None and t.head_sha == branch["after"] and t.pr is None
    tag = next(e for e in examples("push") if e["ref"].startswith("refs/tags/"))
    assert deliver(webhook_server.url, "push", tag).status == 204


def test_healthz(webhook_server: RunningServer) -> None:
    with urllib.request.urlopen(webhook_server.url + "/healthz", timeout=5) as resp:
        assert resp.status == 200 and json.load(resp)["status"] == "ok"


def test_queue_failure_is_503_and_redelivery_is_accepted(tmp_path: Path) -> None:
    queue = JobQueue(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    calls: list[Trigger] = []

    def flaky(t: Trigger) -> str:
        calls.append(t)
        if len(calls) == 1:
            raise InfraError("disk full")
        return str(queue.submit_trigger(t))

    from tests.helpers.webhook_client import start_app
    from ukl_patchbot.bot.webhook import create_app

    app = create_app(WebhookSettings(secret=SECRET.encode(), repositories=OUR_REPOS), flaky)
    running = start_app(app)
    try:
        ex = next(examples("pull_request", "opened"))
        assert deliver(running.url, "pull_request", ex, delivery="q-1").status == 503
        assert deliver(running.url, "pull_request", ex, delivery="q-1").status == 202
    finally:
        running.stop()


def test_secret_is_required_and_may_come_from_a_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no webhook secret"):
        WebhookSettings.from_env({})
    f = tmp_path / "secret"
    f.write_text("from-a-file-secret\n")
    s = WebhookSettings.from_env({"PATCHBOT_WEBHOOK_SECRET_FILE": str(f)})
    assert s.secret == b"from-a-file-secret"
    with pytest.raises(UserError, match="cannot read"):
        WebhookSettings.from_env({"PATCHBOT_WEBHOOK_SECRET_FILE": str(tmp_path / "missing")})


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBOT_WEBHOOK_SECRET")}
    env["PATCHBOT_CACHE_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "ukl_patchbot", "serve", "--port", "0"],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "no webhook secret" in proc.stderr


def test_server_serves_many_threads_without_mixups(tmp_path: Path) -> None:
    """Deliveries sent at once land as their own triggers (no shared request state)."""
    from concurrent.futures import ThreadPoolExecutor

    queue = JobQueue(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    running = start_server(queue, WebhookSettings(secret=SECRET.encode(), repositories=OUR_REPOS))
    try:
        ex = next(examples("pull_request", "opened"))

        def one(i: int) -> int:
            p = json.loads(json.dumps(ex))
            p["pull_request"]["head"]["sha"] = f"{i:040x}"
            return deliver(running.url, "pull_request", p, delivery=f"m-{i}").status

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(40)))
        assert statuses == [202] * 40
        shas = {queue.ledger.trigger_data(f"m-{i}")["head_sha"] for i in range(40)}  # type: ignore[index]
        assert shas == {f"{i:040x}" for i in range(40)}
    finally:
        running.stop()


def test_real_issue_comment_examples_need_no_work(webhook_server: RunningServer) -> None:
    """GitHub's own comment payloads are on issues and carry no command: nothing queued."""
    payloads = list(examples("issue_comment"))
    assert len(payloads) >= 5
    for ex in payloads:
        assert deliver(webhook_server.url, "issue_comment", ex).status == 204
    assert webhook_server.queue.pending() == 0
