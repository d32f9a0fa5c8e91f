"""Check report rendering against golden files, attribution and the JSON round trip.

Regenerate the golden files after an intended change with
``PATCHBOT_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_check_report.py``
and review the diff.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers.check_cases import (
    APP_OK,
    CASES,
    CONFIG_OK,
    app,
    attempt_from_log,
    boot_of,
    build_ok,
    classic_pass,
    make,
    ukl_pass,
)
from tests.helpers.golden import check_golden
from ukl_patchbot.check import report as cr
from ukl_patchbot.check.report import Attribution, Verdict
from ukl_patchbot.check.results import (
    AppStatus,
    BootResult,
    BootStatus,
    BuildResult,
    BuildStatus,
    ConfigResult,
    ConfigStatus,
    VariantResult,
)


@pytest.mark.parametrize("name", sorted(CASES))
def test_markdown_and_json_match_golden(name: str) -> None:
    report = CASES[name]()
    md, js = cr.render_markdown(report), cr.render_json(report)
    check_golden(f"check-{name}.md", md)
    check_golden(f"check-{name}.json", js)


@pytest.mark.parametrize("name", sorted(CASES))
def test_json_round_trips(name: str) -> None:
    report = CASES[name]()
    again = cr.report_from_json(cr.render_json(report))
    assert again == report
    assert cr.render_markdown(again) == cr.render_markdown(report)


def test_attribution_cases() -> None:
    assert CASES["all-pass"]().attribution == Attribution.NONE
    ukl = CASES["ukl-oops"]()
    assert ukl.verdict == Verdict.FAIL and ukl.attribution == Attribution.UKL_DELTA
    both = CASES["both-fail-build"]()
    assert both.attribution == Attribution.UPSTREAM_OR_INFRA
    assert "not in the UKL delta" in both.attribution_text
    assert CASES["rebase-conflict"]().attribution == Attribution.REBASE
    only_classic = make((VariantResult("classic", CONFIG_OK, build_ok("classic", 1),
                                       BootResult(BootStatus.FAIL)), ukl_pass()))
    assert only_classic.attribution == Attribution.CLASSIC_ONLY


def test_the_real_program_fails_a_passing_check_and_is_blamed_by_variant() -> None:
    assert CASES["app-pass"]().verdict == Verdict.PASS
    ukl = CASES["app-ukl-no-answer"]()
    assert ukl.verdict == Verdict.FAIL and ukl.attribution == Attribution.UKL_DELTA
    assert "nginx" in ukl.attribution_text and "UKL" in ukl.attribution_text
    both = make((classic_pass(), ukl_pass()), apps=(
        app("classic", AppStatus.BUILD_FAILED, "kernel: error"),
        app("ukl", AppStatus.NO_ANSWER)))
    assert both.verdict == Verdict.FAIL and both.attribution == Attribution.UPSTREAM_OR_INFRA
    # A program skipped because its variant failed adds nothing to the variant's own verdict.
    skipped = make((classic_pass(), VariantResult(
        "ukl", CONFIG_OK, BuildResult(BuildStatus.FAILED, 1.0, 0, ("error: x",)),
        BootResult(BootStatus.SKIPPED))), apps=(app("classic", AppStatus.PASS, APP_OK),
                                                app("ukl", AppStatus.SKIPPED)))
    assert skipped.attribution == Attribution.UKL_DELTA and "probe" not in skipped.attribution_text


def test_markdown_shows_the_real_program() -> None:
    text = cr.render_markdown(CASES["app-ukl-no-answer"]())
    assert "| nginx | ukl | `1.22.1-9+deb12u9` |" in text and "**no-answer**" in text
    assert "[emerg] socket()" in text  # the console of the failed boot is quoted
    assert "nginx in ukl: boot by hand" in text
    assert "nginx in ukl no-answer" in cr.title(CASES["app-ukl-no-answer"]())
    assert "nginx" not in cr.render_markdown(CASES["all-pass"]())


def test_userland_failure_blames_the_build_not_the_config() -> None:
    ukl = VariantResult("ukl", ConfigResult(ConfigStatus.SKIPPED),
                        BuildResult(BuildStatus.FAILED, 0.0, 0, ("glibc (UKL) failed:", "x")),
                        BootResult(BootStatus.SKIPPED))
    r = make((classic_pass(), ukl))
    assert ukl.failed_step == "build"
    assert r.attribution == Attribution.UKL_DELTA and "fails (build)" in r.attribution_text


def test_ratio_is_ukl_over_classic() -> None:
    r = CASES["all-pass"]()
    classic = r.variant("classic")
    assert classic is not None and classic.boot.ns_per_call is not None
    assert r.syscall_ratio == pytest.approx(21.0 / classic.boot.ns_per_call)
    assert "UKL/classic syscall cost ratio" in cr.render_markdown(r)
    assert CASES["ukl-oops"]().syscall_ratio is None


def test_boot_ratio_is_ukl_over_classic_time_to_marker() -> None:
    r = CASES["all-pass"]()
    assert r.boot_ratio == pytest.approx(0.95 / 0.9)
    assert "UKL/classic boot to marker ratio: **1.06**" in cr.render_markdown(r)
    assert json.loads(cr.render_json(r))["boot_ratio"] == pytest.approx(0.95 / 0.9)
    # Only when both boots passed: a failed boot's time to marker compares nothing.
    oops = CASES["ukl-oops"]()
    assert oops.boot_ratio is None and json.loads(cr.render_json(oops))["boot_ratio"] is None
    assert "boot to marker ratio" not in cr.render_markdown(oops)
    # A report written before the ratio existed reads back and gets it.
    old = json.loads(cr.render_json(r))
    del old["boot_ratio"]
    assert cr.report_from_json(json.dumps(old)).boot_ratio == pytest.approx(0.95 / 0.9)


def test_markdown_shows_what_a_maintainer_acts_on() -> None:
    oops = cr.render_markdown(CASES["ukl-oops"]())
    assert "`bug-" in oops and "in ukl_app_main" in oops and "ret_from_fork" in oops
    assert "(flaky)" not in oops  # both attempts failed the same way
    timeout = cr.render_markdown(CASES["ukl-timeout-flaky"]())
    assert "no power-off within 30s" in timeout and "ukl-probe: start variant=classic" in timeout
    dropped = cr.render_markdown(CASES["ukl-config-dropped"]())
    assert "`CONFIG_UNIKERNEL_LINUX` asked `y`" in dropped
    build = cr.render_markdown(CASES["both-fail-build"]())
    assert "error: 'x' undeclared" in build and "upstream" in build


def test_abi_checks_are_a_table_and_failures_findings() -> None:
    md = cr.render_markdown(CASES["ukl-abi-fail"]())
    assert "| ABI check | classic | ukl |" in md
    assert "| fpu | – | **FAIL** after read AF_ALG #17: xmm9 changed |" in md
    assert "| files | – | ok |" in md
    assert "`abi-failed-" in md and "ABI check fds failed: read after closing" in md
    assert "ABI check" not in cr.render_markdown(CASES["ukl-oops"]())  # no abi lines, no table
    again = cr.report_from_json(cr.render_json(CASES["ukl-abi-fail"]()))
    ukl = again.variant("ukl")
    assert ukl is not None and ukl.boot.decisive is not None
    assert [c.name for c in ukl.boot.decisive.markers.abi_failed] == ["fds", "fpu"]


def test_flaky_boot_is_marked() -> None:
    bad = attempt_from_log("timeout-hang.log", "classic", timed_out=True)
    good = attempt_from_log("classic-pass.log", "classic")
    v = VariantResult("classic", CONFIG_OK, build_ok("classic", 1), boot_of(bad, good))
    assert v.ok and v.boot.flaky
    md = cr.render_markdown(make((v, ukl_pass())))
    assert "pass (flaky)" in md and "flaky: attempts disagree" in md


def test_json_has_a_top_level_pass_flag() -> None:
    assert json.loads(cr.render_json(CASES["all-pass"]()))["passed"] is True
    assert json.loads(cr.render_json(CASES["ukl-oops"]()))["passed"] is False
