"""Synthetic `CheckReport`s for the history and dashboard tests (no console logs needed).

``report(tag, ...)`` builds a check of both variants with chosen figures and
failures; ``hostile`` puts a script tag everywhere report text can carry one.
"""

from __future__ import annotations

from ukl_patchbot.check import report as cr
from ukl_patchbot.check.boot import BootAttempt, BootResult
from ukl_patchbot.check.console import BootStatus, Finding, FindingKind, ProbeMarkers
from ukl_patchbot.check.kbuild import BuildResult, BuildStatus, ConfigResult, ConfigStatus
from ukl_patchbot.check.report import CheckReport, PatchRow, RebaseSummary, VariantResult

XSS = "<script>alert('xss')</script><img src=x onerror=alert(1)>"


def finding(kind: FindingKind = FindingKind.OOPS, summary: str = "BUG: kernel NULL pointer",
            fingerprint: str = "oops-1a2b3c4d") -> Finding:
    return Finding(kind, summary, fingerprint, 12, (f"[ 1.0] {summary}", "Call Trace:"))


def variant(name: str, *, ok: bool = True, ns: float | None = None, ttm: float = 1.0,
            size: int = 1_000_000, build_s: float = 100.0, flaky: bool = False,
            fail_step: str = "boot", findings: tuple[Finding, ...] = (),
            out: str = "/tmp/run") -> VariantResult:
    """One variant; a failing one fails at ``fail_step`` (config, build or boot)."""
    config = ConfigResult(ConfigStatus.OK, (f"kconfigs/{name}.config",), (), 5.0,
                          f"{out}/config-{name}.log")
    if not ok and fail_step == "config":
        config = ConfigResult(ConfigStatus.FAILED, (), (), 5.0, f"{out}/config-{name}.log",
                              ("merge_config failed",))
    build_ok = ok or fail_step == "boot"
    build = BuildResult(BuildStatus.OK if build_ok else BuildStatus.FAILED, build_s, 2,
                        () if build_ok else ("error: x undeclared",),
                        f"{out}/bzImage-{name}" if build_ok else None,
                        size if build_ok else None, f"{out}/build-{name}.log",
                        f"make O=build/{name} bzImage")
    if ok or fail_step == "boot":
        status = BootStatus.PASS if ok else BootStatus.FAIL
        markers = ProbeMarkers(variant=name, cpl=0 if name == "ukl" else 3, pid=1,
                               ns_per_call=ns if ok else None)
        attempts = [BootAttempt(status, 2.0, ttm if ok else None, "tcg", 0,
                                f"{out}/boot-{name}-1.log", markers, findings)]
        if flaky:
            attempts.insert(0, BootAttempt(BootStatus.FAIL, 2.0, None, "tcg", 0,
                                           f"{out}/boot-{name}-0.log", markers, findings))
        boot = BootResult(status, tuple(attempts), flaky, f"qemu-system-x86_64 -kernel {name}")
    else:
        boot = BootResult(BootStatus.SKIPPED)
    return VariantResult(name, config, build, boot)


def report(tag: str = "v6.1.192", *, classic: VariantResult | None = None,
           ukl: VariantResult | None = None, rebase_ok: bool = True, patch_name: str = "0001.patch",
           out: str = "/tmp/run", accel: str = "tcg") -> CheckReport:
    """A check of ``tag``; both variants pass unless given."""
    classic = classic or variant("classic", ns=100.0, out=out)
    ukl = ukl or variant("ukl", ns=40.0, ttm=0.9, size=1_500_000, out=out)
    rb = RebaseSummary("linux", "v6.1.170", tag, rebase_ok, (PatchRow(patch_name, "clean"),),
                       f"1: aaa = 1: bbb {patch_name}\n", "refs/patchbot/applied/x" if rebase_ok
                       else None, "")
    variants = (classic, ukl) if rebase_ok else ()
    verdict, attribution, text = cr.attribute(variants, rb, tag)
    return CheckReport("linux", tag, verdict, attribution, text, variants, rb, "glibc-2.36",
                       f"tree-{tag}" if rebase_ok else None, cr.syscall_ratio(variants),
                       f"patchbot check {tag}", out, 300.0, False, accel)


HOSTILE_TAG = f"v6.1.193-{XSS}"


def hostile(tag: str = HOSTILE_TAG) -> CheckReport:
    """A failing check whose outside text (tag, patch name, finding) carries markup."""
    bad = finding(FindingKind.WARNING, f"WARNING: {XSS}", "warning-deadbeef")
    return report(tag, patch_name=f"0001-{XSS}.patch",
                  ukl=variant("ukl", ok=False, findings=(bad,)))
