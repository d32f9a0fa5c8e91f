"""From a trigger to the jobs it asks for, deciding on the way who may have what built.

A pull request event asks for a check of each component whose series (or,
for Linux, ``kconfigs/``) it touches; a comment command for what it names (a
tag, a retry of the last job); a check run's Re-run button for the job it
names. The trust model (`ukl_patchbot.bot.trust`) applies here: an outside
contributor's head waits for a maintainer's approval, which a maintainer's
command gives, and a command from someone without write access gets one
reply an hour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from ukl_patchbot.bot.ledger import JobRecord, JobState, Ledger
from ukl_patchbot.bot.routing import Command, Trigger
from ukl_patchbot.bot.runtime import Reporter
from ukl_patchbot.bot.trust import PermissionCache
from ukl_patchbot.core import versions
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.jobs import Conclusion, Job, JobKind, JobOutcome
from ukl_patchbot.github.publish import denied_reply, safe_repo_path

log = logging.getLogger(__name__)

DENIAL_REPLY_EVERY = 3600.0  # at most one "you may not" reply per user and PR in this time


def components_touched(cfg: Config, paths: tuple[str, ...] | list[str]) -> list[str]:
    """Components whose series directory (or, for linux, ``kconfigs/``) a path lies in."""
    found: set[str] = set()
    roots = [
        (name, d.relative_to(cfg.root).as_posix())
        for name, c in cfg.components.items()
        for d in c.series_dirs()
        if d.is_relative_to(cfg.root)
    ]
    for p in paths:
        safe = safe_repo_path(p)
        if safe is None:
            log.warning("ignoring unsafe path %r in a change", p[:200])
            continue
        for name, root in roots:
            if safe.startswith(root + "/"):
                found.add(name)
        if safe.startswith("kconfigs/") and "linux" in cfg.components:
            found.add("linux")
    return sorted(found)


def component_for_tag(cfg: Config, tag: str) -> str:
    """The component whose tags ``tag`` is one of (``glibc-2.36`` → glibc); a tag of
    none is taken as Linux's, whose mirror then says it does not know it."""
    prefixes = {c.name: c.tag_prefix for c in cfg.components.values()}
    return (versions.component_of_tag(tag, prefixes)
            or ("linux" if "linux" in prefixes else sorted(prefixes)[0]))


