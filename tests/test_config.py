from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.gitrepo import REPO_ROOT
from ukl_patchbot.core import config
from ukl_patchbot.core.errors import UserError


def test_repo_config_loads() -> None:
    cfg = config.load(REPO_ROOT / "patchbot.toml")
    assert set(cfg.components) == {"linux", "glibc"}
    assert cfg.component("linux").tracked == ("6.1",)
    assert cfg.component("linux").is_debian
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
