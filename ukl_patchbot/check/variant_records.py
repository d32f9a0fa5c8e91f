"""The kernel variants as data: one record per variant, read by every stage.

A record says everything the stages need to know about a variant, so no code
elsewhere asks "is this the UKL one?": the kconfig fragments it is built with
(under ``kconfigs/``), how its userland is made, what the booted kernel runs
the probe from (an initramfs, or an archive linked into vmlinux), what its
initramfs holds (/init and the probe's data files, or only the data), the
privilege level the probe must report, and its role in a comparison (the
baseline that tells upstream breakage apart, or the delta under test).
Adding a variant is adding a record here (and its fragment).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ukl_patchbot.core.errors import UserError


class Role(StrEnum):
    BASELINE = "baseline"  # stock upstream behaviour: if it fails, the delta is not to blame
    DELTA = "delta"        # the change under test


class Userland(StrEnum):
    STOCK_STATIC = "stock-static"  # the probe linked statically against the system's glibc
    LINKED_APP = "linked-app"      # the probe linked with the patched glibc into one object


class Payload(StrEnum):
    INITRD = "initrd"                  # the probe is /init of an initramfs given to QEMU
    LINKED_ARCHIVE = "linked-archive"  # the probe is inside vmlinux


class Initramfs(StrEnum):
    """What the initramfs QEMU boots with holds; both carry the probe's data files."""

    INIT_AND_DATA = "init-and-data"  # /init (the probe) and /probe/...
    DATA_ONLY = "data-only"          # only /probe/...: no /init, the probe is in vmlinux


@dataclass(frozen=True)
class Variant:
    name: str
    label: str                     # how report sentences name it
    role: Role
    fragments: tuple[str, ...]     # file names under kconfigs/, applied in order over tinyconfig
    userland: Userland
    payload: Payload
    expected_cpl: int              # the privilege level the probe must report from the boot
    initramfs: Initramfs           # what the initramfs it boots with holds
    archive_option: str | None = None  # kconfig option naming the linked archive, if any

    @property
    def needs_glibc_series(self) -> bool:
        """The patched glibc (the glibc series) is built for this variant's userland."""
        return self.userland is Userland.LINKED_APP


RECORDS: tuple[Variant, ...] = (
    Variant("classic", "classic", Role.BASELINE, ("base.config", "classic.config"),
            Userland.STOCK_STATIC, Payload.INITRD, expected_cpl=3,
            initramfs=Initramfs.INIT_AND_DATA),
    Variant("ukl", "UKL", Role.DELTA, ("base.config", "ukl.config"),
            Userland.LINKED_APP, Payload.LINKED_ARCHIVE, expected_cpl=0,
            initramfs=Initramfs.DATA_ONLY,
            archive_option="CONFIG_UKL_ARCHIVE"),
)
NAMES: tuple[str, ...] = tuple(v.name for v in RECORDS)
_BY_NAME = {v.name: v for v in RECORDS}


def get(name: str) -> Variant:
    """The record of variant ``name``; an unknown name is the caller's input error."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UserError(f"unknown variant {name!r}", hint=f"use one of {', '.join(NAMES)}") from None


def with_role(role: Role) -> Variant:
    """The (one) variant that plays ``role``."""
    return next(v for v in RECORDS if v.role is role)
