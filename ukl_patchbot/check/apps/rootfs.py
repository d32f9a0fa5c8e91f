"""The initramfs a real program boots with: its files, the document it serves, and (classic) /init.

Classic runs the program as ``/init`` of this archive; UKL links it into
vmlinux and gets the same archive without ``/init``, for data only. The
document the check requests is generated, not shipped: `proof_bytes` gives the
same bytes to the archive and to the check that compares the answer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ukl_patchbot.check import uklapp
from ukl_patchbot.check.apps.recipes import AppRecipe
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


def make_initramfs(recipe: AppRecipe, out: Path, *, init_binary: Path | None = None,
                   log_path: Path | None = None) -> Path:
    """A newc cpio archive of `layout`, written as the probe's (`uklapp.make_initramfs`)."""
    entries = layout(recipe, init_binary)
    entries.pop("init", None)
    files = {dest: src if isinstance(src, bytes) else src.read_bytes()
             for dest, src in entries.items()}
    return uklapp.make_initramfs(init_binary, out, files=files, log_path=log_path)
