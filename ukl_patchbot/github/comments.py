"""Comments on pull requests and issues: the sticky report comment, replies, closing notes.

The sticky comment is found again by a hidden marker *and* our own login, so
a copied marker in someone else's comment is never edited.
"""

from __future__ import annotations

from typing import Any

from github.Repository import Repository

from ukl_patchbot.github.auth import Session
from ukl_patchbot.github.publish import MARKER


class Comments(Session):
    """Comments the bot writes, each written once even when a POST's answer was lost."""

    def reply(self, repo: str, pr: int, body: str) -> None:
        """Post ``body`` on ``pr``; a retry first looks for the comment a lost answer made."""
        r = self._repo(repo)
        tried = False

        def post() -> None:
            nonlocal tried
            if tried and self._posted(r, repo, pr, body):
                return
            tried = True
            r.get_issue(pr).create_comment(body)

        self._call(f"reply on {repo}#{pr}", post)

    def _posted(self, r: Repository, repo: str, number: int, body: str) -> bool:
        me = self.bot_login(repo).lower()
        for c in r.get_issue(number).get_comments():
            if c.body == body and c.user is not None and c.user.login.lower() == me:
                return True
        return False

    def upsert_comment(self, repo: str, pr: int, body: str) -> None:
        """Edit our marked comment on ``pr`` in place, or create it once."""
        r = self._repo(repo)
        me = self.bot_login(repo).lower()

        def find() -> Any:
            for c in r.get_issue(pr).get_comments():
                if MARKER in (c.body or "") and c.user is not None and c.user.login.lower() == me:
                    return c
            return None

        def upsert() -> None:
            # Looked up on every try: a POST whose answer was lost may have created it.
            existing = find()
            if existing is not None:
                if existing.body != body:
                    existing.edit(body)
                return
            r.get_issue(pr).create_comment(body)

        self._call(f"update the report comment on {repo}#{pr}", upsert)

    def comment_once(self, repo: str, number: int, comment: str) -> None:
        """Post ``comment`` on ``number`` unless we posted exactly it already."""
        r = self._repo(repo)

        def once() -> None:
            if not self._posted(r, repo, number, comment):
                r.get_issue(number).create_comment(comment)

        self._call(f"comment on {repo}#{number}", once)
