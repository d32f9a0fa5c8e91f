"""The classic variant on the real Linux tree: configure, build, boot under QEMU, cache.

Slow: one kernel build of the newest 6.1 tag as upstream ships it, in the
shared check workspace (its lock held) with the shared ccache. Alone that
is a cold build (about 2 minutes on this machine, more when the 2 cores are
shared); after tests/test_ukl_delta_real.py, which builds the same tree
with the same configuration there, make finds little or nothing to do. The
boot runs the real probe with its data files, and every ABI check must pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import realtrees
from tests.helpers.kernel_helpers import mini_initramfs
from ukl_patchbot.check import boot, kbuild, uklapp, variants, workspace
from ukl_patchbot.check.results import AbiStatus, BootStatus, BuildStatus, ConfigStatus, FindingKind
from ukl_patchbot.core.cache import ContentCache
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.upstream import gitops

REPO = Path(__file__).resolve().parent.parent
TAG = realtrees.linux_new_tag()

pytestmark = pytest.mark.slow


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def finish(self, name: str, status: str, seconds: float) -> None:
        self.events.append((name, status))


def _tree(mirror: Path) -> str:
    return gitops.out(mirror, "rev-parse", f"refs/tags/{TAG}^{{tree}}")


@pytest.fixture(scope="module")
def built(real_config, linux_mirror: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[variants.VariantResult, Path, ContentCache, variants.Workspace, Recorder]:
    work = tmp_path_factory.mktemp("classic")
    probe = uklapp.compile_probe("classic", work / "probe")
    initrd = uklapp.make_initramfs(probe, work / "probe" / "initramfs.cpio")
    spec = variants.spec_for("classic", REPO / "kconfigs", initrd=initrd)
    images = ContentCache(work / "kernels")  # private: this build is not taken from a cache
    rec = Recorder()
    tree = _tree(linux_mirror)
    # The check workspace is shared with every other check: hold its lock.
    with workspace.locked(real_config) as ws:
        workspace.export_once(real_config, "linux", f"refs/tags/{TAG}", tree, ws.src)
        (result,) = variants.check_variants(ws.src, tree, (spec,), ws, images, work / "out", rec,
                                            boot_timeout=60)
    return result, work, images, ws, rec


def test_classic_builds_and_boots_with_the_probe_marker(built) -> None:  # type: ignore[no-untyped-def]
    result, work, _images, _ws, rec = built
    assert result.config.status == ConfigStatus.OK, result.config.dropped
    assert result.build.status == BuildStatus.OK, result.build.first_errors
    assert result.build.image_size and 300_000 < result.build.image_size < 5_000_000
    assert result.boot.status == BootStatus.PASS, result.boot.decisive
    assert not result.boot.flaky
    a = result.boot.decisive
    assert a is not None and a.markers.cpl == 3 and a.markers.variant == "classic"
    assert a.markers.ns_per_call is not None and a.markers.ns_per_call > 0
    assert a.time_to_marker is not None and a.time_to_marker < 10
    assert ("build classic", "ok") in rec.events and ("boot classic", "pass") in rec.events
    assert (work / "out" / "build-classic.log").is_file()
    assert (work / "out" / "boot-classic-1.log").read_text().count("ukl-probe: done status=0") == 1


# What the ABI checks need from base.config, resolved by olddefconfig.
ABI_OPTIONS = ("CONFIG_NET", "CONFIG_INET", "CONFIG_EPOLL", "CONFIG_POSIX_TIMERS",
               "CONFIG_CRYPTO_USER_API_SKCIPHER", "CONFIG_CRYPTO_SERPENT_SSE2_X86_64")


def test_every_abi_check_passes_in_the_booted_kernel(built) -> None:  # type: ignore[no-untyped-def]
    result, work, _images, _ws, _rec = built
    final = kbuild.parse_config((work / "out" / "config-classic").read_text())
    assert {o: final.get(o) for o in ABI_OPTIONS} == dict.fromkeys(ABI_OPTIONS, "y")
    assert final.get("CONFIG_IPV6", "n") == "n" and final.get("CONFIG_PCI", "n") == "n"
    a = result.boot.decisive
    assert a is not None
    checks = {c.name: c for c in a.markers.abi}
    assert list(checks) == ["files", "fds", "pipe", "memory", "time", "tcp", "fpu", "signals"]
    assert {n: c.reason for n, c in checks.items() if c.status is not AbiStatus.OK} == {}


def test_repeat_takes_the_image_from_the_cache(built, linux_mirror: Path) -> None:  # type: ignore[no-untyped-def]
    result, work, images, ws, _rec = built
    spec = variants.spec_for("classic", REPO / "kconfigs",
                             initrd=work / "probe" / "initramfs.cpio")
    rec = Recorder()
    _cfg, b = variants.build_variant(ws.src, _tree(linux_mirror), spec, ws, images,
                                        work / "out2", rec)
    assert b.status == BuildStatus.CACHED and b.image is not None
    assert Path(b.image).read_bytes() == Path(result.build.image).read_bytes()
    assert rec.events == [("build classic", "cached")]


def test_real_crash_and_hang_are_classified_not_hung(built) -> None:  # type: ignore[no-untyped-def]
    result, work, _images, _ws, _rec = built
    image = Path(result.build.image)
    exited = boot.boot(image, mini_initramfs(work / "probe", "MINI_EXIT"), "classic",
                       log_dir=work / "exit", timeout=30, retries=0)
    assert exited.status == BootStatus.FAIL
    decisive = exited.decisive
    assert decisive is not None
    assert any(f.kind == FindingKind.PANIC and "kill init" in f.summary for f in decisive.findings)
    assert decisive.duration < 25  # panic=-1 + -no-reboot: QEMU exits by itself

    hang = boot.boot(image, mini_initramfs(work / "probe", "MINI_HANG"), "classic",
                     log_dir=work / "hang", timeout=6, retries=1)
    assert hang.status == BootStatus.TIMEOUT and len(hang.attempts) == 2 and not hang.flaky
    assert hang.attempts[0].findings[0].kind == FindingKind.TIMEOUT
    assert hang.attempts[0].findings[0].fingerprint == hang.attempts[1].findings[0].fingerprint
