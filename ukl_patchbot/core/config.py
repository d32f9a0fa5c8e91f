"""Configuration: `patchbot.toml` at the repository root, layered over defaults.

Secrets never live here: they come from the environment (or files it names)
and are read by the modules that need them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ukl_patchbot.core.errors import UserError

CONFIG_NAME = "patchbot.toml"

DEFAULTS: dict[str, Any] = {
    "paths": {"cache_dir": ""},
    "components": {
        "linux": {
            "upstream": "debian:linux-source-6.1",
            "tag_prefix": "v",
            "series": "patchsets/linux",
            "tracked": ["6.1"],
        },
        "glibc": {
            "upstream": "debian:glibc-source",
            "tag_prefix": "glibc-",
            "series": "patchsets/glibc",
            "tracked": ["2.36"],
        },
    },
}


@dataclass(frozen=True)
class Component:
    """One maintained tree: its upstream, its series directory, its tracked lines."""

    name: str
    upstream: str
    tag_prefix: str
    series_dir: Path
    tracked: tuple[str, ...]

    @property
    def is_debian(self) -> bool:
        return self.upstream.startswith("debian:")

    @property
    def debian_package(self) -> str:
        return self.upstream.split(":", 1)[1]


@dataclass(frozen=True)
class Config:
    root: Path
    cache_dir: Path
    components: dict[str, Component] = field(default_factory=dict)

    def component(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            known = ", ".join(sorted(self.components))
            raise UserError(
                f"unknown component {name!r}", hint=f"known components: {known}"
            ) from None

    def mirror_dir(self, component: str) -> Path:
        return self.cache_dir / "mirrors" / f"{component}.git"

    @property
    def work_dir(self) -> Path:
        return self.cache_dir / "work"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` holding ``patchbot.toml``."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return d
    raise UserError(
        f"no {CONFIG_NAME} found in {here} or any parent directory",
        hint="run patchbot inside a ukl-patchbot checkout, or pass --config PATH",
    )


def default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ukl-patchbot"


def load(path: Path | None = None) -> Config:
    """Load the configuration from ``path`` (a file) or the checkout around cwd."""
    if path is None:
        path = find_root() / CONFIG_NAME
    path = path.resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}", hint="fix the syntax and rerun") from None
    data = _merge(DEFAULTS, raw)
    root = path.parent
    cache = os.environ.get("PATCHBOT_CACHE_DIR") or data["paths"].get("cache_dir") or ""
    cache_dir = Path(cache).expanduser() if cache else default_cache_dir()
    if not cache_dir.is_absolute():
        cache_dir = root / cache_dir
    comps: dict[str, Component] = {}
    for name, c in data["components"].items():
        for key in ("upstream", "series"):
            if not isinstance(c.get(key), str) or not c[key]:
                raise UserError(f"{path}: [components.{name}] needs a non-empty {key!r}")
        comps[name] = Component(
            name=name,
            upstream=c["upstream"],
            tag_prefix=c.get("tag_prefix", ""),
            series_dir=root / c["series"],
            tracked=tuple(c.get("tracked", ())),
        )
    return Config(root=root, cache_dir=cache_dir, components=comps)
