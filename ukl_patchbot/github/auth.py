"""Who the bot is on GitHub: credentials, the PyGithub connection per repository, its login.

Two ways to authenticate:

* GitHub App (``PATCHBOT_GITHUB_APP_ID`` + ``PATCHBOT_GITHUB_APP_PRIVATE_KEY`` or
  ``..._FILE``): a JWT signed with the App key buys an installation token for
  the repository's installation; PyGithub refreshes it before it expires.
  Results go to a check run (queued → in_progress → completed).
* Plain token (``PATCHBOT_GITHUB_TOKEN`` or ``..._FILE``): results go to one
  commit status per variant, since check runs need an App.

The bot's login (to find its own comments, issues and pull requests again) is
``PATCHBOT_GITHUB_LOGIN`` when set, ``<slug>[bot]`` for an App (``GET /app``),
the token's user for a personal token (``GET /user``), and
``github-actions[bot]`` for a workflow's ``GITHUB_TOKEN``: GitHub answers
``GET /user`` with 403 "Resource not accessible by integration" to any
installation token, and ``GITHUB_TOKEN`` is the installation token of the
GitHub Actions App.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from github import Auth, Github, GithubException, GithubIntegration
from github.Repository import Repository

from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.secrets import read_secret
from ukl_patchbot.github.transport import Transport

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
ACTIONS_LOGIN = "github-actions[bot]"
# A permission is asked of the API, then trusted this long (a revoked writer can
# command the bot for at most this long; a busy PR does not cost a call per comment).
PERMISSION_TTL = 300.0
# The App may be uninstalled and installed again (a new installation id): look it up again
# after this long rather than minting tokens for a gone installation forever.
INSTALLATION_TTL = 3600.0
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


@dataclass(frozen=True)
class Credentials:
    """How to authenticate. Secret fields are left out of ``repr`` so they never reach a log."""

    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    app_id: int | None = None
    private_key: str | None = field(default=None, repr=False)
    login: str | None = None  # the bot's login when known (PATCHBOT_GITHUB_LOGIN)

    @property
    def is_app(self) -> bool:
        return self.app_id is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        api_url = (env.get("PATCHBOT_GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        app_id = env.get("PATCHBOT_GITHUB_APP_ID")
        login = (env.get("PATCHBOT_GITHUB_LOGIN") or "").strip() or None
        if app_id:
            key = read_secret("PATCHBOT_GITHUB_APP_PRIVATE_KEY", env)
            if not key or not app_id.isdigit():
                raise UserError(
                    "GitHub App auth needs a numeric PATCHBOT_GITHUB_APP_ID and a private key",
                    hint="set PATCHBOT_GITHUB_APP_PRIVATE_KEY_FILE to the App's .pem file",
                )
            return cls(api_url=api_url, app_id=int(app_id), private_key=key, login=login)
        token = read_secret("PATCHBOT_GITHUB_TOKEN", env)
        if not token:
            raise UserError(
                "no GitHub credentials",
                hint="set PATCHBOT_GITHUB_APP_ID and PATCHBOT_GITHUB_APP_PRIVATE_KEY_FILE (App), or"
                " PATCHBOT_GITHUB_TOKEN / PATCHBOT_GITHUB_TOKEN_FILE (token)",
            )
        return cls(api_url=api_url, token=token, login=login)


class Session(Transport):
    """Connections (one per App installation, or one for a token) and the bot's identity."""

    def __init__(self, creds: Credentials, **transport: float | Callable[[float], None]) -> None:
        super().__init__(**transport)  # type: ignore[arg-type]
        self.creds = creds
        self._token_gh: Github | None = None
        self._integration: GithubIntegration | None = None
        self._installations: dict[str, tuple[float, Github]] = {}
        self._login: str | None = creds.login
        self._permissions: dict[tuple[str, str], tuple[float, str]] = {}
        self._clock: Callable[[], float] = time.monotonic

    def _gh(self, repo: str) -> Github:
        if not self.creds.is_app:
            if self._token_gh is None:
                self._token_gh = Github(
                    auth=Auth.Token(self.creds.token or ""),
                    base_url=self.creds.api_url,
                    timeout=self.timeout,
                    retry=None,
                    per_page=100,
                    lazy=True,
                    **self._pacing,
                )
            return self._token_gh
        known = self._installations.get(repo)
        if known is None or self._clock() - known[0] > INSTALLATION_TTL:
            if self._integration is None:
                auth = Auth.AppAuth(self.creds.app_id or 0, self.creds.private_key or "")
                self._integration = GithubIntegration(
                    auth=auth,
                    base_url=self.creds.api_url,
                    timeout=self.timeout,
                    retry=None,
                    per_page=100,
                    **self._pacing,
                )
            owner, name = repo.split("/", 1)
            integ = self._integration
            inst = self._call(
                f"find the App installation for {repo}",
                lambda: integ.get_repo_installation(owner, name),
            )
            gh = integ.get_github_for_installation(inst.id).withLazy(True)
            known = self._installations[repo] = (self._clock(), gh)
        return known[1]

    def web_base(self) -> str:
        """The web address matching the API (github.com, or a GitHub Enterprise host)."""
        api = self.creds.api_url.rstrip("/")
        if api == DEFAULT_API_URL:
            return "https://github.com"
        return api.removesuffix("/api/v3")

    def branch_url(self, repo: str, branch: str) -> str:
        """Where a person opens a pull request from ``branch`` by hand."""
        return f"{self.web_base()}/{repo}/compare/{branch}?expand=1"

    def _repo(self, repo: str) -> Repository:
        return self._gh(repo).get_repo(repo)

    def bot_login(self, repo: str) -> str:
        """The login our comments carry (``<slug>[bot]`` for an App); see the module doc."""
        if self._login is None:
            if self.creds.is_app:
                self._gh(repo)
                integ = self._integration
                assert integ is not None
                slug = self._call("read the App", lambda: integ.get_app().slug)
                self._login = f"{slug}[bot]"
            else:
                self._login = self._call("read the token's user", self._token_login)
        return self._login

    def _token_login(self) -> str:
        try:
            return str(self._gh("").get_user().login)
        except GithubException as exc:
            said = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
            if exc.status == 403 and "not accessible by integration" in str(said):
                log.info(
                    "GitHub: the token is an installation token; assuming it is a workflow's"
                    " GITHUB_TOKEN (%s). Set PATCHBOT_GITHUB_LOGIN if it is another App's.",
                    ACTIONS_LOGIN,
                )
                return ACTIONS_LOGIN
            raise

    def permission(self, repo: str, user: str) -> str:
        """``user``'s permission on ``repo`` (admin, maintain, write, triage, read or none).

        Always the collaborator permission API (never ``author_association``, which does
        not show team or private-membership grants), remembered `PERMISSION_TTL` seconds.
        """
        key = (repo.lower(), user.lower())
        cached = self._permissions.get(key)
        if cached is not None and self._clock() - cached[0] < PERMISSION_TTL:
            return cached[1]
        r = self._repo(repo)

        def ask() -> str:
            try:
                return str(r.get_collaborator_permission(user))
            except GithubException as exc:
                if exc.status == 404:  # not a collaborator at all
                    return "none"
                raise

        perm = self._call(f"look up {user}'s permission on {repo}", ask)
        self._permissions[key] = (self._clock(), perm)
        return perm

    def may_command(self, repo: str, user: str) -> bool:
        return self.permission(repo, user) in WRITE_PERMISSIONS
