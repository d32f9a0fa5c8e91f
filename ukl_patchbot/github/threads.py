"""The issues and pull requests the weekly job keeps, one per tracked line.

Each is found again by a hidden marker in its body and our own login.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from github import GithubException
from github.Repository import Repository

from ukl_patchbot.github.auth import ACTIONS_LOGIN, WRITE_PERMISSIONS
from ukl_patchbot.github.comments import Comments
from ukl_patchbot.github.transport import MAX_LISTED, ReportError, said

ACTIONS_PR_SETTING = (
    "Settings → Actions → General → Workflow permissions → "
    "\"Allow GitHub Actions to create and approve pull requests\""
)


class PullRequestsForbidden(ReportError):
    """GitHub does not let this token open pull requests (a repository setting)."""


@dataclass(frozen=True)
class Thread:
    """An open issue or pull request of ours, found again by a hidden marker in its body."""

    number: int
    title: str
    body: str
    url: str
    head: str | None = None  # the pull request's head branch; None for an issue


class Threads(Comments):
    """Find, open, edit and close the weekly job's issues and pull requests."""

    def _ours(self, repo: str, login: str) -> bool:
        """Whether a marked thread by ``login`` is the weekly job's: ours, or left by an
        earlier identity of the bot (``GITHUB_TOKEN``, a writer's token), so that changing
        credentials neither orphans the line's issue nor opens a second one."""
        low = login.lower()
        if low in (self.bot_login(repo).lower(), ACTIONS_LOGIN):
            return True  # github-actions[bot] writes only for this repository's workflows
        return self.permission(repo, login) in WRITE_PERMISSIONS

    def _marked(self, r: Repository, repo: str, marker: str, pulls: bool) -> list[Thread]:
        items: Any = r.get_pulls(state="open") if pulls else r.get_issues(state="open")
        found: list[Thread] = []
        for i, it in enumerate(items):
            if i >= MAX_LISTED:
                break
            if not pulls and it.pull_request is not None:
                continue  # the issues list holds pull requests too
            if marker in (it.body or "") and it.user is not None and self._ours(repo, it.user.login):
                head = it.head.ref if pulls else None
                found.append(Thread(it.number, it.title, it.body or "", it.html_url or "", head))
        return sorted(found, key=lambda th: th.number)

    def find_marked(self, repo: str, marker: str, *, pulls: bool) -> list[Thread]:
        """Our open pull requests (or issues) whose body holds ``marker``, oldest first."""
        r = self._repo(repo)
        kind = "pull requests" if pulls else "issues"
        return self._call(f"list open {kind} of {repo}", lambda: self._marked(r, repo, marker, pulls))

    def open_pull(self, repo: str, *, head: str, base: str, title: str, body: str,
                  marker: str) -> Thread:
        """Open a pull request from branch ``head``, unless ours (with ``marker``) is open.

        An open pull request from ``head`` that another identity of the bot opened (the
        branch is in this repository, so only a writer pushed it) is adopted, not
        duplicated. Raises `PullRequestsForbidden` when GitHub does not let a workflow
        token open pull requests.
        """
        r = self._repo(repo)

        def upsert() -> Thread:
            # Looked up on every try: a POST whose answer was lost may have opened it.
            for th in self._marked(r, repo, marker, True):
                if th.head == head:
                    return th
            try:
                pr = r.create_pull(base=base, head=head, title=title, body=body)
            except GithubException as exc:
                text = said(exc)
                if exc.status == 403 and "not permitted to create" in text:
                    raise PullRequestsForbidden(
                        f"GitHub: {repo} does not let GitHub Actions open pull requests"
                        f" ({text})",
                        hint=f"a repository admin can turn on {ACTIONS_PR_SETTING}, or run"
                        " the job with a GitHub App or a personal token",
                    ) from exc
                if exc.status == 422 and "already exists" in text:
                    return self._adopt(r, repo, head, title, body)
                raise
            return Thread(pr.number, title, body, pr.html_url or "", head)

        return self._call(f"open a pull request from {head} on {repo}", upsert)

    def _adopt(self, r: Repository, repo: str, head: str, title: str, body: str) -> Thread:
        owner = repo.split("/", 1)[0]
        for pr in r.get_pulls(state="open", head=f"{owner}:{head}"):
            r.get_issue(pr.number).edit(title=title, body=body)
            return Thread(pr.number, title, body, pr.html_url or "", head)
        raise ReportError(f"GitHub: {repo} says a pull request from {head} exists, but none is open")

    def delete_branch(self, repo: str, branch: str) -> None:
        """Delete ``branch`` of ``repo`` (a superseded pull request's); gone already is fine."""
        r = self._repo(repo)

        # Not ``get_git_ref(...).delete()``: a lazy GitRef's URL is ``/git/ref/...``, which
        # GitHub serves for GET only; DELETE is ``/git/refs/{ref}``, the ref one encoded
        # path segment (``heads%2Fpatchbot%2F...``) as Octokit sends it.
        url = f"{r.url}/git/refs/{quote('heads/' + branch, safe='')}"

        def delete() -> None:
            try:
                r.requester.requestJsonAndCheck("DELETE", url)
            except GithubException as exc:
                if exc.status not in (404, 422):  # 422: "Reference does not exist"
                    raise

        self._call(f"delete branch {branch} of {repo}", delete)

    def closed_pull(self, repo: str, *, head: str, markers: tuple[str, ...]) -> int | None:
        """Our pull request from ``head``, its body holding all ``markers``, closed unmerged."""
        r = self._repo(repo)
        owner = repo.split("/", 1)[0]

        def find() -> int | None:
            for i, pr in enumerate(r.get_pulls(state="closed", head=f"{owner}:{head}")):
                if i >= MAX_LISTED:
                    break
                ours = pr.user is not None and self._ours(repo, pr.user.login)
                body = pr.body or ""
                if ours and all(m in body for m in markers) and not pr.merged_at:
                    return int(pr.number)
            return None

        return self._call(f"list closed pull requests from {head} on {repo}", find)

    def open_issue(self, repo: str, *, title: str, body: str, marker: str) -> Thread:
        """Open an issue, unless ours with ``marker`` is open already (then that one)."""
        r = self._repo(repo)

        def upsert() -> Thread:
            found = self._marked(r, repo, marker, False)
            if found:
                return found[0]
            issue = r.create_issue(title=title, body=body)
            return Thread(issue.number, title, body, issue.html_url or "")

        return self._call(f"open an issue on {repo}", upsert)

    def edit_thread(self, repo: str, number: int, *, title: str, body: str) -> None:
        """Set the title and body of issue or pull request ``number``."""
        r = self._repo(repo)
        self._call(f"edit {repo}#{number}",
                   lambda: r.get_issue(number).edit(title=title, body=body))

    def close_thread(self, repo: str, number: int, comment: str, *, pull: bool) -> None:
        """Say why in a comment (once, even when retried), then close ``number``."""
        r = self._repo(repo)
        self.comment_once(repo, number, comment)
        if pull:
            self._call(f"close {repo}#{number}", lambda: r.get_issue(number).edit(state="closed"))
        else:
            self._call(f"close {repo}#{number}",
                       lambda: r.get_issue(number).edit(state="closed", state_reason="completed"))
