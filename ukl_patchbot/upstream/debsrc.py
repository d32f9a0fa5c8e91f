"""Debian source packages through a private apt configuration derived from the machine's own.

The machine's apt sources usually list binary archives only (``Types: deb``).
`derive_deb_src` reads them (``sources.list`` and ``sources.list.d/*.list`` in
the one-line form, ``sources.list.d/*.sources`` in deb822) and turns every
enabled entry into a ``deb-src`` entry with the same URIs, suites, components
and signing key; nothing about an archive is written in this code, it is read
from the machine at run time. `PrivateApt` writes that list and an
``APT_CONFIG`` file into a cache directory, so ``apt-get update`` and
``apt-get source`` run against private package lists and leave the system's
alone.

Trust: ``apt-get update`` checks the archive's signed ``InRelease`` against
the key the machine's entry names (``Signed-By``, or apt's trusted keyrings),
and ``apt-get source`` refuses a ``.dsc`` or tarball whose size or SHA-256
differs from that signed ``Sources`` index. ``dpkg-source -x`` then checks
every file against the checksums inside the ``.dsc``. The maintainer's own
signature on the ``.dsc`` is not checked (that needs the ``debian-keyring``
package); the archive's signature already covers the file.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ukl_patchbot.core import versions
from ukl_patchbot.core.cache import ContentCache
from ukl_patchbot.core.errors import CommandFailed, InfraError, UserError
from ukl_patchbot.core.fsutil import atomic_write
from ukl_patchbot.core.runner import run

SYSTEM_APT_ETC = Path("/etc/apt")
# Package lists younger than this are reused without `apt-get update`.
LISTS_MAX_AGE_S = 24 * 3600.0

# One-line option names -> deb822 field names (sources.list(5)).
_ONE_LINE_OPTIONS = {
    "arch": "Architectures", "lang": "Languages", "target": "Targets",
    "pdiffs": "PDiffs", "by-hash": "By-Hash", "allow-insecure": "Allow-Insecure",
    "allow-weak": "Allow-Weak", "allow-downgrade-to-insecure": "Allow-Downgrade-To-Insecure",
    "trusted": "Trusted", "signed-by": "Signed-By", "check-valid-until": "Check-Valid-Until",
    "valid-until-min": "Valid-Until-Min", "valid-until-max": "Valid-Until-Max",
    "check-date": "Check-Date", "date-max-future": "Date-Max-Future",
    "inrelease-path": "InRelease-Path", "snapshot": "Snapshot",
}
# deb822 fields that describe where and what, not how: not copied as options.
_CORE_FIELDS = {"types", "uris", "suites", "components", "enabled"}


@dataclass(frozen=True)
class SourceEntry:
    """One apt source: an archive (URI), a suite, its components and how to trust it."""

    types: tuple[str, ...]
    uri: str
    suite: str
    components: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()  # deb822 field -> value, in input order
    origin: str = ""  # the file it came from

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.uri.rstrip("/"), self.suite, self.components)


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a deb822 file as field -> value (continuation lines joined by newlines)."""
    stanzas: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last: str | None = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if cur:
                stanzas.append(cur)
            cur, last = {}, None
            continue
        if raw[0] in " \t":
            if last is None:
                raise UserError(f"deb822 continuation line without a field: {raw!r}")
            cur[last] += "\n" + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            raise UserError(f"deb822 line is not 'Field: value': {raw!r}")
        last = name.strip()
        cur[last] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


def parse_deb822(text: str, origin: str = "") -> list[SourceEntry]:
    """The enabled entries of a ``.sources`` file, one per (URI, suite)."""
    out: list[SourceEntry] = []
    for st in _deb822_stanzas(text):
        fields = {k.lower(): v for k, v in st.items()}
        if fields.get("enabled", "yes").strip().lower() in ("no", "false", "0"):
            continue
        types = tuple(fields.get("types", "").split())
        uris = fields.get("uris", "").split()
        suites = fields.get("suites", "").split()
        if not types or not uris or not suites:
            raise UserError(f"{origin or 'deb822 source'}: a stanza lacks Types, URIs or Suites")
        comps = tuple(fields.get("components", "").split())
        opts = tuple((k, v) for k, v in st.items() if k.lower() not in _CORE_FIELDS)
        out += [SourceEntry(types, u, s, comps, opts, origin) for u in uris for s in suites]
    return out


_ONE_LINE = re.compile(r"^(?P<type>deb(?:-src)?)\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<rest>.+)$")


