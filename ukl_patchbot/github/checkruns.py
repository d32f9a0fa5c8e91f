"""A job's result as a check run (App auth) or as commit statuses (token auth).

A check run carries the job key as ``external_id``, so a create whose answer
was lost is found again on the head commit before a second POST, and a
``check_run`` ``rerequested`` event (the Re-run button) names the job to run
again. A completed run never goes back to in_progress: a job run again gets a
new check run, as GitHub's own re-runs do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from github.Repository import Repository

from ukl_patchbot.core.jobs import Job, JobOutcome, StatusLine
from ukl_patchbot.github.auth import Session
from ukl_patchbot.github.publish import check_name, check_run_plan, status_description
from ukl_patchbot.github.transport import bind


def web_url(hint: str | None) -> str | None:
    """``hint`` when it is a link GitHub can show (a local out dir is not)."""
    return hint if hint and hint.startswith(("http://", "https://")) else None


class CheckRuns(Session):
    """Check runs and commit statuses of a job's head commit."""

    def _open_run(self, r: Repository, job: Job) -> int | None:
        """Our check run for ``job`` on its head that is not completed yet, if any."""
        commit = r.get_commit(job.head_sha or "")
        for run in commit.get_check_runs(check_name=check_name(job), filter="latest"):
            if run.external_id == job.key and run.status != "completed":
                return int(run.id)
        return None

    def _create_run(self, r: Repository, job: Job, what: str, **fields: Any) -> int:
        """POST a check run for ``job``; on a retry, first look for the one a lost answer made."""
        tried = False

        def create() -> int:
            nonlocal tried
            if tried:
                found = self._open_run(r, job)
                if found is not None:
                    return found
            tried = True
            run = r.create_check_run(
                name=check_name(job), head_sha=job.head_sha or "", external_id=job.key, **fields
            )
            return int(run.id)

        return self._call(what, create)

    def start_check(
        self,
        job: Job,
        check_run_id: int | None,
        *,
        queued: bool = False,
        details_url: str | None = None,
    ) -> int | None:
        """Create (or move) the job's check run to queued/in_progress. None without App auth.

        A completed ``check_run_id`` (the job is run again) is left as it is and a new
        run is created; the id returned is the one to keep.
        """
        if not self.creds.is_app or not job.repo or not job.head_sha:
            return None
        r = self._repo(job.repo)
        status = "queued" if queued else "in_progress"
        output: dict[str, Any] = {
            "title": status.replace("_", " "),
            "summary": f"patchbot {job.kind} is {status}",
        }
        link: dict[str, Any] = {"details_url": details_url} if web_url(details_url) else {}
        if check_run_id is not None:
            cid = check_run_id

            def move() -> int | None:
                run = r.get_check_run(cid)
                if run.status == "completed":
                    return None
                run.edit(status=status, output=output, **link)
                return cid

            moved = self._call(f"mark check run {cid} {status}", move)
            if moved is not None:
                return moved
        return self._create_run(
            r,
            job,
            f"create check run on {job.head_sha[:12]}",
            status=status,
            started_at=datetime.now(UTC),
            output=output,
            **link,
        )

    def _complete_check(
        self, outcome: JobOutcome, check_run_id: int | None, logs_hint: str | None
    ) -> None:
        job = outcome.job
        r = self._repo(job.repo or "")
        plan = check_run_plan(outcome, logs_hint)
        done = datetime.now(UTC)
        link: dict[str, Any] = {"details_url": logs_hint} if web_url(logs_hint) else {}
        if check_run_id is None:
            check_run_id = self._create_run(
                r,
                job,
                "create completed check run",
                conclusion=plan.conclusion,
                completed_at=done,
                output=plan.output,
                **link,
            )
        else:
            cid = check_run_id
            self._call(
                f"complete check run {cid}",
                lambda: r.get_check_run(cid).edit(
                    conclusion=plan.conclusion, completed_at=done, output=plan.output, **link
                ),
            )
        for i, batch in enumerate(plan.more_annotations, start=2):
            cid = check_run_id
            out = {
                "title": plan.output["title"],
                "summary": plan.output["summary"],
                "annotations": list(batch),
            }
            self._call(
                f"annotations batch {i} on check run {cid}",
                bind(lambda c, o: r.get_check_run(c).edit(output=o), cid, out),
            )

    def _statuses(self, outcome: JobOutcome, logs_hint: str | None) -> None:
        job = outcome.job
        r = self._repo(job.repo or "")
        sha = job.head_sha or ""
        lines = outcome.statuses
        if not lines:
            state = {"success": "success", "failure": "failure", "neutral": "success"}.get(
                str(outcome.conclusion), "error"
            )
            lines = (StatusLine(f"patchbot/{job.component}", state, outcome.title),)
        commit = self._call(f"read commit {sha[:12]}", lambda: r.get_commit(sha))
        target = web_url(logs_hint)
        for line in lines:
            kwargs: dict[str, Any] = {
                "state": line.state,
                "description": status_description(line),
                "context": line.context,
            }
            if target:
                kwargs["target_url"] = target
            self._call(
                f"status {line.context} on {sha[:12]}",
                bind(lambda kw: commit.create_status(**kw), kwargs),
            )