class JobPlanner:
    """The jobs a trigger asks for; one per worker (it caches collaborator permissions).

    ``reporter`` gives the GitHub side (it raises when there is none); ``publish``
    reports an outcome the way the worker reports a job's (the "waiting for a
    maintainer's approval" result of an outside contributor's pull request).
    """

    def __init__(self, cfg: Config, ledger: Ledger, reporter: Callable[[], Reporter],
                 publish: Callable[[JobOutcome, JobRecord], object]) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self._reporter = reporter
        self._publish = publish
        self._perms = PermissionCache(lambda repo, user: reporter().may_command(repo, user))

    def jobs_for(self, t: Trigger) -> list[Job]:
        """The jobs a trigger asks for (possibly none, e.g. a PR that touches no series)."""
        rep = self._reporter()
        if t.event == "issue_comment":
            return self._comment_jobs(rep, t)
        if t.job_key is not None:
            return self._rerun_job(t)
        if t.event in ("pull_request", "check_suite") and t.pr is not None:
            comps = components_touched(self.cfg, rep.pr_files(t.repo, t.pr))
            if comps and not self._may_build(t):
                self._await_approval(t, comps)
                return []
        else:
            comps = (
                components_touched(self.cfg, t.changed_paths)
                if t.changed_paths is not None
                else sorted(self.cfg.components)
            )
        if not comps:
            log.info(
                "delivery %s: %s changes no patch series or kconfig fragment", t.delivery_id, t.repo
            )
        return [
            Job(
                JobKind.CHECK,
                component=c,
                repo=t.repo,
                pr=t.pr,
                head_sha=t.head_sha,
                requested_by=t.actor or None,
                delivery_id=t.delivery_id,
            )
            for c in comps
        ]

    def _rerun_job(self, t: Trigger) -> list[Job]:
        """The job a check run's Re-run button names (its ``external_id`` is the job key)."""
        rec = self.ledger.get(t.job_key or "")
        if rec is None or rec.job.repo != t.repo or rec.job.head_sha != t.head_sha:
            log.info("delivery %s: re-run of unknown job %s ignored", t.delivery_id, t.job_key)
            return []
        return [replace(rec.job, requested_by=t.actor or None, delivery_id=t.delivery_id)]

    def _may_build(self, t: Trigger) -> bool:
        """A pull request is built on its own only when its author may write to the repository;
        otherwise a maintainer must have approved this head sha."""
        assert t.pr is not None and t.head_sha is not None
        author = t.author or t.actor
        if self._perms.may_write(t.repo, author):
            return True
        by = self.ledger.approved_by(t.repo, t.pr, t.head_sha)
        if by:
            log.info("delivery %s: %s#%d at %s approved by %s", t.delivery_id, t.repo, t.pr,
                     t.head_sha[:12], by)
        return by is not None

    def _await_approval(self, t: Trigger, comps: list[str]) -> None:
        """Say once per head sha that a maintainer must approve the build."""
        assert t.pr is not None and t.head_sha is not None
        author = t.author or t.actor
        log.info("delivery %s: %s#%d by %s (no write access) waits for approval of %s",
                 t.delivery_id, t.repo, t.pr, author, t.head_sha[:12])
        if not self.ledger.claim(f"awaiting:{t.repo.lower()}#{t.pr}@{t.head_sha}"):
            return
        summary = (
            f"This pull request was not built: its author @{author} does not have write access"
            f" to {t.repo}, and the build runs the pull request's patches.\n\n"
            f"A maintainer who has reviewed commit `{t.head_sha}` can comment"
            " `/patchbot check` to build it. A new push needs a new approval."
        )
        for c in comps:
            job = Job(JobKind.CHECK, component=c, repo=t.repo, pr=t.pr, head_sha=t.head_sha,
                      requested_by=author or None, delivery_id=t.delivery_id)
            outcome = JobOutcome(job, Conclusion.NEUTRAL, "waiting for a maintainer's approval",
                                 summary)
            self._publish(outcome, JobRecord(job, JobState.DONE, 0, None, 0.0, {}))

    def _deny(self, rep: Reporter, t: Trigger) -> None:
        """Reply to a command from someone who may not give it, at most once an hour per PR."""
        assert t.pr is not None
        log.info("delivery %s: %s may not command the bot on %s", t.delivery_id, t.actor, t.repo)
        marker = f"denied:{t.repo.lower()}#{t.pr}:{t.actor.lower()}"
        if self.ledger.claim(marker, ttl=DENIAL_REPLY_EVERY):
            rep.reply(t.repo, t.pr, denied_reply(t.actor, t.comment or str(t.command)))

    def _comment_jobs(self, rep: Reporter, t: Trigger) -> list[Job]:
        assert t.pr is not None
        if t.actor.lower() == rep.bot_login(t.repo).lower():
            log.info("delivery %s: our own comment, ignored", t.delivery_id)
            return []
        if t.command == Command.DENY or not self._perms.may_write(t.repo, t.actor):
            self._deny(rep, t)
            return []
        head = rep.pr_head(t.repo, t.pr)
        # A maintainer's command approves the head it runs on (for an outside contributor's PR).
        self.ledger.approve(t.repo, t.pr, head, t.actor)
        if t.command == Command.RETRY:
            last = self.ledger.last_job_for(t.repo, t.pr)
            if last is not None:
                return [replace(last.job, head_sha=head, requested_by=t.actor,
                                delivery_id=t.delivery_id)]
            # Nothing ran yet (e.g. the event failed before any job): check the PR afresh.
        kind = JobKind.REBASE if t.command == Command.REBASE else JobKind.CHECK
        comps = (
            [component_for_tag(self.cfg, t.tag)]
            if t.tag
            else components_touched(self.cfg, rep.pr_files(t.repo, t.pr)) or ["linux"]
        )
        return [
            Job(
                kind,
                component=c,
                tag=t.tag,
                repo=t.repo,
                pr=t.pr,
                head_sha=head,
                requested_by=t.actor,
                delivery_id=t.delivery_id,
            )
            for c in comps
        ]