def parse_one_line(text: str, origin: str = "") -> list[SourceEntry]:
    """The entries of a ``sources.list``-style file (``deb [opts] uri suite [component...]``)."""
    out: list[SourceEntry] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _ONE_LINE.match(line)
        if m is None:
            raise UserError(f"{origin or 'sources.list'} line {n} is not an apt source: {raw!r}")
        words = m.group("rest").split()
        if len(words) < 2:
            raise UserError(f"{origin or 'sources.list'} line {n} names no suite: {raw!r}")
        opts: list[tuple[str, str]] = []
        for word in (m.group("opts") or "").split():
            name, _, value = word.partition("=")
            opts.append((_ONE_LINE_OPTIONS.get(name.rstrip("+-"), name), value.replace(",", " ")))
        out.append(SourceEntry((m.group("type"),), words[0], words[1], tuple(words[2:]),
                               tuple(opts), origin))
    return out


def read_system_sources(etc: Path = SYSTEM_APT_ETC) -> list[SourceEntry]:
    """Every entry of the machine's apt sources, in the order apt reads them.

    apt reads ``sources.list`` and, in ``sources.list.d``, only ``*.list``
    (one-line) and ``*.sources`` (deb822) files; others (``*.disabled``,
    backups) are ignored here too.
    """
    out: list[SourceEntry] = []
    main = etc / "sources.list"
    if main.is_file():
        out += parse_one_line(main.read_text(), str(main))
    parts = etc / "sources.list.d"
    for f in sorted(parts.iterdir()) if parts.is_dir() else []:
        if f.suffix == ".list" and f.is_file():
            out += parse_one_line(f.read_text(), str(f))
        elif f.suffix == ".sources" and f.is_file():
            out += parse_deb822(f.read_text(), str(f))
    return out


def derive_deb_src(entries: Iterable[SourceEntry]) -> list[SourceEntry]:
    """One ``deb-src`` entry per distinct archive, suite and components of ``entries``.

    A binary entry and an existing source entry of the same archive give one
    source entry; entries with no components (flat repositories) are kept
    as they are; installation media (``cdrom:``) are left out.
    """
    seen: dict[tuple[str, str, tuple[str, ...]], SourceEntry] = {}
    for e in entries:
        if e.uri.startswith("cdrom:"):
            continue  # an installation medium: apt-get update would fail on it
        if e.key() not in seen:
            seen[e.key()] = SourceEntry(("deb-src",), e.uri, e.suite, e.components, e.options,
                                        e.origin)
    return list(seen.values())


def render_deb822(entries: Iterable[SourceEntry]) -> str:
    """A ``.sources`` file holding ``entries``."""
    stanzas = []
    for e in entries:
        lines = [f"Types: {' '.join(e.types)}", f"URIs: {e.uri}", f"Suites: {e.suite}"]
        if e.components:
            lines.append(f"Components: {' '.join(e.components)}")
        for name, value in e.options:
            first, *more = value.split("\n")
            lines.append(f"{name}: {first}")
            lines += [f" {m}" if m else " ." for m in more]
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


@dataclass(frozen=True)
class PrivateApt:
    """An apt configuration in ``root``: derived deb-src lists, private package lists and cache.

    The machine's ``apt.conf.d`` is still read (a proxy set there applies);
    its sources, package lists and download cache are not used.
    """

    root: Path
    etc: Path = SYSTEM_APT_ETC

    @property
    def config(self) -> Path:
        return self.root / "apt.conf"

    @property
    def sources_file(self) -> Path:
        return self.root / "sources.list.d" / "derived-deb-src.sources"

    @property
    def lists(self) -> Path:
        return self.root / "lists"

    def env(self) -> dict[str, str]:
        return {"APT_CONFIG": str(self.config)}

    def write(self) -> None:
        """(Re)write the configuration and the derived source list from the machine's sources."""
        entries = derive_deb_src(read_system_sources(self.etc))
        if not entries:
            raise UserError(f"{self.etc} lists no apt sources to derive deb-src entries from",
                            hint="add the Debian archive to /etc/apt/sources.list.d/")
        for d in ("sources.list.d", "lists/partial", "cache/archives/partial", "preferences.d"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        atomic_write(self.sources_file, render_deb822(entries))
        # An empty one-line list: apt would otherwise read the machine's.
        atomic_write(self.root / "sources.list", "")
        conf = [
            f'Dir::Etc::SourceList "{self.root / "sources.list"}";',
            f'Dir::Etc::SourceParts "{self.root / "sources.list.d"}";',
            f'Dir::Etc::PreferencesParts "{self.root / "preferences.d"}";',
            f'Dir::Etc::Preferences "{self.root / "preferences"}";',
            f'Dir::State::Lists "{self.lists}";',
            f'Dir::State::status "{self.root / "status"}";',
            f'Dir::Cache "{self.root / "cache"}";',
            # apt drops to the _apt user for downloads; the cache may not be
            # readable by it.
            'APT::Sandbox::User "root";',
            'Acquire::Languages "none";',
            'Acquire::IndexTargets::deb::Packages::DefaultEnabled "false";',
            "",
        ]
        atomic_write(self.config, "\n".join(conf))

    @property
    def stamp(self) -> Path:
        """Touched after each successful update (apt may date list files by the server's clock)."""
        return self.root / "lists-updated"

    def lists_age(self) -> float | None:
        """Seconds since the private package lists were fetched; None if never."""
        if not self.stamp.is_file() or not list(self.lists.glob("*Sources*")):
            return None
        return time.time() - self.stamp.stat().st_mtime

    def update(self, *, log_path: Path | None = None) -> None:
        """``apt-get update`` of the private lists (the archive's signature is checked)."""
        run(["apt-get", "update", "-q"], extra_env=self.env(), log_path=log_path, timeout=1800,
            check=True)
        atomic_write(self.stamp, time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))

    def source_versions(self, package: str) -> list[str]:
        """The versions of source ``package`` the private lists offer, newest first."""
        res = run(["apt-cache", "showsrc", "--only-source", package], extra_env=self.env(),
                  capture=True, timeout=120)
        found: list[str] = []
        for line in res.stdout.splitlines():
            if line.startswith("Version: "):
                ver = line.split(":", 1)[1].strip()
                if ver not in found:
                    found.append(ver)
        return sorted(found, key=functools.cmp_to_key(versions.compare_debian), reverse=True)


