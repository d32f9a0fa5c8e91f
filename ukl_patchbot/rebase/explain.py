"""Build breaks explained: compiler and assembler errors -> the series patch and the upstream change.

After a rebase onto a new base a variant may fail to build because upstream
removed or renamed something a patch uses (``UNWIND_HINT_EMPTY`` became
``UNWIND_HINT_END_OF_STACK`` between 6.1 and 6.12). For each error line of
the build log this finds the identifier the compiler names, the series
patches that touch the file (or add the identifier), and the upstream hunks
between the old base and the new tag whose removed lines mention the
identifier: the change that caused the break, as data for the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.series import patchset as series_mod
from ukl_patchbot.series.patchset import Series
from ukl_patchbot.upstream import gitops

# gcc/clang: "file:line[:col]: error: msg"; gas: "file:line: Error: msg".
_DIAG = re.compile(r"^(?P<file>[\w./+-]+\.(?:c|h|S|s|lds|Kconfig)|[\w./+-]*Kconfig[\w.-]*)"
                   r":(?P<line>\d+)(?::\d+)?:\s+(?:fatal )?(?P<kind>error|Error|warning)"
                   r":\s*(?P<msg>.*)$")
# What the compiler names, in the messages that mean "this name is gone or changed".
_IDENT = [
    re.compile(r"'(?P<id>\w+)' undeclared"),
    re.compile(r"implicit declaration of function '(?P<id>\w+)'"),
    re.compile(r"unknown type name '(?P<id>\w+)'"),
    re.compile(r"has no member named '(?P<id>\w+)'"),
    re.compile(r"storage size of '\w+' isn't known|invalid use of undefined type '(?:struct )?(?P<id>\w+)'"),
    re.compile(r"no such instruction: `(?P<id>\w+)"),
    re.compile(r"unknown (?:macro|symbol|opcode) [`'\"]?(?P<id>\w+)"),
    re.compile(r"(?:depends on|selects) (?:an )?unknown symbol '?(?P<id>\w+)"),
    re.compile(r"undefined reference to `(?P<id>\w+)'"),
]
UPSTREAM_PATHS = ("arch/x86", "include", "kernel", "init", "fs", "mm", "scripts", "Makefile")
MAX_HUNKS = 5


@dataclass(frozen=True)
class Diagnostic:
    """One error line of a build log."""

    file: str
    line: int
    kind: str
    message: str
    identifier: str | None


@dataclass(frozen=True)
class UpstreamHunk:
    file: str
    header: str
    text: str  # the hunk, lines with their prefixes


@dataclass(frozen=True)
class Explanation:
    diagnostic: Diagnostic
    patches: tuple[str, ...]  # series patches touching the file or adding the identifier
    upstream: tuple[UpstreamHunk, ...]  # old base -> new tag hunks removing the identifier


def parse_diagnostics(lines: list[str] | tuple[str, ...]) -> list[Diagnostic]:
    """The errors of a build log (warnings left out), each once."""
    seen: dict[tuple[str, int, str], Diagnostic] = {}
    for raw in lines:
        m = _DIAG.match(raw.strip())
        if not m or m.group("kind") == "warning":
            continue
        msg = m.group("msg")
        ident = next((g.group("id") for rx in _IDENT if (g := rx.search(msg)) and g.group("id")),
                     None)
        key = (m.group("file"), int(m.group("line")), msg)
        seen.setdefault(key, Diagnostic(m.group("file"), int(m.group("line")),
                                        m.group("kind").lower(), msg, ident))
    return list(seen.values())


def _patches_for(series: Series, d: Diagnostic) -> tuple[str, ...]:
    out = []
    for p in series.patches:
        touches = any(f.path == d.file or f.old_path == d.file for f in p.files)
        adds = d.identifier is not None and any(
            re.search(rf"\b{re.escape(d.identifier)}\b", ln[1:])
            for f in p.files for h in f.hunks for ln in h.lines if ln.startswith("+"))
        if touches or adds:
            out.append(p.name)
    return tuple(out)


def _upstream_for(mirror: Path, old: str, new: str, ident: str,
                  paths: tuple[str, ...]) -> tuple[UpstreamHunk, ...]:
    """Hunks between ``old`` and ``new`` whose removed lines name ``ident`` (pickaxe, -G)."""
    res = gitops.git(mirror, "diff", "--no-color", "--no-renames", "-U1", f"-G\\b{ident}\\b",
                     old, new, "--", *paths, check=False, timeout=300)
    if not res.ok:
        return ()
    out: list[UpstreamHunk] = []
    word = re.compile(rf"\b{re.escape(ident)}\b")
    for f in series_mod.parse_diff(res.stdout, Path("upstream")):
        for h in f.hunks:
            if any(ln.startswith("-") and word.search(ln) for ln in h.lines):
                out.append(UpstreamHunk(f.path, h.header, "\n".join(h.lines)))
                if len(out) >= MAX_HUNKS:
                    return tuple(out)
    return tuple(out)


def explain(mirror: Path, series: Series, old_tag: str, new_tag: str,
            lines: list[str] | tuple[str, ...]) -> tuple[Explanation, ...]:
    """Each error of ``lines`` with the series patches and upstream hunks behind it."""
    cache: dict[str, tuple[UpstreamHunk, ...]] = {}
    out = []
    for d in parse_diagnostics(lines):
        ups: tuple[UpstreamHunk, ...] = ()
        if d.identifier:
            if d.identifier not in cache:
                paths = tuple(dict.fromkeys((d.file, *UPSTREAM_PATHS)))
                cache[d.identifier] = _upstream_for(mirror, old_tag, new_tag, d.identifier,
                                                    paths)
            ups = cache[d.identifier]
        out.append(Explanation(d, _patches_for(series, d), ups))
    return tuple(out)


def render_markdown(explanations: tuple[Explanation, ...], old_tag: str, new_tag: str
                    ) -> list[str]:
    """Report lines: per error, the patch and the upstream change that explain it."""
    out: list[str] = []
    for e in explanations:
        d = e.diagnostic
        what = f" (`{d.identifier}`)" if d.identifier else ""
        out.append(f"- `{d.file}:{d.line}`: {d.message}{what}")
        if e.patches:
            out.append(f"  - series patch: {', '.join(f'`{p}`' for p in e.patches)}")
        for h in e.upstream:
            out += [f"  - upstream {old_tag}..{new_tag}: `{h.file}` `{h.header}`", "",
                    "    ```diff", *("    " + ln for ln in h.text.splitlines()), "    ```"]
        if d.identifier and not e.upstream:
            out.append(f"  - no upstream hunk {old_tag}..{new_tag} removes `{d.identifier}`")
    return out
