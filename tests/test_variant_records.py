"""The variant records: the one place that knows what each kernel variant is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ukl_patchbot.check import variant_records
from ukl_patchbot.check.variant_records import Initramfs, Payload, Role, Userland
from ukl_patchbot.core.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def test_one_baseline_and_one_delta() -> None:
    roles = [v.role for v in variant_records.RECORDS]
    assert sorted(roles) == sorted([Role.BASELINE, Role.DELTA])
    assert variant_records.with_role(Role.BASELINE).name == "classic"
    assert variant_records.with_role(Role.DELTA).name == "ukl"


def test_every_fragment_is_shipped() -> None:
    for v in variant_records.RECORDS:
        for frag in v.fragments:
            assert (REPO / "kconfigs" / frag).is_file(), f"{v.name}: kconfigs/{frag} missing"


def test_records_are_consistent() -> None:
    for v in variant_records.RECORDS:
        # A linked archive needs the option that names it; an initramfs payload needs none.
        assert (v.payload is Payload.LINKED_ARCHIVE) == (v.archive_option is not None), v.name
        assert v.needs_glibc_series == (v.userland is Userland.LINKED_APP), v.name
        # The probe is /init exactly when it is not inside vmlinux.
        assert (v.initramfs is Initramfs.INIT_AND_DATA) == (v.payload is Payload.INITRD), v.name
    assert variant_records.get("ukl").expected_cpl == 0
    assert variant_records.get("classic").expected_cpl == 3


def test_unknown_variant_is_a_user_error_naming_it() -> None:
    with pytest.raises(UserError, match="unknown variant 'bsd'") as info:
        variant_records.get("bsd")
    assert "classic, ukl" in (info.value.hint or "")


def test_no_variant_branches_outside_the_records() -> None:
    """Other modules read the records; none compares a variant name itself."""
    pkg = REPO / "ukl_patchbot"
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in pkg.rglob("*.py") if p.name != "variant_records.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"""["'](ukl|classic)["']""", line)
    ]
    assert offenders == []


def test_spec_boots_the_initramfs_its_record_names(tmp_path: Path) -> None:
    from ukl_patchbot.check import variants

    full, data, archive = tmp_path / "init.cpio", tmp_path / "data.cpio", tmp_path / "app.o"
    archive.write_bytes(b"obj")
    classic = variants.spec_for("classic", REPO / "kconfigs", initrd=full, data_initrd=data,
                                ukl_archive=archive)
    ukl = variants.spec_for("ukl", REPO / "kconfigs", initrd=full, data_initrd=data,
                            ukl_archive=archive)
    assert classic.initrd == full and not classic.extra
    assert ukl.initrd == data and "CONFIG_UKL_ARCHIVE" in ukl.extra


def test_profile_goes_after_base_and_before_the_variant_fragment(tmp_path: Path) -> None:
    from ukl_patchbot.check import variants

    kc = tmp_path / "kconfigs"
    kc.mkdir()
    for name in ("base.config", "classic.config", "ukl.config", "profile-realistic.config"):
        (kc / name).write_text("# x\n")
    for v in ("classic", "ukl"):
        spec = variants.spec_for(v, kc, profile="realistic")
        assert [f.name for f in spec.fragments] == ["base.config", "profile-realistic.config",
                                                    f"{v}.config"]
        assert [f.name for f in variants.spec_for(v, kc).fragments] == ["base.config", f"{v}.config"]


@pytest.mark.parametrize("bad", ["nosuch", "../base", "sub/realistic"])
def test_unknown_profile_is_a_clear_error_naming_the_known_ones(tmp_path: Path, bad: str) -> None:
    from ukl_patchbot.check import variants
    from ukl_patchbot.core.errors import UserError

    (tmp_path / "profile-realistic.config").write_text("# x\n")
    with pytest.raises(UserError) as exc:
        variants.profile_fragment(tmp_path, bad)
    assert repr(bad) in str(exc.value) and "realistic" in (exc.value.hint or "")


def test_repo_profiles_exist_and_name_real_options() -> None:
    from tests.helpers.gitrepo import REPO_ROOT
    from ukl_patchbot.check import kbuild

    text = (REPO_ROOT / "kconfigs" / "profile-realistic.config").read_text()
    opts = kbuild.parse_config(text)
    for want in ("CONFIG_BLOCK", "CONFIG_PREEMPT", "CONFIG_X86_KERNEL_IBT", "CONFIG_RETHUNK"):
        assert opts.get(want) == "y"
    ukl = kbuild.parse_config((REPO_ROOT / "kconfigs" / "ukl.config").read_text())
    assert ukl.get("CONFIG_X86_KERNEL_IBT") == "n"