@dataclass(frozen=True)
class SourceTree:
    """An unpacked Debian source package."""

    package: str
    version: str
    path: Path  # the unpacked tree (Debian's patches applied, as dpkg-source -x leaves it)
    dsc: Path
    fetch_seconds: float = 0.0  # 0 when the cache already held it
    files: tuple[str, ...] = field(default_factory=tuple)


def fetch_source(package: str, cache: Path, *, etc: Path = SYSTEM_APT_ETC,
                 log_path: Path | None = None, refresh: bool = False) -> SourceTree:
    """The newest source of ``package`` the machine's archives serve, unpacked in ``cache``.

    Cached by version: ``<cache>/src/<package>_<version>/``. The private
    package lists are refreshed when missing, older than a day or when
    ``refresh``; a second call with fresh lists and the version unpacked runs
    no download. A version the index names but the archive does not serve
    (a mirror that lags its index) is skipped for the next one.
    """
    apt = PrivateApt(cache / "apt", etc)
    apt.write()
    age = apt.lists_age()
    start = time.monotonic()
    if refresh or age is None or age > LISTS_MAX_AGE_S:
        apt.update(log_path=log_path)
    versions = apt.source_versions(package)
    if not versions:
        raise UserError(f"the machine's archives offer no source package {package!r}",
                        hint=f"check the suites in {etc}/sources.list.d/")
    # Versions the archive would not serve since the lists were fetched: not
    # asked again until the next update, so a cached older version is free.
    unserved_file = cache / "src" / f".unserved-{package}"
    stale = not unserved_file.is_file() or (
        apt.stamp.is_file() and unserved_file.stat().st_mtime < apt.stamp.stat().st_mtime)
    unserved = set() if stale else set(unserved_file.read_text().split())
    failures: list[str] = []
    sources = ContentCache(cache / "src")
    for version in versions:
        key = f"{package}_{version.replace(':', '%3a')}"
        hit = sources.get(key)
        if hit is not None:
            return SourceTree(package, version, hit / "tree", next(hit.glob("*.dsc")))
        if version in unserved:
            failures.append(f"{version}: not served (earlier attempt)")
            continue
        try:
            with sources.put(key) as stage:
                files = _download_and_unpack(apt, package, version, stage, log_path)
        except CommandFailed as exc:
            failures.append(f"{version}: {exc.tail.splitlines()[-1] if exc.tail else exc}")
            unserved.add(version)
            atomic_write(unserved_file, "".join(f"{v}\n" for v in sorted(unserved)))
            continue
        took = time.monotonic() - start
        final = sources.path(key)
        return SourceTree(package, version, final / "tree", next(final.glob("*.dsc")), took, files)
    raise InfraError(f"no version of source package {package} could be fetched: "
                     + "; ".join(failures), hint=f"see {log_path}" if log_path else "")


def _download_and_unpack(apt: PrivateApt, package: str, version: str, into: Path,
                         log_path: Path | None) -> tuple[str, ...]:
    """``apt-get source`` one version into the empty directory ``into`` and unpack it there."""
    run(["apt-get", "source", "--download-only", "-q", f"{package}={version}"], cwd=into,
        extra_env=apt.env(), log_path=log_path, timeout=1800, check=True)
    dscs = list(into.glob("*.dsc"))
    if len(dscs) != 1:
        raise InfraError(f"apt-get source {package}={version} gave {len(dscs)} .dsc files")
    # Checks each file against the .dsc's checksums before unpacking.
    run(["dpkg-source", "-x", dscs[0].name, "tree"], cwd=into, log_path=log_path,
        timeout=600, check=True)
    return tuple(sorted(p.name for p in into.iterdir() if p.is_file()))
