"""Test helpers for real kernel boots: the stand-in probe and its initramfs."""

from __future__ import annotations

import subprocess
from pathlib import Path

MINI_INIT = Path(__file__).resolve().parents[1] / "data" / "mini_init.c"


def build_mini_init(dest: Path, *defines: str) -> Path:
    """Compile tests/data/mini_init.c statically (``defines`` e.g. "MINI_HANG")."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-static", "-O2", *[f"-D{d}" for d in defines], "-o", str(dest),
                    str(MINI_INIT)], check=True, timeout=120)
    return dest


def initramfs_with_init(init: Path, dest: Path) -> Path:
    """An uncompressed newc cpio holding ``init`` as /init (the kernel unpacks it as is)."""
    stage = dest.parent / (dest.name + ".d")
    stage.mkdir(parents=True, exist_ok=True)
    (stage / "init").write_bytes(init.read_bytes())
    (stage / "init").chmod(0o755)
    with open(dest, "wb") as out:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=b"init\n", cwd=stage,
                       stdout=out, check=True, timeout=60)
    return dest


def mini_initramfs(work: Path, *defines: str) -> Path:
    """Build the stand-in probe with ``defines`` and wrap it as an initramfs."""
    name = "-".join(d.lower() for d in defines) or "plain"
    init = build_mini_init(work / f"init-{name}", *defines)
    return initramfs_with_init(init, work / f"initramfs-{name}.cpio")
