"""Signed but hostile payloads: the router never raises, the webhook never answers 500,
commands are only what they seem, repositories not ours are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.webhook_client import OUR_REPOS, SECRET, RunningServer, deliver, start_server
from ukl_patchbot.bot.jobqueue import JobQueue
from ukl_patchbot.bot.routing import Command, Ignored, Pong, Trigger, parse_command, route
from ukl_patchbot.bot.trust import BotPolicy
from ukl_patchbot.bot.webhook import WebhookSettings
from ukl_patchbot.core.errors import UserError

SHA = "a1" * 20
EVENTS = ["pull_request", "issue_comment", "push", "ping", "check_run", "issues"]

# JSON values of any shape, with the keys the router reads among the random ones.
KEYS = ["action", "number", "pull_request", "head", "sha", "user", "login", "repository",
        "full_name", "installation", "id", "issue", "comment", "body", "author_association",
        "type", "ref", "after", "deleted", "commits", "added", "modified", "removed",
        "default_branch", "sender", "zen"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=30), st.sampled_from(["opened", "created", "ukl/patches",
                                                           "/patchbot check", SHA, "main",
                                                           "refs/heads/main", "MEMBER"]))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children,
                        max_size=6),
    ),
    max_leaves=20,
)


def _valid_pr() -> dict[str, Any]:
    return {"action": "opened", "number": 5,
            "pull_request": {"number": 5, "head": {"sha": SHA}, "user": {"login": "eve"}},
            "repository": {"full_name": "ukl/patches"}, "sender": {"login": "eve"}}


PAYLOADS = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)


def _route_ok(event: str, payload: dict[str, Any]) -> None:
    decision = route(event, "d1", payload, bot_login="ukl-patchbot[bot]")
    assert isinstance(decision, (Trigger, Ignored, Pong))
    if isinstance(decision, Trigger):
        assert isinstance(decision.repo, str) and "/" in decision.repo
        assert decision.pr is None or (type(decision.pr) is int and decision.pr > 0)
        assert Trigger.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.sampled_from(EVENTS), payload=PAYLOADS)
def test_router_never_raises_on_generated_payloads(event: str, payload: dict[str, Any]) -> None:
    _route_ok(event, payload)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.sampled_from(EVENTS), payload=PAYLOADS)
def test_router_never_raises_on_many_generated_payloads(event: str,
                                                        payload: dict[str, Any]) -> None:
    _route_ok(event, payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from([("pull_request", "number"), ("pull_request", "head", "sha"),
                             ("repository", "full_name"), ("action",), ("sender", "login"),
                             ("pull_request", "user")]),
       value=json_values)
def test_mutating_one_field_of_a_valid_event_never_raises(path: tuple[str, ...],
                                                          value: Any) -> None:
    payload = _valid_pr()
    node = payload
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    decision = route("pull_request", "d1", payload)
    assert isinstance(decision, (Trigger, Ignored))


@pytest.mark.parametrize("number", [True, False, 0, -3, 2**70, "7", 7.0, None])
def test_pr_numbers_are_validated(number: object) -> None:
    payload = _valid_pr()
    payload["number"] = payload["pull_request"]["number"] = number
    assert isinstance(route("pull_request", "d1", payload), Ignored)


@pytest.mark.parametrize("added", [5, "patchsets/linux/x.patch", {"a": 1}, [1, None]])
def test_push_with_wrong_types_in_commits_is_not_read_by_character(added: object) -> None:
    payload = {"ref": "refs/heads/main", "after": SHA,
               "repository": {"full_name": "ukl/patches", "default_branch": "main"},
               "commits": [{"added": added, "modified": [], "removed": []}],
               "sender": {"login": "alice"}}
    decision = route("push", "d1", payload)
    assert isinstance(decision, Trigger)
    assert decision.changed_paths == ()  # nothing listed: not "p", "a", "t", "c", ...


@pytest.mark.parametrize("repo", ["evil/../ukl", "ukl", "a/b/c", "ukl/patches; rm -rf /",
                                  "../../etc/passwd", "ukl/ patches", ""])
def test_repository_names_with_path_tricks_are_ignored(repo: str) -> None:
    payload = _valid_pr()
    payload["repository"]["full_name"] = repo
    assert isinstance(route("pull_request", "d1", payload), Ignored)


@pytest.mark.parametrize("body", [
    "/patchbot rebase v6.1.1;rm -rf /",
    "/patchbot rebase v6.1.1 && curl evil",
    "/patchbot check $(id)",
    "/patchbot check `id`",
    "/patchbot rebase ../../etc",
    "/patchbot check v6.1.1|sh",
    "```\n/patchbot check\n```",
    "~~~sh\n/patchbot retry\n~~~",
    "> /patchbot check",
    "  > /patchbot check v6.1.1",
    "    /patchbot check",
    "please run /patchbot check",
])
def test_commands_with_metacharacters_or_in_code_and_quotes_are_not_commands(body: str) -> None:
    assert parse_command(body) is None


def test_a_real_command_after_a_code_block_counts() -> None:
    body = "Like this:\n```\n/patchbot rebase v1.0\n```\n\n/patchbot check v6.1.192\n"
    assert parse_command(body) == (Command.CHECK, "v6.1.192")


def test_repository_allow_list_comes_from_config_or_env(tmp_path: Path) -> None:
    cfg = tmp_path / "patchbot.toml"
    cfg.write_text('[bot]\nrepositories = ["UKL/Patches"]\n')
    assert BotPolicy.load(cfg, {}).repositories == frozenset({"ukl/patches"})
    assert BotPolicy.load(cfg, {"PATCHBOT_REPOSITORIES": "a/b, c/d"}).repositories == {
        "a/b", "c/d"}
    cfg.write_text("")
    assert BotPolicy.load(cfg, {}).repositories == frozenset()  # default: none
    cfg.write_text('[bot]\nrepositories = ["../etc"]\n')
    with pytest.raises(UserError, match="not a repository name"):
        BotPolicy.load(cfg, {})
    cfg.write_text('[bot]\nsandbox = "docker"\n')
    with pytest.raises(UserError, match="sandbox"):
        BotPolicy.load(cfg, {})


# -- through the HTTP server ---------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Any:
    queue = JobQueue(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    running: RunningServer = start_server(
        queue, WebhookSettings(secret=SECRET.encode(), repositories=OUR_REPOS)
    )
    try:
        yield running
    finally:
        running.stop()


def test_event_for_a_repository_not_ours_is_refused(server: RunningServer,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    payload = _valid_pr()
    payload["repository"]["full_name"] = "evil/other"
    answer = deliver(server.url, "pull_request", payload)
    assert answer.status == 403
    assert server.queue.pending() == 0
    assert "evil/other" in caplog.text and "PATCHBOT_REPOSITORIES" in caplog.text


def test_no_repository_configured_refuses_everything(tmp_path: Path) -> None:
    queue = JobQueue(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    running = start_server(queue, WebhookSettings(secret=SECRET.encode()))
    try:
        assert deliver(running.url, "pull_request", _valid_pr()).status == 403
    finally:
        running.stop()


def test_deeply_nested_json_is_a_400_not_a_500(server: RunningServer) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    assert deliver(server.url, "pull_request", body=body).status == 400
    body = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    assert deliver(server.url, "push", body=body).status == 400


@pytest.mark.parametrize("mutate", [
    lambda p: p["pull_request"].update(number=True),
    lambda p: p.update(action=["opened"]),
    lambda p: p.update(action={"x": 1}),
    lambda p: p["pull_request"].update(head=[SHA]),
    lambda p: p.update(repository="ukl/patches"),
    lambda p: p["pull_request"].update(user=5),
])
def test_malformed_signed_payloads_never_give_500(server: RunningServer, mutate: Any) -> None:
    payload = _valid_pr()
    mutate(payload)
    assert deliver(server.url, "pull_request", payload).status in (202, 204, 400, 403)


def test_push_with_a_number_in_commits_added_is_accepted_not_500(server: RunningServer) -> None:
    payload = {"ref": "refs/heads/main", "after": SHA,
               "repository": {"full_name": "ukl/patches", "default_branch": "main"},
               "commits": [{"added": 5}], "sender": {"login": "alice"}}
    assert deliver(server.url, "push", payload).status == 202


def test_replay_with_a_new_delivery_id_collapses(server: RunningServer) -> None:
    """A captured signed body sent again under another delivery id: one trigger only."""
    first = deliver(server.url, "pull_request", _valid_pr(), delivery="orig-1")
    again = deliver(server.url, "pull_request", _valid_pr(), delivery="replay-2")
    assert first.status == 202
    assert again.status == 200 and again.json()["status"] == "duplicate"
    assert server.queue.pending() == 1
