from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.gitrepo import REPO_ROOT
from ukl_patchbot.core import config
from ukl_patchbot.core.errors import UserError


def test_repo_config_loads() -> None:
    cfg = config.load(REPO_ROOT / "patchbot.toml")
    assert set(cfg.components) == {"linux", "glibc"}
    linux = cfg.component("linux")
    assert linux.tracked == ("6.1", "6.12")
    assert linux.is_debian
    assert linux.debian_packages == ("linux-source-6.1", "linux-source-6.12")
    assert cfg.for_tag("linux", "v6.12.117").component("linux").series_dir == (
        REPO_ROOT / "patchsets" / "linux" / "6.12")
    assert cfg.for_tag("linux", "v6.1.192").component("linux").series_dir == (
        REPO_ROOT / "patchsets" / "linux" / "6.1")
    # glibc's one line pairs with both Linux lines.
    assert cfg.component("glibc").tracked == ("2.36",)
    assert cfg.cache_dir.name == "ukl-patchbot"


def test_overrides_layer_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "patchbot.toml"
    p.write_text('[paths]\ncache_dir = "cache"\n[components.linux]\nupstream = "file:///x.git"\n')
    cfg = config.load(p)
    assert cfg.cache_dir == tmp_path / "cache"
    assert cfg.component("linux").upstream == "file:///x.git"
    assert cfg.component("linux").tag_prefix == "v"  # default kept
    monkeypatch.setenv("PATCHBOT_CACHE_DIR", str(tmp_path / "env"))
    assert config.load(p).cache_dir == tmp_path / "env"


def test_bad_toml_and_unknown_component(tmp_path: Path) -> None:
    p = tmp_path / "patchbot.toml"
    p.write_text("[paths\n")
    with pytest.raises(UserError, match="invalid TOML"):
        config.load(p)
    p.write_text("")
    with pytest.raises(UserError, match="known components: glibc, linux"):
        config.load(p).component("gcc")


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "patchbot.toml"
    p.write_text(text)
    return p


def test_old_single_line_config_keeps_working(tmp_path: Path) -> None:
    p = _write(tmp_path, '[components.linux]\nupstream = "debian:linux-source-6.1"\n'
                         'series = "patchsets/linux"\ntracked = ["6.1"]\n')
    cfg = config.load(p)
    linux = cfg.component("linux")
    assert linux.series_dir == tmp_path / "patchsets" / "linux"
    assert linux.tracked == ("6.1",) and linux.upstreams == ("debian:linux-source-6.1",)
    # Every tag, in the line or not, uses the one series.
    for tag in ("v6.1.192", "v6.12.117"):
        assert cfg.for_tag("linux", tag).component("linux").series_dir == linux.series_dir
    assert cfg.for_tag("linux", "v6.1.192").component("linux").line == "6.1"


def test_lines_pick_series_by_tag(tmp_path: Path) -> None:
    (tmp_path / "s" / "5.10").mkdir(parents=True)
    (tmp_path / "s" / "5.10" / "series").write_text("")
    p = _write(tmp_path, '[components.linux]\nupstream = ["file:///a.git", "file:///b.git"]\n'
                         '[components.linux.lines."5.10"]\nseries = "s/5.10"\n'
                         '[components.linux.lines."5.1"]\nseries = "s/5.1"\ntracked = false\n')
    cfg = config.load(p)
    linux = cfg.component("linux")
    assert [ln.name for ln in linux.lines] == ["5.1", "5.10"]
    assert linux.tracked == ("5.10",)
    assert linux.upstreams == ("file:///a.git", "file:///b.git")
    # 5.10.3 is in 5.10, not in 5.1; 5.1.9 in 5.1 only.
    assert cfg.for_tag("linux", "v5.10.3").component("linux").series_dir == tmp_path / "s" / "5.10"
    assert cfg.for_tag("linux", "v5.1.9").component("linux").series_dir == tmp_path / "s" / "5.1"
    assert linux.older_lines("5.11") == [linux.get_line("5.10")]  # 5.1 has no series yet
    assert linux.series_dir == tmp_path / "s" / "5.10"  # default: newest line with a series
    with pytest.raises(UserError, match=r"has no line '4\.19'"):
        cfg.for_line("linux", "4.19")


@pytest.mark.parametrize("text, msg", [
    ('[components.linux]\nupstream = 3\n', r"\[components.linux\] upstream must be"),
    ('[components.linux.lines."6.1"]\n', r"lines.'6.1' needs a non-empty 'series'"),
    ('[components.linux.lines.six]\nseries = "x"\n', r"'six' is not a line"),
    ('[components.linux.lines."6.1"]\nseries = "x"\ncolour = 1\n', "unknown key"),
    ('[components.linux]\nlines = 1\n', "lines must be a table"),
    ('[components.glibc]\ntracked = "2.36"\n', "tracked must be a list"),
])
def test_config_errors_name_file_and_key(tmp_path: Path, text: str, msg: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(UserError, match=msg) as err:
        config.load(p)
    assert str(p) in str(err.value)
