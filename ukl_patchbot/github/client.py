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
from ukl_patchbot.github.publish import Published, comment_body
from ukl_patchbot.github.threads import PullRequestsForbidden, Thread, Threads
from ukl_patchbot.github.transport import MAX_LISTED, RateLimited, ReportError, retry_wait
from ukl_patchbot.github.trees import TreeLimits, Trees

__all__ = [
    "DEFAULT_API_URL",
    "MAX_LISTED",
    "WRITE_PERMISSIONS",
    "Credentials",
    "GitHubClient",
    "Published",
    "PullRequestsForbidden",
    "RateLimited",
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
    ) -> Published:
        """Report ``outcome``: check run or statuses, then the sticky comment.

        Each step is tried even when an earlier one failed; a step GitHub rate limited
        sets ``retry_after`` so the caller publishes again later instead of dropping it.
        """
        job = outcome.job
        failures: list[str] = []
        waits: list[float] = []
        for name, step in self._publish_steps(outcome, check_run_id, logs_hint):
            try:
                step()
            except RateLimited as exc:
                log.warning("job %s: reporting %s: %s; will publish again", job.key, name, exc)
                failures.append(name)
                waits.append(exc.wait)
            except ReportError as exc:
                # Reported, not raised: one failed report must not lose the others or the job.
                log.error("job %s: reporting %s failed: %s", job.key, name, exc)
                failures.append(name)
            except Exception:  # e.g. an answer PyGithub cannot parse: same rule
                log.exception("job %s: reporting %s failed", job.key, name)
                failures.append(name)
        return Published(tuple(failures), max(waits) if waits else None)

    def _publish_steps(
        self, outcome: JobOutcome, check_run_id: int | None, logs_hint: str | None
    ) -> list[tuple[str, Callable[[], None]]]:
        job = outcome.job
        steps: list[tuple[str, Callable[[], None]]] = []
        if not job.repo:
            return steps
        if job.head_sha and self.creds.is_app:
            steps.append(
                ("check run", lambda: self._complete_check(outcome, check_run_id, logs_hint))
            )
        elif job.head_sha:
            steps.append(("commit statuses", lambda: self._statuses(outcome, logs_hint)))
        if job.pr:
            body = comment_body(outcome, logs_hint)
            steps.append(
                ("sticky comment", lambda: self.upsert_comment(job.repo or "", job.pr or 0, body))
            )
        return steps
