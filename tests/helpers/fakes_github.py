"""The one fake GitHub: a threaded HTTP server on 127.0.0.1 that PyGithub talks to over HTTP.

It keeps just enough state (pull requests, collaborators, comments, check
runs, statuses, App installation tokens) to answer what the bot asks, checks
authentication like GitHub does (JWT for App endpoints, tokens elsewhere),
and checks *every* request against GitHub's REST description
(`tests.helpers.octokit_specs.RestSpec`): unknown operations and invalid bodies are
collected in ``violations``, which the fixture asserts empty at teardown.

Faults are injected per route: ``fail("POST", r"/issues/\\d+/comments$", 502,
apply=True)`` answers 502 *after* creating the comment (a lost answer);
`secondary_limit` and `primary_limit` answer as GitHub's rate limits do.

It answers as GitHub does where the REST description cannot tell: errors carry
``message`` and ``documentation_url`` (and ``errors[]`` for 422); every list is
paginated (``per_page`` default 30, at most 100, ``Link`` header); ``GET /user``
is 403 "Resource not accessible by integration" for installation tokens
(`actions_token` mints a workflow's ``GITHUB_TOKEN``, whose author is
``github-actions[bot]``); a workflow token may not open pull requests unless
``FakeRepo.actions_may_open_prs``; check runs need an installation token, their
output is limited in bytes, and a completed run cannot go back to in_progress.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers.octokit_specs import RestSpec, rest_spec

APP_ID = 4242
APP_SLUG = "ukl-patchbot"
INSTALLATION_ID = 77
PAT = "ghp_fakeTokenForTestsOnly0123456789"
PAT_USER = "patchbot-token-user"
ACTIONS_USER = "github-actions[bot]"
DOCS = "https://docs.github.com/rest"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


def error(message: str, doc: str = DOCS, errors: list[dict[str, Any]] | None = None
          ) -> dict[str, Any]:
    """An error body shaped as GitHub's."""
    body: dict[str, Any] = {"message": message, "documentation_url": doc}
    if errors is not None:
        body["errors"] = errors
    return body


