"""Kernel configuration and build: option-drop detection, build results, missing tools.

Fast tests run real `make` on tests/fakelinux (a tiny fake kernel tree); the
slow ones configure the real Linux tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ukl_patchbot.check import kbuild
from ukl_patchbot.check.results import BuildStatus, ConfigStatus, DroppedOption
from ukl_patchbot.core.errors import InfraError, UserError

FAKE = Path(__file__).parent / "fakelinux"


@pytest.fixture
def fake_tree(tmp_path: Path) -> Path:
    dest = tmp_path / "fakelinux"
    shutil.copytree(FAKE, dest)
    return dest


def test_parse_config_reads_values_and_not_set() -> None:
    opts = kbuild.parse_config(
        'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S="x y"\n# a comment\nCONFIG_N=0x10\n')
    assert opts == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_S": '"x y"', "CONFIG_N": "0x10"}


def test_dropped_options_later_fragment_wins_and_unset_counts_as_n() -> None:
    requested = {
        "base.config": {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_OFF": "n"},
        "ukl.config": {"CONFIG_B": "n", "CONFIG_C": "y"},
    }
    final = {"CONFIG_A": "y", "CONFIG_B": "n"}  # C missing entirely, OFF unset
    assert kbuild.dropped_options(requested, final) == (
        DroppedOption("CONFIG_C", "y", "n", "ukl.config"),
    )


def test_dropped_options_notices_changed_strings() -> None:
    requested = {"x": {"CONFIG_UKL_ARCHIVE": '"/a/app.o"'}}
    assert kbuild.dropped_options(requested, {"CONFIG_UKL_ARCHIVE": '""'})[0].actual == '""'


def test_dropped_options_skip_symbols_the_tree_does_not_know(tmp_path: Path) -> None:
    """A profile shared by two lines names MITIGATION_RETPOLINE (6.9+) and RETPOLINE (older)."""
    (tmp_path / "arch").mkdir()
    (tmp_path / "Kconfig").write_text("config RETPOLINE\n\tbool\nmenuconfig NET\n\tbool\n")
    (tmp_path / "arch" / "Kconfig.debug").write_text("  config X86_KERNEL_IBT\n\tbool\n")
    known = kbuild.kconfig_symbols(tmp_path)
    assert known == {"CONFIG_RETPOLINE", "CONFIG_NET", "CONFIG_X86_KERNEL_IBT"}
    requested = {"realistic.config": {"CONFIG_RETPOLINE": "y", "CONFIG_MITIGATION_RETPOLINE": "y",
                                      "CONFIG_X86_KERNEL_IBT": "y"}}
    final = {"CONFIG_RETPOLINE": "y"}
    assert [d.name for d in kbuild.dropped_options(requested, final, known)] == [
        "CONFIG_X86_KERNEL_IBT"]  # known and off: still reported
    assert len(kbuild.dropped_options(requested, final)) == 2  # without the tree: both


def test_format_fragment_and_kconfig_string_round_trip() -> None:
    text = kbuild.format_fragment({"CONFIG_X": "y", "CONFIG_Y": "n",
                                   "CONFIG_P": kbuild.kconfig_string('/p/a "b".o')})
    assert kbuild.parse_config(text) == {"CONFIG_X": "y", "CONFIG_Y": "n",
                                         "CONFIG_P": '"/p/a \\"b\\".o"'}


def test_configure_ok_on_fake_tree(fake_tree: Path, tmp_path: Path) -> None:
    frag = tmp_path / "base.config"
    frag.write_text("CONFIG_TTY=y\nCONFIG_SERIAL_8250=y\n")
    out = tmp_path / "out"
    res = kbuild.configure(fake_tree, out, [frag], log_path=tmp_path / "config.log")
    assert res.status == ConfigStatus.OK, res
    assert kbuild.parse_config((out / ".config").read_text())["CONFIG_SERIAL_8250"] == "y"
    assert "merged into" in (tmp_path / "config.log").read_text()


def test_configure_names_dropped_option_and_its_fragment(fake_tree: Path, tmp_path: Path) -> None:
    frag = tmp_path / "base.config"
    frag.write_text("CONFIG_TTY=y\n")
    ukl = tmp_path / "ukl.config"
    ukl.write_text("CONFIG_ACPI=y\n")  # needs CONFIG_PCI, which nobody asks for
    res = kbuild.configure(fake_tree, tmp_path / "out", [frag, ukl],
                           extra={"CONFIG_UKL_ARCHIVE": '"/x/app.o"'})
    assert res.status == ConfigStatus.DROPPED
    assert [d.name for d in res.dropped] == ["CONFIG_ACPI"]
    assert res.dropped[0].fragment == str(ukl) and res.dropped[0].actual == "n"
    # The run-time option went in through its own fragment and survived.
    assert kbuild.parse_config((tmp_path / "out" / ".config").read_text())[
        "CONFIG_UKL_ARCHIVE"] == '"/x/app.o"'


def test_configure_missing_fragment_is_a_user_error(fake_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope\.config"):
        kbuild.configure(fake_tree, tmp_path / "out", [tmp_path / "nope.config"])


def test_configure_on_a_non_kernel_dir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not look like a Linux tree"):
        kbuild.configure(tmp_path, tmp_path / "out", [])


def test_build_ok_reports_image_and_size(fake_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = kbuild.build(fake_tree, out, log_path=tmp_path / "build.log")
    assert res.status == BuildStatus.OK
    assert res.image == str(out / kbuild.IMAGE_REL)
    assert res.image_size == (out / kbuild.IMAGE_REL).stat().st_size > 0
    assert "make -C" in res.reproduce and f"O={out}" in res.reproduce


def test_interrupted_build_dir_is_discarded(fake_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert kbuild.build(fake_tree, out, timeout=60).ok
    assert not (out / kbuild.INCOMPLETE_MARKER).exists()
    assert kbuild.discard_if_interrupted(out) is False and out.is_dir()
    # A build killed by its timeout keeps the marker: the directory is not trusted.
    (fake_tree / "init" / "main.c").write_text("int start_kernel(void) { return 0; }\n")
    slow = kbuild.BuildEnv(extra_make_vars=("CC=sh -c 'sleep 30' --",))
    res = kbuild.build(fake_tree, out, benv=slow, timeout=1)
    assert not res.ok and "timed out" in res.first_errors[0]
    assert (out / kbuild.INCOMPLETE_MARKER).exists()
    assert kbuild.discard_if_interrupted(out) is True and not out.exists()


def test_build_error_is_a_failed_result_with_first_errors(fake_tree: Path, tmp_path: Path) -> None:
    (fake_tree / "BREAK").touch()
    res = kbuild.build(fake_tree, tmp_path / "out", log_path=tmp_path / "build.log")
    assert res.status == BuildStatus.FAILED and not res.ok
    assert any("undeclared_symbol" in e and "error:" in e for e in res.first_errors)
    assert res.image is None


def test_build_through_ccache_sets_basedir(fake_tree: Path, tmp_path: Path) -> None:
    if shutil.which("ccache") is None:
        pytest.skip("ccache not installed")
    benv = kbuild.BuildEnv(ccache_dir=tmp_path / "cc", ccache_basedir=tmp_path)
    before = kbuild.ccache_stats(tmp_path / "cc")
    kbuild.build(fake_tree, tmp_path / "a" / "out", benv=benv)
    # Same sources through a different build directory at the same depth: a hit.
    res = kbuild.build(fake_tree, tmp_path / "b" / "out", benv=benv)
    after = kbuild.ccache_stats(tmp_path / "cc")
    assert res.ok
    assert "CCACHE_BASEDIR=" + str(tmp_path) in res.reproduce
    assert kbuild.hit_rate(before, after) == pytest.approx(0.5)


def test_build_env_fixes_the_build_identity_and_names_the_ccache_mode() -> None:
    plain = kbuild.BuildEnv().env()
    # A kept build directory would otherwise count builds into the version string.
    assert plain["KBUILD_BUILD_VERSION"] == "1" and plain["KBUILD_BUILD_TIMESTAMP"]
    assert not any(k.startswith("CCACHE") for k in plain)
    cc = Path("/cc")
    depend = kbuild.BuildEnv(ccache_dir=cc).env()
    assert depend["CCACHE_DEPEND"] == "1" and "CCACHE_NODIRECT" not in depend
    pre = kbuild.BuildEnv(ccache_dir=cc, ccache_mode=kbuild.CcacheMode.PREPROCESSOR).env()
    assert pre["CCACHE_NODIRECT"] == "1" and "CCACHE_DEPEND" not in pre
    direct = kbuild.BuildEnv(ccache_dir=cc, ccache_mode=kbuild.CcacheMode.DIRECT).env()
    assert "CCACHE_DEPEND" not in direct and "CCACHE_NODIRECT" not in direct


@pytest.mark.parametrize(("mode", "hits"), [(kbuild.CcacheMode.DEPEND, 0.0),
                                            (kbuild.CcacheMode.DIRECT, 1.0),
                                            (kbuild.CcacheMode.PREPROCESSOR, 1.0)])
def test_header_change_that_preprocesses_the_same(fake_tree: Path, tmp_path: Path,
                                                  mode: kbuild.CcacheMode, hits: float) -> None:
    """What a stable update does to most objects: a header changes, the compiler input may not.

    Depend mode hashes the header's bytes, so it misses; the modes that hash
    the preprocessed text hit, and the image is the same.
    """
    if shutil.which("ccache") is None:
        pytest.skip("ccache not installed")
    main = fake_tree / "init" / "main.c"
    main.write_text('#include "hdr.h"\n' + main.read_text())
    hdr = fake_tree / "init" / "hdr.h"
    hdr.write_text("#define UNUSED 1\n")
    benv = kbuild.BuildEnv(ccache_dir=tmp_path / "cc", ccache_basedir=tmp_path, ccache_mode=mode)
    first = kbuild.build(fake_tree, tmp_path / "a" / "out", benv=benv)
    hdr.write_text("/* a comment: no change after preprocessing */\n#define UNUSED 1\n")
    before = kbuild.ccache_stats(tmp_path / "cc")
    second = kbuild.build(fake_tree, tmp_path / "b" / "out", benv=benv)
    after = kbuild.ccache_stats(tmp_path / "cc")
    assert first.ok and second.ok
    assert kbuild.hit_rate(before, after) == hits
    assert Path(second.image or "").read_bytes() == Path(first.image or "").read_bytes()


def test_scan_build_log_counts_warnings_and_orders_errors() -> None:
    log = [
        "  CC      kernel/fork.o",
        "kernel/fork.c:12:5: warning: unused variable 'x' [-Wunused-variable]",
        "init/main.c:3:9: error: 'y' undeclared (first use in this function)",
        "make[2]: *** [scripts/Makefile.build:250: init/main.o] Error 1",
        "arch/x86/kernel/setup.c:1:1: warning: something",
    ]
    warnings, errors = kbuild.scan_build_log(log)
    assert warnings == 2
    assert errors[0].startswith("init/main.c:3:9: error:")
    assert errors[1].startswith("make[2]: ***")


def test_missing_tools_name_debian_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InfraError) as exc:
        kbuild.require_tools(["make", "flex", "qemu-system-x86_64"],
                             ["/nonexistent/gelf.h"] if False else [])
    msg = str(exc.value)
    assert "apt-get install" in msg
    for pkg in ("make", "flex", "qemu-system-x86"):
        assert pkg in msg


@pytest.mark.slow
def test_real_tree_drop_is_detected(linux_base_tree: Path, tmp_path: Path) -> None:
    real_tree = linux_base_tree
    frag = tmp_path / "want.config"
    # SERIAL_8250_CONSOLE needs SERIAL_8250 and TTY, which tinyconfig lacks.
    frag.write_text("CONFIG_64BIT=y\nCONFIG_PRINTK=y\nCONFIG_SERIAL_8250_CONSOLE=y\n")
    res = kbuild.configure(real_tree, tmp_path / "out", [frag], log_path=tmp_path / "c.log")
    assert res.status == ConfigStatus.DROPPED
    assert [d.name for d in res.dropped] == ["CONFIG_SERIAL_8250_CONSOLE"]
    frag.write_text(frag.read_text() + "CONFIG_TTY=y\nCONFIG_SERIAL_8250=y\n")
    res = kbuild.configure(real_tree, tmp_path / "out", [frag])
    assert res.status == ConfigStatus.OK, res.dropped
    assert not (real_tree / ".config").exists()  # out of tree: the source stays clean
