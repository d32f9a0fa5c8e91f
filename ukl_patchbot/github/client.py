"""Everything the bot says to or asks of GitHub: the one place PyGithub is used.

`GitHubClient` puts the parts together, one concern per module:
`auth` (credentials, connections, the bot's login, permissions), `transport`
(retries and rate limits), `trees` (reading a pull request), `checkruns`
(check runs and commit statuses), `comments` (the sticky report comment,
replies), `threads` (the weekly job's issues and pull requests) and
`publish` (pure rendering of what is published).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ukl_patchbot.core.jobs import JobOutcome
from ukl_patchbot.github.auth import DEFAULT_API_URL, WRITE_PERMISSIONS, Credentials
from ukl_patchbot.github.checkruns import CheckRuns
from ukl_patchbot.github.publish import comment_body
from ukl_patchbot.github.threads import Thread, Threads
from ukl_patchbot.github.transport import MAX_LISTED, ReportError, retry_wait
from ukl_patchbot.github.trees import TreeLimits, Trees

__all__ = [
    "DEFAULT_API_URL",
    "MAX_LISTED",
    "WRITE_PERMISSIONS",
    "Credentials",
    "GitHubClient",
    "ReportError",
    "Thread",
    "TreeLimits",
    "retry_wait",
]

log = logging.getLogger(__name__)


class GitHubClient(CheckRuns, Threads, Trees):
    """The bot's GitHub side: lookups for the worker, and publishing a `JobOutcome`."""

    def publish(
        self, outcome: JobOutcome, check_run_id: int | None, logs_hint: str | None = None
    ) -> list[str]:
        """Report ``outcome``: check run or statuses, then the sticky comment. Returns failures."""
        job = outcome.job
        failures: list[str] = []
        if not job.repo:
            return failures
        steps: list[tuple[str, Callable[[], None]]] = []
        if job.head_sha and self.creds.is_app:
            steps.append(
                ("check run", lambda: self._complete_check(outcome, check_run_id, logs_hint))
            )
        elif job.head_sha:
            steps.append(("commit statuses", lambda: self._statuses(outcome, logs_hint)))
        if job.pr:
            steps.append(
                (
                    "sticky comment",
                    lambda: self.upsert_comment(
                        job.repo or "", job.pr or 0, comment_body(outcome, logs_hint)
                    ),
                )
            )
        for name, step in steps:
            try:
                step()
            except ReportError as exc:
                # Reported, not raised: one failed report must not lose the others or the job.
                log.error("job %s: reporting %s failed: %s", job.key, name, exc)
                failures.append(name)
            except Exception:  # e.g. an answer PyGithub cannot parse: same rule
                log.exception("job %s: reporting %s failed", job.key, name)
                failures.append(name)
        return failures
