"""What a check's output directory keeps when the answer comes from the cache."""

from __future__ import annotations

import json
from pathlib import Path

from ukl_patchbot.check import runfiles, variants
from ukl_patchbot.check.results import BuildStatus
from ukl_patchbot.core.cache import ContentCache
from ukl_patchbot.core.progress import Progress

REPO = Path(__file__).resolve().parents[1]


def _run_dir(root: Path) -> Path:
    out = root / "run"
    (out / "app-nginx").mkdir(parents=True)
    for name in ("config-classic", "config-ukl", "config-ukl.log", "build-ukl.log",
                 "boot-classic-1.log", "probe-ukl.log", "report.json", "report.md",
                 "rebase-linux.md", "rebase-linux.json", "reproducer.sh", "initramfs-data.log"):
        (out / name).write_text(f"{name} of the run that built\n")
    (out / "app-nginx" / "boot-nginx-ukl-1.log").write_text("nginx boot\n")
    (out / "app-nginx" / "config-ukl").write_text("CONFIG_UNIKERNEL_LINUX=y\n")
    (out / "app-nginx" / "initramfs-nginx.cpio").write_bytes(b"\0" * 64)
    (out / "app-nginx" / "nginx-ukl-app.o").write_bytes(b"\x7fELF")
    return out


def test_configs_and_logs_are_kept_but_not_binaries_or_what_each_run_writes(tmp_path: Path) -> None:
    out = _run_dir(tmp_path)
    assert [str(p) for p in runfiles.kept_files(out)] == [
        "app-nginx/boot-nginx-ukl-1.log", "app-nginx/config-ukl", "boot-classic-1.log",
        "build-ukl.log", "config-classic", "config-ukl", "config-ukl.log",
        "initramfs-data.log", "probe-ukl.log"]
    (out / "huge.log").write_bytes(b"x" * (runfiles.KEEP_MAX_BYTES + 1))
    assert Path("huge.log") not in runfiles.kept_files(out)


def test_restore_fills_a_new_directory_and_never_overwrites(tmp_path: Path) -> None:
    out = _run_dir(tmp_path)
    stage = tmp_path / "entry"
    assert runfiles.keep(out, stage) == 9
    new = tmp_path / "again"
    new.mkdir()
    (new / "report.md").write_text("this run's report\n")
    (new / "config-ukl").write_text("written by this run\n")
    assert runfiles.restore(stage, new) == 8
    assert (new / "config-classic").read_text() == "config-classic of the run that built\n"
    assert (new / "app-nginx" / "boot-nginx-ukl-1.log").read_text() == "nginx boot\n"
    assert (new / "config-ukl").read_text() == "written by this run\n"
    assert (new / "report.md").read_text() == "this run's report\n"
    assert not (new / "rebase-linux.md").exists()
    assert runfiles.restore(tmp_path / "no-such-entry", new) == 0


def test_links_are_neither_kept_nor_followed(tmp_path: Path) -> None:
    """A link in the run directory (or a tampered entry) must not copy or write outside."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.log").write_text("private\n")
    out = _run_dir(tmp_path)
    (out / "stolen.log").symlink_to(secret / "key.log")
    (out / "dir").symlink_to(secret)
    assert not any(p.name == "key.log" or p.name == "stolen.log" for p in runfiles.kept_files(out))
    stage = tmp_path / "entry"
    runfiles.keep(out, stage)
    new = tmp_path / "again"
    new.mkdir()
    (new / "boot-classic-1.log").symlink_to(secret / "key.log")  # a planted link is not written through
    runfiles.restore(stage, new)
    assert (secret / "key.log").read_text() == "private\n"


def test_a_cached_kernel_still_leaves_its_configuration(tmp_path: Path) -> None:
    """`--out` holds config-<variant> whether the image was built or taken from the cache."""
    spec = variants.spec_for("classic", REPO / "kconfigs", initrd=tmp_path / "initrd.cpio")
    images = ContentCache(tmp_path / "kernels")
    with images.put(variants.kernel_key("tree-x", spec)) as stage:
        (stage / "bzImage").write_bytes(b"kernel")
        (stage / "config").write_text("CONFIG_X86_64=y\n")
        (stage / "meta.json").write_text(json.dumps({"warnings": 0}))
    ws = variants.Workspace(tmp_path / "ws", tmp_path / "src", None)
    out = tmp_path / "out"  # not made beforehand: build_variant makes it
    _cfg, b = variants.build_variant(tmp_path / "src", "tree-x", spec, ws, images, out, Progress())
    assert b.status == BuildStatus.CACHED
    assert (out / "config-classic").read_text() == "CONFIG_X86_64=y\n"
