"""A job's result as a check run (App auth) or as commit statuses (token auth)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ukl_patchbot.core.jobs import Job, JobOutcome, StatusLine
from ukl_patchbot.github.auth import Session
from ukl_patchbot.github.publish import check_name, check_run_plan, status_description
from ukl_patchbot.github.transport import bind


class CheckRuns(Session):
    """Check runs and commit statuses of a job's head commit."""

    def start_check(
        self, job: Job, check_run_id: int | None, *, queued: bool = False
    ) -> int | None:
        """Create (or move) the job's check run to queued/in_progress. None without App auth."""
        if not self.creds.is_app or not job.repo or not job.head_sha:
            return None
        r = self._repo(job.repo)
        status = "queued" if queued else "in_progress"
        output: dict[str, Any] = {
            "title": status.replace("_", " "),
            "summary": f"patchbot {job.kind} is {status}",
        }
        if check_run_id is not None:

            def move() -> int:
                run = r.get_check_run(check_run_id)
                run.edit(status=status, output=output)
                return check_run_id

            return self._call(f"mark check run {check_run_id} {status}", move)
        sha = job.head_sha
        run = self._call(
            f"create check run on {sha[:12]}",
            lambda: r.create_check_run(
                name=check_name(job),
                head_sha=sha,
                status=status,
                external_id=job.key,
                started_at=datetime.now(UTC),
                output=output,
            ),
        )
        return int(run.id)

    def _complete_check(
        self, outcome: JobOutcome, check_run_id: int | None, logs_hint: str | None
    ) -> None:
        job = outcome.job
        r = self._repo(job.repo or "")
        plan = check_run_plan(outcome, logs_hint)
        done = datetime.now(UTC)
        if check_run_id is None:
            run = self._call(
                "create completed check run",
                lambda: r.create_check_run(
                    name=plan.name,
                    head_sha=job.head_sha or "",
                    external_id=job.key,
                    conclusion=plan.conclusion,
                    completed_at=done,
                    output=plan.output,
                ),
            )
            check_run_id = int(run.id)
        else:
            cid = check_run_id
            self._call(
                f"complete check run {cid}",
                lambda: r.get_check_run(cid).edit(
                    conclusion=plan.conclusion, completed_at=done, output=plan.output
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
        target = logs_hint if logs_hint and logs_hint.startswith(("http://", "https://")) else None
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
