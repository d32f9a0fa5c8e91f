"""The UKL delta on the real trees, beyond `patchbot check` (tests/test_check_e2e.py).

- The application object linked with the UKL glibc holds no syscall
  instruction; the same probe linked with the stock glibc does, and the
  tooling refuses that object.
- A missing CONFIG_UKL_ARCHIVE fails the kernel build at once, naming the path.
- With CONFIG_UNIKERNEL_LINUX off, the patched tree gives the same kernel
  config as the unpatched one and boots the classic probe the same way.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import realtrees, ukl_builds
from ukl_patchbot.check import uklapp, variants, workspace
from ukl_patchbot.check.glibc import GlibcBuild
from ukl_patchbot.check.results import BootStatus
from ukl_patchbot.core.cache import ContentCache
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.upstream import gitops

TAG = realtrees.linux_new_tag()
STOCK_LIB = Path("/usr/lib/x86_64-linux-gnu")


@pytest.fixture(scope="module")
def ukl_glibc(real_config, glibc_mirror, tmp_path_factory) -> GlibcBuild:  # type: ignore[no-untyped-def]
    """The UKL glibc, content-cached (tests/helpers/ukl_builds.py)."""
    return ukl_builds.ukl_glibc(real_config, tmp_path_factory)


def _stock_glibc(root: Path) -> GlibcBuild:
    """The system's stock static glibc laid out like a GlibcBuild."""
    (root / "build" / "csu").mkdir(parents=True)
    (root / "build" / "libc.a").symlink_to(STOCK_LIB / "libc.a")
    for crt in ("crt1.o", "crti.o", "crtn.o"):
        (root / "build" / "csu" / crt).symlink_to(STOCK_LIB / crt)
    return GlibcBuild(root=root, key="stock")


@pytest.mark.slow
def test_ukl_application_object_has_no_syscall_instruction(ukl_glibc: GlibcBuild, tmp_path: Path) -> None:
    obj = uklapp.compile_probe("ukl", tmp_path, glibc=ukl_glibc)
    app = uklapp.link_application([obj], ukl_glibc, tmp_path / "ukl-app.o")
    assert uklapp.find_syscall_instructions(app) == []
    syms = subprocess.run(["nm", app], capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1] for line in syms.splitlines() if line.strip()}
    assert "ukl_app__start" in names and "ukl_app_main" in names and "ukl_app_memcpy" in names
    assert "memcpy" not in names and "main" not in names  # nothing can collide with the kernel
    undefined = {line.split()[-1] for line in syms.splitlines() if line.split()[0] == "U"}
    assert "ukl_syscall_entry" in undefined
    assert all(n.startswith("ukl_") or n == "_GLOBAL_OFFSET_TABLE_" for n in undefined), undefined


def test_stock_glibc_object_is_refused(tmp_path: Path) -> None:
    """Control: with the stock libc.a the same link has syscall instructions and is refused."""
    stock = _stock_glibc(tmp_path / "stock")
    obj = uklapp.compile_probe("ukl", tmp_path / "obj", glibc=stock)
    with pytest.raises(UserError, match=r"syscall instruction\(s\) left"):
        uklapp.link_application([obj], stock, tmp_path / "ukl-app.o")
    assert not (tmp_path / "ukl-app.o").exists()
    assert not list(tmp_path.glob(".ukl-app.o.*"))  # no temporary left behind


@pytest.fixture(scope="module")
def linux_trees(real_config, linux_mirror, tmp_path_factory) -> dict[str, tuple[str, str, Path]]:  # type: ignore[no-untyped-def]
    """(ref, tree id, exported source) of TAG, patched and upstream, exported once."""
    root = tmp_path_factory.mktemp("linux")
    mirror = real_config.mirror_dir("linux")
    ref, tree = ukl_builds.applied(real_config, "linux", TAG)
    return {
        "patched": (ref, tree, gitops.export_tree(mirror, ref, root / "patched")),
        "upstream": (TAG, gitops.out(mirror, "rev-parse", f"{TAG}^{{tree}}"),
                     gitops.export_tree(mirror, TAG, root / "upstream")),
    }


def _configure(src: Path, build: Path, fragments: list[Path], timeout: float = 300) -> None:
    build.mkdir(parents=True)
    subprocess.run(["make", "-s", f"O={build}", "tinyconfig"], cwd=src, check=True,
                   capture_output=True, timeout=timeout)
    subprocess.run([src / "scripts/kconfig/merge_config.sh", "-m", "-O", build, build / ".config",
                    *fragments], cwd=src, check=True, capture_output=True, timeout=timeout)


@pytest.mark.slow
def test_missing_ukl_archive_fails_before_compiling(real_config, linux_trees, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    patched = linux_trees["patched"][2]
    kconfigs = real_config.root / "kconfigs"
    missing = tmp_path / "no-such-app.o"
    frag = tmp_path / "archive.config"
    frag.write_text(f'CONFIG_UKL_ARCHIVE="{missing}"\n')
    build = tmp_path / "build"
    _configure(patched, build, [kconfigs / "base.config", kconfigs / "ukl.config", frag])
    start = time.monotonic()
    res = subprocess.run(["make", "-s", f"O={build}", "olddefconfig", "prepare"], cwd=patched,
                         capture_output=True, text=True, timeout=600, check=False)
    took = time.monotonic() - start
    assert res.returncode != 0
    assert f'CONFIG_UKL_ARCHIVE="{missing}" does not exist' in res.stderr
    assert not (build / "init" / "main.o").exists(), "the check must come before compiling"
    assert took < 120, f"took {took:.0f}s"


@pytest.mark.slow
def test_ukl_off_builds_and_boots_like_upstream(real_config, linux_trees, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kconfigs = real_config.root / "kconfigs"
    fragments = [kconfigs / "base.config", kconfigs / "classic.config"]
    # Same configuration: the patched tree's classic .config is upstream's,
    # but for the UKL options it adds (both off).
    configs = {}
    for name, (_ref, _tree, src) in linux_trees.items():
        build = tmp_path / f"cfg-{name}"
        _configure(src, build, fragments)
        subprocess.run(["make", "-s", f"O={build}", "olddefconfig"], cwd=src, check=True,
                       capture_output=True, timeout=300)
        configs[name] = [ln for ln in (build / ".config").read_text().splitlines()
                         if ln.startswith(("CONFIG_", "# CONFIG_"))]
    extra = set(configs["patched"]) - set(configs["upstream"])
    assert extra == {"# CONFIG_UNIKERNEL_LINUX is not set"}
    assert set(configs["upstream"]) <= set(configs["patched"])
    # Same behaviour: both classic kernels boot the stock-glibc probe in user mode.
    initrd = uklapp.make_initramfs(uklapp.compile_probe("classic", tmp_path / "probe"),
                                   tmp_path / "probe" / "initramfs.cpio")
    spec = variants.spec_for("classic", kconfigs, initrd=initrd)
    images = ContentCache(real_config.cache_dir / "kernels")
    for name, (ref, tree, _src) in linux_trees.items():
        # The check workspace is shared with every other check: hold its lock.
        with workspace.locked(real_config) as ws:
            workspace.export_once(real_config, "linux", ref, tree, ws.src)
            (res,) = variants.check_variants(ws.src, tree, (spec,), ws, images, tmp_path / name,
                                             Progress(), boot_timeout=60, retries=0)
        a = res.boot.decisive
        assert res.boot.status == BootStatus.PASS, (name, a.findings if a else res.build)
        assert a is not None and a.markers.cpl == 3 and a.markers.variant == "classic"
        assert a.markers.ns_per_call is not None
