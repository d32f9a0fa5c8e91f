"""Pure renderers: truncation, annotation batches, the sticky comment, path safety."""

from __future__ import annotations

import pytest

from ukl_patchbot.core.jobs import Annotation, Conclusion, Job, JobKind, JobOutcome, StatusLine
from ukl_patchbot.github.publish import (
    MARKER,
    MAX_COMMENT,
    check_run_plan,
    clean_annotations,
    comment_body,
    error_outcome,
    safe_repo_path,
    status_description,
    truncate,
)

JOB = Job(
    JobKind.REBASE,
    component="linux",
    tag="v6.1.192",
    repo="ukl/patches",
    pr=3,
    head_sha="0123456789abcdef" * 2 + "01234567",
)


def test_truncate_keeps_short_text_and_cuts_long_text_at_a_line() -> None:
    assert truncate("short", 100, None) == "short"
    text = "".join(f"line {i}\n" for i in range(5000))
    out = truncate(text, 1000, "https://logs/1")
    assert len(out) <= 1000
    body, note = out.split("\n\n---\n")
    assert body.endswith(tuple(f"line {i}" for i in range(5000)))  # whole lines only
    assert f"{len(body)} of {len(text)} characters shown" in note and "https://logs/1" in note


def test_truncate_closes_an_open_code_fence() -> None:
    text = "```\n" + "x\n" * 2000 + "```\n"
    out = truncate(text, 500, None)
    assert out.split("\n\n---\n")[0].count("```") % 2 == 0


@pytest.mark.parametrize(
    "path,ok",
    [
        ("patchsets/linux/0001-a.patch", True),
        ("kconfigs/ukl.config", True),
        ("../etc/passwd", False),
        ("patchsets/../../x", False),
        ("/etc/passwd", False),
        ("patchsets/./x", False),
        ("a\\..\\b", False),
        ("", False),
        ("..", False),
        ("a\0b", False),
    ],
)
def test_safe_repo_path(path: str, ok: bool) -> None:
    assert (safe_repo_path(path) is not None) is ok


def test_annotations_are_cleaned_and_batched_by_50() -> None:
    anns = (
        *(Annotation("patchsets/linux/0002-b.patch", i, i + 1, "failure", "conflict")
          for i in range(1, 121)),
        Annotation("../outside.patch", 1, 1, "failure", "escape"),
        Annotation("patchsets/linux/x.patch", 5, 2, "failure", "bad range"),
        Annotation("patchsets/linux/x.patch", 1, 1, "fatal", "unknown level"),
    )
    assert len(clean_annotations(anns)) == 121
    plan = check_run_plan(
        JobOutcome(JOB, Conclusion.FAILURE, "2 conflicts", "details", annotations=anns), None
    )
    sizes = [len(plan.output["annotations"])] + [len(b) for b in plan.more_annotations]
    assert sizes == [50, 50, 21]
    assert plan.more_annotations[-1][-1]["annotation_level"] == "warning"
    assert plan.conclusion == "failure" and plan.name == "patchbot rebase (linux)"


def test_comment_body_has_marker_table_and_fits() -> None:
    out = JobOutcome(
        JOB,
        Conclusion.FAILURE,
        "1 conflict",
        "x" * (MAX_COMMENT * 2),
        statuses=(StatusLine("patchbot/ukl", "failure", "a|b " * 100),),
    )
    body = comment_body(out, "/srv/out/7")
    assert body.startswith(MARKER) and len(body) <= MAX_COMMENT
    assert "| `patchbot/ukl` | failure |" in body and "a\\|b" in body
    assert "tag `v6.1.192`" in body and "head `0123456789ab`" in body
    assert "/srv/out/7" in body


def test_status_description_is_at_most_140() -> None:
    d = status_description(StatusLine("c", "success", "word " * 100))
    assert len(d) == 140 and d.endswith("…")


def test_error_outcome_says_what_to_do() -> None:
    out = error_outcome(JOB, "disk full")
    assert out.conclusion == Conclusion.ERROR and "/patchbot retry" in out.summary_md
