"""The initramfs a real program boots with: its files, the document it serves, and (classic) /init.

Classic runs the program as ``/init`` of this archive; UKL links it into
vmlinux and gets the same archive without ``/init``, for data only. The
document the check requests is generated, not shipped: `proof_bytes` gives the
same bytes to the archive and to the check that compares the answer.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from ukl_patchbot.check.apps.recipes import AppRecipe
from ukl_patchbot.core import runner
from ukl_patchbot.core.errors import UserError


def proof_bytes(recipe: AppRecipe) -> bytes:
    """The document the program serves: ``proof_size`` bytes, a SHA-256 chain seeded by its name.

    Not compressible and different at every offset, so a truncated, shifted
    or partly repeated answer cannot match.
    """
    out = bytearray()
    block = hashlib.sha256(f"patchbot {recipe.name} proof".encode()).digest()
    while len(out) < recipe.proof_size:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[: recipe.proof_size])


def layout(recipe: AppRecipe, init_binary: Path | None) -> dict[str, Path | bytes]:
    """Archive path -> source file or content: the recipe's files, the proof, /init if given."""
    entries: dict[str, Path | bytes] = {}
    for name, dest in recipe.files:
        src = recipe.data_dir / name
        if not src.is_file():
            raise UserError(f"{recipe.name}: recipe file {src} is missing")
        entries[dest] = src
    entries[recipe.proof_path] = proof_bytes(recipe)
    if init_binary is not None:
        if not init_binary.is_file():
            raise UserError(f"{recipe.name}: program {init_binary} does not exist")
        entries["init"] = init_binary
    return entries


def _dirs_of(paths: list[str]) -> list[str]:
    dirs: set[str] = set()
    for p in paths:
        parts = p.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(dirs)


def make_initramfs(recipe: AppRecipe, out: Path, *, init_binary: Path | None = None,
                   log_path: Path | None = None) -> Path:
    """A newc cpio archive of `layout` owned by root (written, then renamed)."""
    entries = layout(recipe, init_binary)
    stage = out.with_name(f".{out.name}.d-{os.getpid()}")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for d in _dirs_of(list(entries)):
            (stage / d).mkdir(parents=True, exist_ok=True)
        for dest, src in entries.items():
            target = stage / dest
            if isinstance(src, bytes):
                target.write_bytes(src)
                target.chmod(0o644)
            else:
                shutil.copyfile(src, target)
                target.chmod(0o755 if dest == "init" else 0o644)
        names = [*_dirs_of(list(entries)), *sorted(entries)]
        with open(tmp, "wb") as f:
            runner.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=stage,
                       input="".join(f"{n}\n" for n in names).encode(), stdout_file=f,
                       log_path=log_path, timeout=60, check=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        tmp.unlink(missing_ok=True)
    return out
