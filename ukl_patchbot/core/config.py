"""Configuration: `patchbot.toml` at the repository root, layered over defaults.

Secrets never live here: they come from the environment (or files it names)
and are read by the modules that need them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ukl_patchbot.core import versions
from ukl_patchbot.core.errors import UserError

CONFIG_NAME = "patchbot.toml"

DEFAULTS: dict[str, Any] = {
    "paths": {"cache_dir": ""},
    "components": {
        "linux": {
            "upstream": ["debian:linux-source-6.1", "debian:linux-source-6.12"],
            "tag_prefix": "v",
            "lines": {
                "6.1": {"series": "patchsets/linux/6.1"},
                "6.12": {"series": "patchsets/linux/6.12"},
            },
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
class Line:
    """One line of a component (``6.1``): the versions it holds and its own series directory.

    ``series_dir`` None means the component's ``series`` (an old single-line
    configuration, where every line shares one series).
    """

    name: str
    series_dir: Path | None = None
    tracked: bool = True

    def holds(self, tag: str, prefix: str) -> bool:
        v = versions.tag_version(tag, prefix)
        return v is not None and (not self.name or v.in_line(self.name))


@dataclass(frozen=True)
class Component:
    """One maintained tree: its upstreams, its lines and the series of the selected line.

    ``series_dir`` is the series of the selected line: the default line (the
    newest one holding a series) as loaded, the tag's line after
    `Config.for_tag`/`Config.for_line`.
    """

    name: str
    upstream: str
    tag_prefix: str
    series_dir: Path
    tracked: tuple[str, ...]
    lines: tuple[Line, ...] = ()  # oldest first
    more_upstreams: tuple[str, ...] = ()  # more sources feeding the same mirror
    line: str | None = None  # the selected line, once chosen

    @property
    def upstreams(self) -> tuple[str, ...]:
        return (self.upstream, *self.more_upstreams)

    @property
    def is_debian(self) -> bool:
        return self.upstream.startswith("debian:")

    @property
    def debian_package(self) -> str:
        return self.upstream.split(":", 1)[1]

    @property
    def debian_packages(self) -> tuple[str, ...]:
        return tuple(u.split(":", 1)[1] for u in self.upstreams if u.startswith("debian:"))

    def line_series(self, line: Line) -> Path:
        return line.series_dir or self.series_dir

    def series_dirs(self) -> tuple[Path, ...]:
        """Every series directory of the component, each once."""
        dirs = [self.series_dir] + [self.line_series(ln) for ln in self.lines]
        return tuple(dict.fromkeys(dirs))

    def line_for_tag(self, tag: str) -> Line | None:
        """The line ``tag`` belongs to: the most specific (longest) matching name."""
        held = [ln for ln in self.lines if ln.holds(tag, self.tag_prefix)]
        return max(held, key=lambda ln: len(ln.name.split("."))) if held else None

    def get_line(self, name: str) -> Line:
        for ln in self.lines:
            if ln.name == name:
                return ln
        known = ", ".join(ln.name for ln in self.lines) or "none"
        raise UserError(f"{self.name} has no line {name!r}",
                        hint=f"lines in {CONFIG_NAME}: {known}")

    def older_lines(self, name: str) -> list[Line]:
        """Lines older than ``name`` whose series exists, newest first."""
        want = versions.parse(name)
        out = [ln for ln in self.lines
               if (v := versions.parse(ln.name)) is not None and want is not None and v < want
               and (self.line_series(ln) / "series").is_file()]
        return sorted(out, key=lambda ln: versions.parse(ln.name), reverse=True)  # type: ignore[arg-type, return-value]

    def with_series(self, directory: Path) -> Component:
        """The same component with every line carried by the one series in ``directory``."""
        lines = tuple(replace(ln, series_dir=None) for ln in self.lines)
        return replace(self, series_dir=directory, lines=lines)

    def rerooted(self, old_root: Path, new_root: Path) -> Component:
        """The same component with every series directory moved from ``old_root`` to ``new_root``."""
        def move(p: Path) -> Path:
            return new_root / p.relative_to(old_root)
        lines = tuple(replace(ln, series_dir=move(ln.series_dir) if ln.series_dir else None)
                      for ln in self.lines)
        default = move(self.series_dir)
        if self.line is None and lines and all(ln.series_dir for ln in lines):
            default = _default_series(list(lines))  # what the new tree holds
        return replace(self, series_dir=default, lines=lines)


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

    def for_line(self, component: str, line: str) -> Config:
        """This configuration with ``component``'s series set to that of ``line``."""
        comp = self.component(component)
        ln = comp.get_line(line)
        chosen = replace(comp, series_dir=comp.line_series(ln), line=ln.name)
        return replace(self, components={**self.components, component: chosen})

    def for_tag(self, component: str, tag: str) -> Config:
        """This configuration with ``component``'s series set to the one of ``tag``'s line.

        The one place a tag picks its series: ``v6.12.117`` -> line ``6.12``
        -> ``patchsets/linux/6.12``. A tag in no configured line keeps the
        default series (old single-line configurations track one line but
        rebase onto any tag).
        """
        comp = self.component(component)
        ln = comp.line_for_tag(tag)
        return self if ln is None else self.for_line(component, ln.name)


