"""Version strings: upstream tags (``v6.1.192``, ``glibc-2.36-deb12u14``) and Debian versions.

Tags sort by version, not by string: ``v6.1.99 < v6.1.170``, ``6.1-rc7 < 6.1``,
``glibc-2.36-deb12u7 < glibc-2.36-deb12u14``. All functions here are pure.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_RELEASE = re.compile(r"^(\d+(?:\.\d+)*)(.*)$")
_PRERELEASE = re.compile(r"^-?(rc|alpha|beta|pre)(\d*)$")
_CHUNK = re.compile(r"\d+|[^\d]+")


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Split ``deb12u14`` into comparable chunks: numbers compare as numbers."""
    out: list[tuple[int, int | str]] = []
    for chunk in _CHUNK.findall(text):
        out.append((1, int(chunk)) if chunk.isdigit() else (0, chunk))
    return tuple(out)


@dataclass(frozen=True, order=True)
class Version:
    """A parsed upstream version; instances order by version."""

    release: tuple[int, ...]
    # -1 for a pre-release (rc), 0 for the release itself, 1 for a suffixed update.
    stage: int
    suffix_key: tuple[tuple[int, int | str], ...]
    text: str

    def in_line(self, line: str) -> bool:
        """True if this version belongs to the tracked line ``line`` (``6.1`` has 6.1.x, not 6.10)."""
        want = tuple(int(p) for p in line.split("."))
        return self.release[: len(want)] == want


def parse(version: str) -> Version | None:
    """Parse a version string without tag prefix; None if it does not start with a number."""
    m = _RELEASE.match(version)
    if not m:
        return None
    release = tuple(int(p) for p in m.group(1).split("."))
    suffix = m.group(2)
    if not suffix:
        stage = 0
    elif _PRERELEASE.match(suffix):
        stage = -1
    else:
        stage = 1
    return Version(release, stage, _natural(suffix), version)


def tag_version(tag: str, prefix: str) -> Version | None:
    """The version a tag names, or None if the tag does not have ``prefix`` + a version."""
    if not tag.startswith(prefix):
        return None
    return parse(tag[len(prefix):])


def component_of_tag(tag: str, prefixes: Mapping[str, str]) -> str | None:
    """The component (name -> tag prefix) whose tags ``tag`` is one of, or None.

    A tag belongs to a component when it parses as a version under that
    component's prefix; the longest prefix wins (``glibc-2.36`` is glibc's
    even though an empty prefix would match it too).
    """
    matches = [name for name, prefix in prefixes.items() if tag_version(tag, prefix) is not None]
    return max(matches, key=lambda n: len(prefixes[n]), default=None)


def sort_tags(tags: Iterable[str], prefix: str, *, newest_first: bool = True) -> list[str]:
    """Tags carrying a version after ``prefix``, sorted by version (others are dropped)."""
    parsed = [(v, t) for t in tags if (v := tag_version(t, prefix)) is not None]
    parsed.sort(reverse=newest_first)
    return [t for _, t in parsed]


def closest_tags(wanted: str, tags: Iterable[str], prefix: str, n: int = 3) -> list[str]:
    """Known tags nearest to ``wanted``: by version when it parses, else by spelling."""
    known = sort_tags(tags, prefix, newest_first=False)
    if not known:
        return []
    v = tag_version(wanted, prefix) or parse(wanted.lstrip("v"))
    if v is not None:
        def distance(tag: str) -> tuple[int, ...]:
            tv = tag_version(tag, prefix)
            assert tv is not None
            width = max(len(v.release), len(tv.release))
            a = v.release + (0,) * (width - len(v.release))
            b = tv.release + (0,) * (width - len(tv.release))
            return tuple(abs(x - y) for x, y in zip(a, b, strict=True))

        return sorted(known, key=distance)[:n]
    return difflib.get_close_matches(wanted, known, n=n, cutoff=0.0)


# --- Debian versions ([epoch:]upstream[-revision]) ------------------------------------


_NONDIGITS = re.compile(r"\D*")


def _deb_order(c: str) -> int:
    # Debian policy: '~' sorts before everything, letters before non-letters.
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _deb_compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternate non-digit runs (by _deb_order) and digit runs (numeric)."""
    while a or b:
        na = _NONDIGITS.match(a).end()  # type: ignore[union-attr]
        nb = _NONDIGITS.match(b).end()  # type: ignore[union-attr]
        sa, sb = a[:na], b[:nb]
        for i in range(max(len(sa), len(sb))):
            oa = _deb_order(sa[i]) if i < len(sa) else 0
            ob = _deb_order(sb[i]) if i < len(sb) else 0
            if oa != ob:
                return -1 if oa < ob else 1
        a, b = a[na:], b[nb:]
        da = len(a) - len(a.lstrip("0123456789"))
        db = len(b) - len(b.lstrip("0123456789"))
        ia, ib = int(a[:da] or 0), int(b[:db] or 0)
        if ia != ib:
            return -1 if ia < ib else 1
        a, b = a[da:], b[db:]
    return 0


def split_debian(version: str) -> tuple[int, str, str]:
    """``1:2.36-9+deb12u14`` -> (1, "2.36", "9+deb12u14")."""
    epoch = 0
    if ":" in version:
        e, version = version.split(":", 1)
        epoch = int(e)
    upstream, _, revision = version.rpartition("-")
    if not upstream:
        upstream, revision = revision, ""
    return epoch, upstream, revision


def compare_debian(a: str, b: str) -> int:
    """Compare two Debian version strings like ``dpkg --compare-versions``: -1, 0 or 1."""
    ea, ua, ra = split_debian(a)
    eb, ub, rb = split_debian(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _deb_compare_part(ua, ub) or _deb_compare_part(ra, rb)


_STABLE_UPDATE = re.compile(r"\+(deb\d+u\d+)$")


def debian_tag_version(version: str) -> str:
    """The upstream version a Debian package version stands for, as used in our tags.

    ``6.1.170-3`` -> ``6.1.170`` (the Debian revision is dropped: newest wins);
    ``2.36-9+deb12u14`` -> ``2.36-deb12u14`` (a stable update of the same
    upstream version carries a different upstream snapshot, so it is kept).
    """
    _, upstream, revision = split_debian(version)
    m = _STABLE_UPDATE.search(revision)
    return f"{upstream}-{m.group(1)}" if m else upstream
