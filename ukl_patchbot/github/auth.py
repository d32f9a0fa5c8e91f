"""Who the bot is on GitHub: credentials, the PyGithub connection per repository, its login.

Two ways to authenticate:

* GitHub App (``PATCHBOT_GITHUB_APP_ID`` + ``PATCHBOT_GITHUB_APP_PRIVATE_KEY`` or
  ``..._FILE``): a JWT signed with the App key buys an installation token for
  the repository's installation; PyGithub refreshes it before it expires.
  Results go to a check run (queued → in_progress → completed).
* Plain token (``PATCHBOT_GITHUB_TOKEN`` or ``..._FILE``): results go to one
  commit status per variant, since check runs need an App.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from github import Auth, Github, GithubException, GithubIntegration
from github.Repository import Repository

from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.secrets import read_secret
from ukl_patchbot.github.transport import Transport

DEFAULT_API_URL = "https://api.github.com"
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


@dataclass(frozen=True)
class Credentials:
    """How to authenticate. Secret fields are left out of ``repr`` so they never reach a log."""

    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    app_id: int | None = None
    private_key: str | None = field(default=None, repr=False)

    @property
    def is_app(self) -> bool:
        return self.app_id is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        api_url = (env.get("PATCHBOT_GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        app_id = env.get("PATCHBOT_GITHUB_APP_ID")
        if app_id:
            key = read_secret("PATCHBOT_GITHUB_APP_PRIVATE_KEY", env)
            if not key or not app_id.isdigit():
                raise UserError(
                    "GitHub App auth needs a numeric PATCHBOT_GITHUB_APP_ID and a private key",
                    hint="set PATCHBOT_GITHUB_APP_PRIVATE_KEY_FILE to the App's .pem file",
                )
            return cls(api_url=api_url, app_id=int(app_id), private_key=key)
        token = read_secret("PATCHBOT_GITHUB_TOKEN", env)
        if not token:
            raise UserError(
                "no GitHub credentials",
                hint="set PATCHBOT_GITHUB_APP_ID and PATCHBOT_GITHUB_APP_PRIVATE_KEY_FILE (App), or"
                " PATCHBOT_GITHUB_TOKEN / PATCHBOT_GITHUB_TOKEN_FILE (token)",
            )
        return cls(api_url=api_url, token=token)


class Session(Transport):
    """Connections (one per App installation, or one for a token) and the bot's identity."""

    def __init__(self, creds: Credentials, **transport: float | Callable[[float], None]) -> None:
        super().__init__(**transport)  # type: ignore[arg-type]
        self.creds = creds
        self._token_gh: Github | None = None
        self._integration: GithubIntegration | None = None
        self._installations: dict[str, Github] = {}
        self._login: str | None = None

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
        if repo not in self._installations:
            if self._integration is None:
                auth = Auth.AppAuth(self.creds.app_id or 0, self.creds.private_key or "")
                self._integration = GithubIntegration(
                    auth=auth,
                    base_url=self.creds.api_url,
                    timeout=self.timeout,
                    retry=None,
                    **self._pacing,
                )
            owner, name = repo.split("/", 1)
            integ = self._integration
            inst = self._call(
                f"find the App installation for {repo}",
                lambda: integ.get_repo_installation(owner, name),
            )
            self._installations[repo] = integ.get_github_for_installation(inst.id).withLazy(True)
        return self._installations[repo]

    def _repo(self, repo: str) -> Repository:
        return self._gh(repo).get_repo(repo)

    def bot_login(self, repo: str) -> str:
        """The login our comments carry (``<slug>[bot]`` for an App)."""
        if self._login is None:
            if self.creds.is_app:
                self._gh(repo)
                integ = self._integration
                assert integ is not None
                slug = self._call("read the App", lambda: integ.get_app().slug)
                self._login = f"{slug}[bot]"
            else:
                gh = self._gh(repo)
                self._login = self._call("read the token's user", lambda: gh.get_user().login)
        return self._login

    def permission(self, repo: str, user: str) -> str:
        """``user``'s permission on ``repo`` (admin, maintain, write, triage, read or none)."""
        r = self._repo(repo)

        def ask() -> str:
            try:
                return r.get_collaborator_permission(user)
            except GithubException as exc:
                if exc.status == 404:  # not a collaborator at all
                    return "none"
                raise

        return self._call(f"look up {user}'s permission on {repo}", ask)

    def may_command(self, repo: str, user: str) -> bool:
        return self.permission(repo, user) in WRITE_PERMISSIONS