_LINE_KEYS = ("series", "tracked", "lines")


def _merge_components(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Layer component tables; a component naming its series or lines replaces the default's."""
    out = dict(base)
    for name, table in over.items():
        default = base.get(name)
        if isinstance(table, dict) and isinstance(default, dict):
            if "series" in table or "lines" in table:
                default = {k: v for k, v in default.items() if k not in _LINE_KEYS}
            out[name] = {**default, **table}
        else:
            out[name] = table
    return out


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
    if not isinstance(raw.get("components", {}), dict):
        raise UserError(f"{path}: components must be a table")
    comps_raw = _merge_components(DEFAULTS["components"], raw.get("components", {}))
    data = _merge(DEFAULTS, {k: v for k, v in raw.items() if k != "components"})
    data["components"] = comps_raw
    root = path.parent
    cache = os.environ.get("PATCHBOT_CACHE_DIR") or data["paths"].get("cache_dir") or ""
    cache_dir = Path(cache).expanduser() if cache else default_cache_dir()
    if not cache_dir.is_absolute():
        cache_dir = root / cache_dir
    comps = {name: _component(path, root, name, c) for name, c in data["components"].items()}
    return Config(root=root, cache_dir=cache_dir, components=comps)


def _str_list(path: Path, where: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(
            isinstance(v, str) and v for v in items):
        raise UserError(f"{path}: {where} must be a non-empty string or list of strings",
                        hint="e.g. upstream = [\"debian:linux-source-6.1\"]")
    return tuple(items)


def _component(path: Path, root: Path, name: str, c: Any) -> Component:
    """One ``[components.NAME]`` table; errors name the file and the key."""
    where = f"[components.{name}]"
    if not isinstance(c, dict):
        raise UserError(f"{path}: {where} must be a table")
    ups = _str_list(path, f"{where} upstream", c.get("upstream"))
    prefix = c.get("tag_prefix", "")
    if not isinstance(prefix, str):
        raise UserError(f"{path}: {where} tag_prefix must be a string")
    raw_lines = c.get("lines")
    if raw_lines is None:
        return _single_line(path, root, name, c, ups, prefix)
    if not isinstance(raw_lines, dict) or not raw_lines:
        raise UserError(f"{path}: {where} lines must be a table of lines",
                        hint=f'e.g. [components.{name}.lines."6.1"] series = "patchsets/{name}/6.1"')
    lines = [_line(path, root, f"{where} lines.{ln!r}", ln, body) for ln, body in raw_lines.items()]
    lines.sort(key=lambda ln: versions.parse(ln.name) or versions.parse("0"))  # type: ignore[arg-type, return-value]
    return Component(name=name, upstream=ups[0], more_upstreams=ups[1:], tag_prefix=prefix,
                     series_dir=_default_series(lines), lines=tuple(lines),
                     tracked=tuple(ln.name for ln in lines if ln.tracked))


def _default_series(lines: list[Line]) -> Path:
    """The series used when no tag chose a line: the newest line that has one."""
    with_series = [ln for ln in lines if ln.series_dir and (ln.series_dir / "series").is_file()]
    default = (with_series or lines)[-1].series_dir
    assert default is not None
    return default


def _single_line(path: Path, root: Path, name: str, c: dict[str, Any], ups: tuple[str, ...],
                 prefix: str) -> Component:
    """The older form: one ``series`` shared by every tracked line."""
    where = f"[components.{name}]"
    series = c.get("series")
    if not isinstance(series, str) or not series:
        raise UserError(f"{path}: {where} needs a non-empty 'series' (or a lines table)")
    tracked = c.get("tracked", [])
    if not isinstance(tracked, list) or not all(isinstance(t, str) for t in tracked):
        raise UserError(f"{path}: {where} tracked must be a list of strings",
                        hint='e.g. tracked = ["6.1"]')
    for t in tracked:
        _check_line_name(path, f"{where} tracked", t)
    return Component(name=name, upstream=ups[0], more_upstreams=ups[1:], tag_prefix=prefix,
                     series_dir=root / series, tracked=tuple(tracked),
                     lines=tuple(Line(t) for t in tracked))


def _check_line_name(path: Path, where: str, name: str) -> None:
    if versions.parse(name) is None or not all(p.isdigit() for p in name.split(".")):
        raise UserError(f"{path}: {where}: {name!r} is not a line such as \"6.1\"")


def _line(path: Path, root: Path, where: str, name: str, body: Any) -> Line:
    _check_line_name(path, where, name)
    if not isinstance(body, dict):
        raise UserError(f"{path}: {where} must be a table with a series key")
    series = body.get("series")
    if not isinstance(series, str) or not series:
        raise UserError(f"{path}: {where} needs a non-empty 'series'",
                        hint=f'e.g. series = "patchsets/.../{name}"')
    tracked = body.get("tracked", True)
    if not isinstance(tracked, bool):
        raise UserError(f"{path}: {where} tracked must be true or false")
    unknown = sorted(set(body) - {"series", "tracked"})
    if unknown:
        raise UserError(f"{path}: {where} has unknown key(s) {', '.join(unknown)}",
                        hint="a line knows series and tracked")
    return Line(name, root / series, tracked)