def paginate(items: list[Any], query: dict[str, list[str]], url: str
             ) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` as GitHub serves it, with its ``Link`` header."""
    per_page = max(1, min(100, int(query.get("per_page", ["30"])[0])))
    page = max(1, int(query.get("page", ["1"])[0]))
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []
    rest = {k: v[0] for k, v in query.items() if k not in ("page", "per_page")}
    extra = "".join(f"&{k}={v}" for k, v in sorted(rest.items()))
    for rel, n in (("next", page + 1), ("last", last)):
        if page < last:
            links.append(f'<{url}?per_page={per_page}&page={n}{extra}>; rel="{rel}"')
    return chunk, ({"Link": ", ".join(links)} if links else {})


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    apply: bool  # perform the operation, then answer with the fault (lost answer)
    message: str = "injected fault"
    body: dict[str, Any] | None = None  # a recorded GitHub answer, sent as it is


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int = 0
    operation: str | None = None
    auth: str = ""


@dataclass
class PullRequest:
    number: int
    head_sha: str
    files: list[str] = field(default_factory=list)
    title: str = ""
    body: str = ""
    head_ref: str = "topic"
    base_ref: str = "main"
    state: str = "open"
    user: str = "contributor"
    merged_at: str | None = None


@dataclass
class FakeRepo:
    full_name: str
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    permissions: dict[str, str] = field(default_factory=dict)  # login -> admin/maintain/write/...
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> comment
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # number -> issue (not PRs)
    # When set, a new pull request's head branch must exist in this git repository (the push
    # remote of the weekly job's tests), as GitHub refuses a PR from a branch it does not have.
    git_dir: Path | None = None
    # Commit sha -> {path: (mode, data)}, served by the git trees and blobs endpoints. Mode
    # "160000" (a submodule) takes the commit it points at as data.
    trees: dict[str, dict[str, tuple[str, bytes]]] = field(default_factory=dict)
    # GitHub's "Allow GitHub Actions to create and approve pull requests" (off by default).
    actions_may_open_prs: bool = False
    refs: set[str] = field(default_factory=set)  # branches, when there is no git_dir

    def put_commit(self, sha: str, files: dict[str, bytes | tuple[str, bytes]]) -> None:
        """Make commit ``sha`` hold ``files`` (plain bytes are mode 100644)."""
        self.trees[sha] = {
            path: (v if isinstance(v, tuple) else ("100644", v)) for path, v in files.items()
        }

    def next_number(self) -> int:
        """Issues and pull requests share one numbering, as on GitHub."""
        return max([0, *self.pulls, *self.issues]) + 1


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    """State and behaviour. `start` serves it on a free loopback port."""

    def __init__(self, spec: RestSpec) -> None:
        self.spec = spec
        self.lock = threading.RLock()
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self.ids = itertools.count(1000)
        self.token_ttl = 3600.0
        self.tokens: dict[str, float] = {}  # installation token -> expiry (epoch)
        self.actions_tokens: set[str] = set()  # the GITHUB_TOKEN kind of installation token
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_key = key.public_key()
        self.server: ThreadingHTTPServer | None = None
        self.url = ""
        self._local = threading.local()

    # -- test-facing helpers ----------------------------------------------------
    def repo(self, full_name: str) -> FakeRepo:
        with self.lock:
            return self.repos.setdefault(full_name, FakeRepo(full_name))

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        apply: bool = False,
    ) -> None:
        with self.lock:
            self.faults.append(Fault(method, re.compile(path), status, times, headers or {}, apply))

    def secondary_limit(self, method: str, path: str, *, status: int = 403,
                        retry_after: int | None = None, times: int = 1) -> None:
        """Answer as GitHub's secondary rate limit: the primary budget is not spent."""
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4990",
                   "x-ratelimit-reset": str(int(time.time()) + 3600)}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        with self.lock:
            self.faults.append(Fault(method, re.compile(path), status, times, headers, False,
                                     SECONDARY_MESSAGE))

    def primary_limit(self, method: str, path: str, *, reset_in: int, times: int = 1) -> None:
        """Answer as a spent primary rate limit, reset ``reset_in`` seconds from now."""
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                   "x-ratelimit-used": "5000", "x-ratelimit-resource": "core",
                   "x-ratelimit-reset": str(int(time.time()) + reset_in)}
        with self.lock:
            self.faults.append(Fault(method, re.compile(path), 403, times, headers, False,
                                     "API rate limit exceeded for installation ID 77."))

    def replay(self, recorded: dict[str, Any], times: int = 1) -> None:
        """Answer the next matching request with a recorded GitHub answer (``tests/data/
        github-errors``); an ``x-ratelimit-reset`` of ``+N`` means N seconds from now."""
        headers = dict(recorded.get("headers") or {})
        reset = headers.get("x-ratelimit-reset", "")
        if reset.startswith("+"):
            headers["x-ratelimit-reset"] = str(int(time.time()) + int(reset[1:]))
        with self.lock:
            self.faults.append(Fault(recorded["method"], re.compile(recorded["path"]),
                                     int(recorded["status"]), times, headers, False,
                                     body=recorded["body"]))

    def actions_token(self) -> str:
        """A token like a workflow's ``GITHUB_TOKEN`` (an installation token of Actions)."""
        token = f"ghs_actions{next(self.ids):029d}"  # 40 characters, as GitHub issues them
        with self.lock:
            self.tokens[token] = time.time() + self.token_ttl
            self.actions_tokens.add(token)
        return token

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        rx = re.compile(pattern)
        with self.lock:
            return [r for r in self.requests if r.method == method and rx.search(r.path)]

    # -- server -------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        rec = Recorded(
            h.command,
            parts.path,
            parse_qs(parts.query),
            body,
            auth=h.headers.get("Authorization", ""),
        )
        op, problems = self.spec.check(h.command, parts.path, rec.query, body)
        rec.operation = op
        with self.lock:
            self.requests.append(rec)
            self.violations.extend(problems)
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.method == h.command and f.times > 0 and f.path.search(parts.path)
                ),
                None,
            )
            if fault is not None:
                fault.times -= 1
        if fault is not None and not fault.apply:
            status, payload, headers = fault.status, fault.body or error(fault.message), fault.headers
        else:
            status, payload, headers = self._dispatch(
                h.command, parts.path, body, rec.auth, rec.query
            )
            if fault is not None:
                status, payload, headers = fault.status, error(fault.message), fault.headers
        rec.status = status
        if status >= 400:  # our own answers must be shaped as GitHub's errors are
            with self.lock:
                self.violations.extend(self.spec.check_error(h.command, parts.path, status,
                                                             payload))
        data = json.dumps(payload).encode() if payload is not None else b""
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    # -- behaviour ----------------------------------------------------------------
    def _dispatch(
        self, method: str, path: str, body: Any, auth: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        for m, rx, fn, kind in self._routes():
            match = re.fullmatch(rx, path)
            if m == method and match:
                denied = self._authenticate(kind, auth)
                if denied:
                    return 401, error(denied), {}
                self._local.auth = auth.partition(" ")[2]
                self._local.query = query
                self._local.links = {}
                with self.lock:
                    status, payload = fn(body, *match.groups())
                if status >= 400 and isinstance(payload, dict):
                    payload.setdefault("documentation_url", DOCS)
                if method == "GET" and isinstance(payload, list):
                    payload, links = paginate(payload, query, self.url + path)
                    return status, payload, links
                return status, payload, dict(self._local.links)
        return 404, error("Not Found (fake has no such route)"), {}

    def _authenticate(self, kind: str, auth: str) -> str | None:
        _scheme, _, cred = auth.partition(" ")
        if kind == "jwt":
            try:
                claims = jwt.decode(cred, self.public_key, algorithms=["RS256"])
            except jwt.PyJWTError as exc:
                return f"bad JWT: {exc}"
            return None if str(claims.get("iss")) == str(APP_ID) else "JWT for another app"
        if cred == PAT:
            return None
        expiry = self.tokens.get(cred)
        if expiry is None:
            return "Bad credentials"
        return None if expiry > time.time() else "installation token expired"

    def _routes(self) -> Iterator[tuple[str, str, Callable[..., tuple[int, Any]], str]]:
        repo = r"/repos/([^/]+/[^/]+)"
        yield "GET", r"/app", self._get_app, "jwt"
        yield "GET", repo + r"/installation", self._get_installation, "jwt"
        yield "POST", r"/app/installations/(\d+)/access_tokens", self._new_token, "jwt"
        yield "GET", r"/user", self._get_user, "token"
        yield "GET", repo + r"/collaborators/([^/]+)/permission", self._permission, "token"
        yield "GET", repo + r"/pulls", self._list_pulls, "token"
        yield "POST", repo + r"/pulls", self._create_pull, "token"
        yield "GET", repo + r"/issues", self._list_issues, "token"
        yield "POST", repo + r"/issues", self._create_issue, "token"
        yield "PATCH", repo + r"/issues/(\d+)", self._edit_issue, "token"
        yield "GET", repo + r"/pulls/(\d+)", self._get_pull, "token"
        yield "GET", repo + r"/pulls/(\d+)/files", self._pull_files, "token"
        yield "GET", repo + r"/issues/(\d+)", self._get_issue, "token"
        yield "GET", repo + r"/issues/(\d+)/comments", self._list_comments, "token"
        yield "POST", repo + r"/issues/(\d+)/comments", self._create_comment, "token"
        yield "PATCH", repo + r"/issues/comments/(\d+)", self._edit_comment, "token"
        yield "POST", repo + r"/check-runs", self._create_check_run, "token"
        yield "GET", repo + r"/check-runs/(\d+)", self._get_check_run, "token"
        yield "PATCH", repo + r"/check-runs/(\d+)", self._edit_check_run, "token"
        yield "GET", repo + r"/commits/([0-9a-f]{40})", self._get_commit, "token"
        yield "POST", repo + r"/statuses/([0-9a-f]{40})", self._create_status, "token"
        yield "GET", repo + r"/git/trees/([0-9a-f]{40})", self._get_tree, "token"
        yield "GET", repo + r"/git/blobs/([0-9a-f]{40})", self._get_blob, "token"
        yield "GET", repo + r"/commits/([0-9a-f]{40})/check-runs", self._list_check_runs, "token"
        yield "DELETE", repo + r"/git/refs/heads(?:/|%2F)(.+)", self._delete_branch, "token"

    def _user(self, login: str) -> dict[str, Any]:
        kind = "Bot" if login.endswith("[bot]") else "User"
        return {
            "login": login,
            "id": abs(hash(login)) % 10**6,
            "type": kind,
            "url": f"{self.url}/users/{login}",
        }

    def _get_user(self, _b: Any) -> tuple[int, Any]:
        if self._local.auth != PAT:  # any installation token, GITHUB_TOKEN included
            return 403, error("Resource not accessible by integration",
                              DOCS + "/users/users#get-the-authenticated-user")
        return 200, self._user(PAT_USER)

    def _get_app(self, _b: Any) -> tuple[int, Any]:
        return 200, {"id": APP_ID, "slug": APP_SLUG, "name": "UKL patchbot"}

    def _get_installation(self, _b: Any, full: str) -> tuple[int, Any]:
        if full not in self.repos:
            return 404, {"message": "Not Found"}
        return 200, {
            "id": INSTALLATION_ID,
            "app_id": APP_ID,
            "account": self._user(full.split("/")[0]),
        }

    def _new_token(self, _b: Any, inst: str) -> tuple[int, Any]:
        if int(inst) != INSTALLATION_ID:
            return 404, {"message": "Not Found"}
        token = f"ghs_fake{next(self.ids):032d}"  # 40 characters, as GitHub issues them
        expires = _now() + timedelta(seconds=self.token_ttl)
        self.tokens[token] = expires.timestamp()
        return 201, {"token": token, "expires_at": _iso(expires), "permissions": {}}

    def _permission(self, _b: Any, full: str, user: str) -> tuple[int, Any]:
        perm = self.repo(full).permissions.get(user)
        if perm is None:
            return 404, {"message": f"{user} is not a user"}
        legacy = {"maintain": "write", "triage": "read"}.get(perm, perm)
        return 200, {"permission": legacy, "role_name": perm, "user": self._user(user)}

    def _pull(self, full: str, n: str) -> PullRequest | None:
        return self.repo(full).pulls.get(int(n))

    def _pull_json(self, full: str, pr: PullRequest) -> dict[str, Any]:
        return {
            "number": pr.number,
            "state": pr.state,
            "title": pr.title,
            "body": pr.body,
            "user": self._user(pr.user),
            "url": f"{self.url}/repos/{full}/pulls/{pr.number}",
            "html_url": f"https://github.invalid/{full}/pull/{pr.number}",
            "head": {"sha": pr.head_sha, "ref": pr.head_ref},
            "base": {"ref": pr.base_ref},
            "merged_at": pr.merged_at,
        }

    def _get_pull(self, _b: Any, full: str, n: str) -> tuple[int, Any]:
        pr = self._pull(full, n)
        if pr is None:
            return 404, {"message": "Not Found"}
        return 200, self._pull_json(full, pr)

    def _query(self) -> dict[str, list[str]]:
        return self._local.query  # type: ignore[no-any-return]

    def _list_pulls(self, _b: Any, full: str) -> tuple[int, Any]:
        q = self._query()
        state = q.get("state", ["open"])[0]
        head = q.get("head", [""])[0].partition(":")[2]
        out = [
            self._pull_json(full, pr)
            for pr in sorted(self.repo(full).pulls.values(), key=lambda p: p.number)
            if state in ("all", pr.state) and (not head or pr.head_ref == head)
        ]
        return 200, out

    def _branch_sha(self, r: FakeRepo, branch: str) -> str | None:
        if r.git_dir is None:
            return "0" * 40
        res = subprocess.run(
            ["git", "-C", str(r.git_dir), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return res.stdout.strip() if res.returncode == 0 else None

    def _create_pull(self, body: Any, full: str) -> tuple[int, Any]:
        r = self.repo(full)
        doc = DOCS + "/pulls/pulls#create-a-pull-request"
        if self._local.auth in self.actions_tokens and not r.actions_may_open_prs:
            return 403, error("GitHub Actions is not permitted to create or approve pull"
                              " requests.", doc)
        head = body["head"].partition(":")[2] or body["head"]
        sha = self._branch_sha(r, head)
        if sha is None:
            return 422, error("Validation Failed", doc, [
                {"resource": "PullRequest", "field": "head", "code": "invalid"}])
        if any(p.head_ref == head and p.state == "open" for p in r.pulls.values()):
            owner = full.split("/")[0]
            return 422, error("Validation Failed", doc, [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for {owner}:{head}."}])
        pr = PullRequest(
            r.next_number(),
            sha,
            title=body.get("title", ""),
            body=body.get("body") or "",
            head_ref=head,
            base_ref=body["base"],
            user=self._comment_author(),
        )
        r.pulls[pr.number] = pr
        return 201, self._pull_json(full, pr)

    def _issue_json(self, full: str, n: int) -> dict[str, Any] | None:
        r = self.repo(full)
        base = {
            "number": n,
            "url": f"{self.url}/repos/{full}/issues/{n}",
            "comments_url": f"{self.url}/repos/{full}/issues/{n}/comments",
            "html_url": f"https://github.invalid/{full}/issues/{n}",
        }
        if n in r.issues:
            i = r.issues[n]
            return {**base, **{k: i[k] for k in ("title", "body", "state", "state_reason")},
                    "user": self._user(i["user"])}
        if n in r.pulls:
            pr = r.pulls[n]
            return {**base, "title": pr.title, "body": pr.body, "state": pr.state,
                    "user": self._user(pr.user),
                    "pull_request": {"url": f"{self.url}/repos/{full}/pulls/{n}"}}
        return None

    def _list_issues(self, _b: Any, full: str) -> tuple[int, Any]:
        state = self._query().get("state", ["open"])[0]
        r = self.repo(full)
        out = []
        for n in sorted({*r.issues, *r.pulls}):
            item = self._issue_json(full, n)
            if item is not None and state in ("all", item["state"]):
                out.append(item)
        return 200, out

    def _create_issue(self, body: Any, full: str) -> tuple[int, Any]:
        r = self.repo(full)
        n = r.next_number()
        r.issues[n] = {
            "title": body["title"],
            "body": body.get("body") or "",
            "state": "open",
            "state_reason": None,
            "user": self._comment_author(),
        }
        return 201, self._issue_json(full, n)

    def _edit_issue(self, body: Any, full: str, n: str) -> tuple[int, Any]:
        r = self.repo(full)
        num = int(n)
        target: Any = r.issues.get(num)
        if target is not None:
            for key in ("title", "body", "state", "state_reason"):
                if key in body:
                    target[key] = body[key]
            target["edits"] = target.get("edits", 0) + 1
        elif num in r.pulls:
            pr = r.pulls[num]
            pr.title = body.get("title", pr.title)
            pr.body = body.get("body", pr.body)
            pr.state = body.get("state", pr.state)
        else:
            return 404, {"message": "Not Found"}
        return 200, self._issue_json(full, num)

    def _pull_files(self, _b: Any, full: str, n: str) -> tuple[int, Any]:
        pr = self._pull(full, n)
        if pr is None:
            return 404, {"message": "Not Found"}
        return 200, [{"filename": f, "status": "modified", "sha": "0" * 40} for f in pr.files]

    def _get_issue(self, _b: Any, full: str, n: str) -> tuple[int, Any]:
        known = self._issue_json(full, int(n))
        return 200, known or {
            "number": int(n),
            "url": f"{self.url}/repos/{full}/issues/{n}",
            "comments_url": f"{self.url}/repos/{full}/issues/{n}/comments",
        }

    def _list_comments(self, _b: Any, full: str, n: str) -> tuple[int, Any]:
        return 200, [c for c in self.repo(full).comments.values() if c["issue"] == int(n)]

    def _comment_author(self) -> str:
        if self._local.auth in self.actions_tokens:
            return ACTIONS_USER
        return PAT_USER if self._local.auth == PAT else f"{APP_SLUG}[bot]"

    def _create_comment(self, body: Any, full: str, n: str) -> tuple[int, Any]:
        cid = next(self.ids)
        comment = {
            "id": cid,
            "issue": int(n),
            "body": body["body"],
            "user": self._user(self._comment_author()),
            "url": f"{self.url}/repos/{full}/issues/comments/{cid}",
        }
        self.repo(full).comments[cid] = comment
        return 201, comment

    def _edit_comment(self, body: Any, full: str, cid: str) -> tuple[int, Any]:
        c = self.repo(full).comments.get(int(cid))
        if c is None:
            return 404, {"message": "Not Found"}
        c["body"] = body["body"]
        c["edits"] = c.get("edits", 0) + 1
        return 200, c

    def _check_output(self, body: Any, create: bool) -> tuple[int, Any] | None:
        """GitHub's refusals of a check run request: who may, and the output's byte limits."""
        doc = DOCS + "/checks/runs#" + ("create-a-check-run" if create else "update-a-check-run")
        if self._local.auth == PAT:
            return 403, error("You must authenticate via a GitHub App.", doc)
        out = body.get("output") or {}
        for key in ("summary", "text"):
            if len(str(out.get(key) or "").encode()) > 65535:
                return 422, error("Validation Failed", doc, [
                    {"resource": "CheckRun", "code": "custom", "field": key,
                     "message": f"{key} exceeds a maximum bytesize of 65535"}])
        if len(out.get("annotations") or ()) > 50:
            return 422, error("Validation Failed", doc, [
                {"resource": "CheckRun", "code": "custom", "field": "annotations",
                 "message": "Only 50 annotations are allowed per request"}])
        return None

    def _create_check_run(self, body: Any, full: str) -> tuple[int, Any]:
        refused = self._check_output(body, create=True)
        if refused is not None:
            return refused
        rid = next(self.ids)
        run = {
            "id": rid,
            "name": body["name"],
            "head_sha": body["head_sha"],
            "status": "completed" if body.get("conclusion") else body.get("status", "queued"),
            "conclusion": body.get("conclusion"),
            "output": dict(body.get("output") or {}),
            "annotations": list((body.get("output") or {}).get("annotations", [])),
            "history": [
                body.get("status") or ("completed" if body.get("conclusion") else "queued")
            ],
            "url": f"{self.url}/repos/{full}/check-runs/{rid}",
            "external_id": body.get("external_id"),
            "details_url": body.get("details_url"),
        }
        run["output"].pop("annotations", None)
        self.repo(full).check_runs[rid] = run
        return 201, run

    def _get_check_run(self, _b: Any, full: str, rid: str) -> tuple[int, Any]:
        run = self.repo(full).check_runs.get(int(rid))
        return (200, run) if run else (404, {"message": "Not Found"})

    def _edit_check_run(self, body: Any, full: str, rid: str) -> tuple[int, Any]:
        run = self.repo(full).check_runs.get(int(rid))
        if run is None:
            return 404, error("Not Found")
        refused = self._check_output(body, create=False)
        if refused is not None:
            return refused
        if run["status"] == "completed" and body.get("status") in ("queued", "in_progress"):
            return 422, error("Validation Failed", DOCS + "/checks/runs#update-a-check-run", [
                {"resource": "CheckRun", "code": "custom", "field": "status",
                 "message": "a completed check run cannot be queued or in progress again"}])
        if body.get("details_url"):
            run["details_url"] = body["details_url"]
        if body.get("conclusion"):
            run["status"], run["conclusion"] = "completed", body["conclusion"]
            run["history"].append("completed")
        elif body.get("status"):
            run["status"] = body["status"]
            run["history"].append(body["status"])
        out = dict(body.get("output") or {})
        run["annotations"].extend(out.pop("annotations", []))
        run["output"].update(out)
        return 200, run

    def _get_commit(self, _b: Any, full: str, sha: str) -> tuple[int, Any]:
        return 200, {"sha": sha, "url": f"{self.url}/repos/{full}/commits/{sha}"}

    def _create_status(self, body: Any, full: str, sha: str) -> tuple[int, Any]:
        st = {"id": next(self.ids), "sha": sha, **body}
        self.repo(full).statuses.append(st)
        return 201, st

    def _get_tree(self, _b: Any, full: str, sha: str) -> tuple[int, Any]:
        files = self.repo(full).trees.get(sha)
        if files is None:
            return 404, {"message": "Not Found"}
        recursive = self._query().get("recursive", ["0"])[0] not in ("0", "false", "")
        dirs = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        entries: list[dict[str, Any]] = []
        for d in sorted(dirs):
            fake_sha = hashlib.sha1(d.encode(), usedforsecurity=False).hexdigest()
            entries.append({"path": d, "mode": "040000", "type": "tree", "sha": fake_sha})
        for path, (mode, data) in sorted(files.items()):
            if mode == "160000":
                entries.append({"path": path, "mode": mode, "type": "commit",
                                "sha": data.decode()})
                continue
            entries.append({"path": path, "mode": mode, "type": "blob", "sha": git_blob_sha(data),
                            "size": len(data),
                            "url": f"{self.url}/repos/{full}/git/blobs/{git_blob_sha(data)}"})
        if not recursive:
            entries = [e for e in entries if "/" not in e["path"]]
        return 200, {"sha": sha, "url": f"{self.url}/repos/{full}/git/trees/{sha}",
                     "tree": entries, "truncated": False}

    def _get_blob(self, _b: Any, full: str, blob_sha: str) -> tuple[int, Any]:
        for files in self.repo(full).trees.values():
            for mode, data in files.values():
                if mode != "160000" and git_blob_sha(data) == blob_sha:
                    return 200, {"sha": blob_sha, "size": len(data), "node_id": f"B_{blob_sha[:8]}",
                                 "url": f"{self.url}/repos/{full}/git/blobs/{blob_sha}",
                                 "content": base64.encodebytes(data).decode(),
                                 "encoding": "base64"}
        return 404, {"message": "Not Found"}


    def _list_check_runs(self, _b: Any, full: str, sha: str) -> tuple[int, Any]:
        q = self._query()
        name = q.get("check_name", [None])[0]
        runs = [r for r in self.repo(full).check_runs.values()
                if r["head_sha"] == sha and (name is None or r["name"] == name)]
        url = f"{self.url}/repos/{full}/commits/{sha}/check-runs"
        page, links = paginate(sorted(runs, key=lambda r: -r["id"]), q, url)
        self._local.links = links
        return 200, {"total_count": len(runs), "check_runs": page}

    def _delete_branch(self, _b: Any, full: str, branch: str) -> tuple[int, Any]:
        r = self.repo(full)
        branch = unquote(branch)
        doc = DOCS + "/git/refs#delete-a-reference"
        if r.git_dir is not None:
            if self._branch_sha(r, branch) is None:
                return 422, error("Reference does not exist", doc)
            subprocess.run(["git", "-C", str(r.git_dir), "update-ref", "-d",
                            f"refs/heads/{branch}"], check=True, capture_output=True, timeout=30)
            return 204, None
        if branch not in r.refs:
            return 422, error("Reference does not exist", doc)
        r.refs.discard(branch)
        return 204, None


def git_blob_sha(data: bytes) -> str:
    """The object id git gives a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running fake GitHub; fails the test if any request broke GitHub's REST description."""
    fake = FakeGitHub(rest_spec())
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.violations == [], "requests not valid per GitHub's REST description:\n" + "\n".join(
        fake.violations
    )
