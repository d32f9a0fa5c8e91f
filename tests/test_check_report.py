"""Check report rendering against golden files, attribution and the JSON round trip.

Regenerate the golden files after an intended change with
``PATCHBOT_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_check_report.py``
and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.golden import check_golden
from ukl_patchbot.check import console
from ukl_patchbot.check import report as cr
from ukl_patchbot.check.report import (
    Attribution,
    CheckReport,
    PatchRow,
    RebaseSummary,
    Verdict,
)
from ukl_patchbot.check.results import (
    AppResult,
    AppStatus,
    BootAttempt,
    BootResult,
    BootStatus,
    BuildResult,
    BuildStatus,
    ConfigResult,
    ConfigStatus,
    DroppedOption,
    VariantResult,
)

CONSOLE = Path(__file__).parent / "data" / "console"


def attempt_from_log(name: str, variant: str, *, timed_out: bool = False,
                     ttm: float | None = 0.9) -> BootAttempt:
    lines = (CONSOLE / name).read_text().splitlines()
    a = console.classify(lines, expected_variant=variant, timed_out=timed_out, timeout=30)
    return BootAttempt(a.status, 2.5, ttm if a.markers.variant else None, "tcg", 0,
                       f"out/boot-{variant}-1.log", a.markers, a.findings, a.tail)


def boot_of(*attempts: BootAttempt) -> BootResult:
    statuses = {a.status for a in attempts}
    status = BootStatus.PASS if BootStatus.PASS in statuses else attempts[-1].status
    return BootResult(status, attempts, len(statuses) > 1,
                      "qemu-system-x86_64 -accel tcg -kernel out/bzImage-x",
                      ("flaky: attempts disagree",) if len(statuses) > 1 else ())


CONFIG_OK = ConfigResult(ConfigStatus.OK, ("kconfigs/base.config", "kconfigs/classic.config"),
                         (), 9.5, "out/config-classic.log")


def build_ok(variant: str, size: int, dur: float = 115.0, status: BuildStatus = BuildStatus.OK
             ) -> BuildResult:
    return BuildResult(status, dur, 3, (), f"out/bzImage-{variant}", size,
                       f"out/build-{variant}.log",
                       f"make -C src O=build/{variant} CC='ccache gcc' -j2 bzImage")


def classic_pass() -> VariantResult:
    return VariantResult("classic", CONFIG_OK, build_ok("classic", 975872),
                         boot_of(attempt_from_log("classic-pass.log", "classic")))


def ukl_pass() -> VariantResult:
    # The classic log renamed: the renderer only sees parsed markers.
    lines = (CONSOLE / "classic-pass.log").read_text()
    lines = lines.replace("variant=classic cpl=3", "variant=ukl cpl=0")
    lines = lines.replace(lines[lines.index("ns_per_call="):].split("\n")[0], "ns_per_call=21.0")
    a = console.classify(lines.splitlines(), expected_variant="ukl")
    att = BootAttempt(a.status, 2.1, 0.95, "tcg", 0, "out/boot-ukl-1.log", a.markers,
                      a.findings, a.tail)
    return VariantResult("ukl", CONFIG_OK, build_ok("ukl", 1503232, 31.0), boot_of(att))


def rebase_ok() -> RebaseSummary:
    return RebaseSummary(
        "linux", "v6.1.170", "v6.1.192", True,
        (PatchRow("0001-x86-add-CONFIG_UNIKERNEL_LINUX.patch", "clean"),
         PatchRow("0002-x86-ukl-link-the-application.patch", "offset", "arch/x86/kernel/vmlinux.lds.S +12"),
         PatchRow("0003-ukl-entry.patch", "context-changed", "init/main.c: 3-way merge")),
        "1:  aaaaaaa = 1:  bbbbbbb x86: add CONFIG_UNIKERNEL_LINUX\n", "refs/patchbot/applied/v6.1.192")


REBASE_OK = rebase_ok()


def make(variants: tuple[VariantResult, ...], rebase: RebaseSummary | None = REBASE_OK,
         tag: str = "v6.1.192", apps: tuple[AppResult, ...] = ()) -> CheckReport:
    verdict, attribution, text = cr.attribute_apps(cr.attribute(variants, rebase, tag), apps)
    return CheckReport(
        "linux", tag, verdict, attribution, text, variants, rebase, "glibc-2.36",
        "0123456789abcdef0123456789abcdef01234567", cr.syscall_ratio(variants),
        f"patchbot check {tag} --glibc glibc-2.36 --out out", "out", 187.0, False, "tcg",
        apps=apps)


def app(variant: str, status: AppStatus, detail: str = "", **kw: object) -> AppResult:
    """nginx in ``variant``; a pass answered after 4.2 s, with a freshly built kernel."""
    fields: dict[str, object] = {
        "version": "1.22.1-9+deb12u9", "program_seconds": 95.0,
        "kernel": build_ok(variant, 1300000, 140.0),
        "answer_after": 4.2 if status is AppStatus.PASS else None, "attempts": 1,
        "log_path": f"out/app-nginx/boot-nginx-{variant}-1.log",
        "reproduce": f"qemu-system-x86_64 -kernel {variant} -netdev user,id=net0"}
    fields.update(kw)
    return AppResult("nginx", variant, status, detail=detail, **fields)  # type: ignore[arg-type]


APP_OK = "answered 200 with the 200000-byte document, byte for byte"


CASES = {
    "all-pass": lambda: make((classic_pass(), ukl_pass())),
    "ukl-abi-fail": lambda: make((classic_pass(), VariantResult(
        "ukl", CONFIG_OK, build_ok("ukl", 1503232), boot_of(attempt_from_log("ukl-abi-fail.log",
                                                                             "ukl"))))),
    "ukl-oops": lambda: make((classic_pass(), VariantResult(
        "ukl", CONFIG_OK, build_ok("ukl", 1503232),
        boot_of(attempt_from_log("ukl-oops.log", "ukl"), attempt_from_log("ukl-oops-rerun.log", "ukl")))),
    ),
    "both-fail-build": lambda: make(tuple(VariantResult(
        v, CONFIG_OK,
        BuildResult(BuildStatus.FAILED, 40.0, 1, (
            "drivers/tty/serial/8250/8250_core.c:42:9: error: 'x' undeclared",
            "make[4]: *** [scripts/Makefile.build:250: 8250_core.o] Error 1"), None, None,
            f"out/build-{v}.log", f"make -C src O=build/{v} -j2 bzImage"),
        BootResult(BootStatus.SKIPPED)) for v in ("classic", "ukl"))),
    "ukl-config-dropped": lambda: make((classic_pass(), VariantResult(
        "ukl", ConfigResult(ConfigStatus.DROPPED, ("kconfigs/base.config", "kconfigs/ukl.config"),
                            (DroppedOption("CONFIG_UNIKERNEL_LINUX", "y", "n", "kconfigs/ukl.config"),),
                            9.0, "out/config-ukl.log"),
        BuildResult(BuildStatus.SKIPPED), BootResult(BootStatus.SKIPPED)))),
    "ukl-timeout-flaky": lambda: make((classic_pass(), VariantResult(
        "ukl", CONFIG_OK, build_ok("ukl", 1503232, 0.0, BuildStatus.CACHED),
        boot_of(attempt_from_log("timeout-hang.log", "ukl", timed_out=True),
                attempt_from_log("timeout-hang.log", "ukl", timed_out=True))))),
    "app-pass": lambda: make((classic_pass(), ukl_pass()), apps=(
        app("classic", AppStatus.PASS, APP_OK),
        app("ukl", AppStatus.PASS, APP_OK, program_seconds=None))),
    "app-ukl-no-answer": lambda: make((classic_pass(), ukl_pass()), apps=(
        app("classic", AppStatus.PASS, APP_OK),
        app("ukl", AppStatus.NO_ANSWER, "no answer within 90 s (last try: RemoteDisconnected)",
            attempts=2, tail=("[    2.1] ukl: starting the application",
                              "nginx: [emerg] socket() 0.0.0.0:80 failed (38: ENOSYS)")))),
    "rebase-conflict": lambda: make((), RebaseSummary(
        "linux", "v6.1.170", "v6.1.192", False,
        (PatchRow("0001-x86-add-CONFIG_UNIKERNEL_LINUX.patch", "clean"),
         PatchRow("0003-ukl-entry.patch", "conflict", "init/main.c hunk @@ -1510,6 +1510,9 @@")),
        "", None, "1 of 2 patches conflict; see the rebase report")),
}


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
