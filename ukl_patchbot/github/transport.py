"""Calls to GitHub: one logical operation at a time, retried when a retry can help.

Every call goes through `Transport._call`, which retries server errors, lost
connections and rate limits a bounded number of times with a bounded wait, and
turns what is left into `ReportError`. PyGithub's own retry is off: it would
resend a POST whose answer was lost, and a second sticky comment is exactly
what must not happen; our callers look up before they create instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from github import GithubException

from ukl_patchbot.core.errors import InfraError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Listing stops here: the weekly job's threads are recent, a busy repo's backlog is not.
MAX_LISTED = 1000


# GitHub asks clients hit by a secondary rate limit without ``Retry-After`` to wait at
# least a minute; a 429 without the header is treated the same.
SECONDARY_WAIT = 60.0


class ReportError(InfraError):
    """GitHub could not be reached or refused, after the retries."""


class RateLimited(ReportError):
    """GitHub asked us to wait longer than we may block; try again after ``wait`` seconds."""

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message, hint=f"retry after {wait:.0f}s")
        self.wait = wait


def bind(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """``fn`` with ``args`` fixed now (a lambda in a loop would see the loop's last values)."""
    return lambda: fn(*args)


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("message") or "")


def rate_limit_wait(exc: Exception, attempt: int = 1) -> float | None:
    """Seconds GitHub asks us to wait when ``exc`` is a rate limit; None when it is not one.

    ``Retry-After`` wins; then a spent primary limit (``x-ratelimit-remaining: 0``) waits
    for ``x-ratelimit-reset``; a secondary limit (403 or 429 saying so) or a bare 429
    waits at least `SECONDARY_WAIT`, doubling with each attempt.
    """
    if not isinstance(exc, GithubException) or exc.status not in (403, 429):
        return None
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    if "retry-after" in headers:
        try:
            return max(0.0, float(headers["retry-after"]))
        except ValueError:
            return SECONDARY_WAIT
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - time.time()) + 1.0
        except ValueError:
            return SECONDARY_WAIT
    if exc.status == 429 or "secondary rate limit" in _message(exc).lower():
        return SECONDARY_WAIT * 2.0 ** (attempt - 1)
    return None  # a plain 403: forbidden, a retry cannot help


def retry_wait(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``exc``; None when retrying cannot help."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return min(2.0**attempt, 30.0)
    if not isinstance(exc, GithubException):
        return None
    if exc.status in (403, 429):
        return rate_limit_wait(exc, attempt)
    if exc.status >= 500:
        return min(2.0**attempt, 30.0)
    return None


def said(exc: GithubException) -> str:
    """Everything GitHub said in a refusal: its message and each of its ``errors``."""
    data = exc.data if isinstance(exc.data, dict) else {}
    parts = [str(data.get("message") or "")]
    for err in data.get("errors") or ():
        parts.append(str(err.get("message") or "") if isinstance(err, dict) else str(err))
    return "; ".join(p for p in parts if p)


def _said(exc: Exception) -> str:
    """GitHub's own words for a refusal, for the error message (``: Not Found``)."""
    if isinstance(exc, GithubException) and said(exc):
        return ": " + said(exc)[:300]
    return ""


class Transport:
    """Retry policy and pacing shared by every part of the client."""

    def __init__(
        self,
        *,
        attempts: int = 5,
        max_wait: float = 300.0,
        timeout: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        pace: bool = True,
    ) -> None:
        """``pace=False`` drops PyGithub's spacing of requests (GitHub asks for ~1 s between
        writes to avoid secondary rate limits; a local fake server does not need it)."""
        self._pacing: dict[str, Any] = (
            {} if pace else {"seconds_between_requests": None, "seconds_between_writes": None}
        )
        self.attempts = attempts
        self.max_wait = max_wait
        self.timeout = timeout
        self._sleep = sleep

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one logical API operation), retrying what a retry can fix."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except (GithubException, requests.RequestException) as exc:
                wait = retry_wait(exc, attempt)
                status = getattr(exc, "status", type(exc).__name__)
                limited = rate_limit_wait(exc, attempt) is not None
                if limited and wait is not None and (wait > self.max_wait or attempt == self.attempts):
                    # Not a failure of the report: the caller keeps it and tries again later.
                    raise RateLimited(
                        f"GitHub: {what} rate limited ({status}); GitHub asks to wait {wait:.0f}s",
                        wait,
                    ) from exc
                if wait is None or attempt == self.attempts:
                    raise ReportError(
                        f"GitHub: {what} failed ({status}{_said(exc)})"
                    ) from exc
                log.warning(
                    "GitHub: %s failed (%s), retry %d/%d in %.1fs",
                    what,
                    status,
                    attempt,
                    self.attempts - 1,
                    wait,
                )
                self._sleep(wait)
        raise AssertionError("unreachable")
