"""A conflicting hunk is annotated on its @@ line in the patch file, and the annotations
reach the check run in batches of at most 50 (issue 11, finding 8)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.helpers.fakes_github import APP_ID, FakeGitHub, PullRequest, fake_github
from tests.helpers.rebase_world import build_world
from tests.helpers.smallrepo import edit, numbered
from ukl_patchbot.core.jobs import Job, JobKind
from ukl_patchbot.dispatch import execute
from ukl_patchbot.dispatch.annotate import check_annotations
from ukl_patchbot.github.client import Credentials, GitHubClient

__all__ = ["fake_github"]

REPO = "ukl/patches"
SHA = "d4" * 20


def conflicting(tmp_path: Path) -> object:
    return build_world(
        tmp_path,
        [("a: change line 20", {"a.c": edit(numbered("a"), "a line 20\n", "a line twenty\n")}),
         ("d: change line 30", {"d.c": edit(numbered("d"), "d line 30\n", "d line thirty\n")})],
        {"a.c": edit(numbered("a"), "a line 20\n", "a line 20 upstream\n")},
    )


def test_a_conflicting_hunk_is_annotated_on_its_patch_line(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    w = conflicting(tmp_path)
    job = Job(JobKind.REBASE, component="linux", tag="v1.1", repo=REPO, pr=3)
    out = execute.execute_job(job, w.cfg)  # type: ignore[attr-defined]
    job = replace(job, head_sha=SHA)  # (a head sha would make it read the PR's series)
    out = replace(out, job=job)
    [ann] = out.annotations
    patch = min(p.name for p in w.series_dir.glob("0001-*.patch"))  # type: ignore[attr-defined]
    assert ann.path == f"patchsets/linux/{patch}" and ann.level == "failure"
    text = (w.series_dir / patch).read_text().splitlines()  # type: ignore[attr-defined]
    assert text[ann.start_line - 1].startswith("@@ -17,7 +17,7 @@")
    assert "a.c" in ann.message and "v1.1" in ann.title

    fake_github.repo(REPO).pulls[3] = PullRequest(3, SHA)
    gh = GitHubClient(Credentials(api_url=fake_github.url, app_id=APP_ID,
                                  private_key=fake_github.private_key_pem), pace=False)
    many = replace(out, annotations=out.annotations * 120)
    cid = gh.start_check(job, None)
    assert gh.publish(many, cid).failures == ()
    run = fake_github.repo(REPO).check_runs[cid or 0]
    assert len(run["annotations"]) == 120 and run["annotations"][0]["start_line"] == ann.start_line
    sizes = [len((r.body.get("output") or {}).get("annotations") or [])
             for r in fake_github.calls("PATCH", r"/check-runs/")]
    assert max(sizes) <= 50 and sum(sizes) == 120


def test_a_check_whose_series_does_not_apply_marks_the_patch(tmp_path: Path) -> None:
    from ukl_patchbot.check.report import Attribution, CheckReport, PatchRow, RebaseSummary, Verdict

    w = conflicting(tmp_path)
    rb = RebaseSummary("linux", "v1.0", "v1.1", False,
                       (PatchRow("0001-a.patch", "conflict", "a.c: hunk at 17 conflicts"),
                        PatchRow("0002-d.patch", "clean")))
    report = CheckReport("linux", "v1.1", Verdict.FAIL, Attribution.REBASE, "", rebase=rb)
    [ann] = check_annotations(w.cfg, report)  # type: ignore[attr-defined]
    assert (ann.path, ann.start_line, ann.level) == ("patchsets/linux/0001-a.patch", 1, "failure")
    assert ann.message == "a.c: hunk at 17 conflicts"
