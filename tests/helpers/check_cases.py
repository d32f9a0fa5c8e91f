"""The check reports the golden files pin: `CheckReport`s built from the recorded console
logs in tests/data/console, one per named case in `CASES` (tests/data/golden/check-<name>.*).

The builders (`make`, `classic_pass`, `build_ok`, ...) are for tests that need one more case.
"""

from __future__ import annotations

from pathlib import Path

from ukl_patchbot.check import console
from ukl_patchbot.check import report as cr
from ukl_patchbot.check.report import CheckReport, PatchRow, RebaseSummary
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

CONSOLE = Path(__file__).parent.parent / "data" / "console"


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
