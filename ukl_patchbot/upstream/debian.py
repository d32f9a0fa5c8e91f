"""Import Debian source packages (``linux-source-6.1``, ``glibc-source``) into a git mirror.

The embedded default upstream for machines without git access. Each package
version is fetched with ``apt-get download`` into a download cache and
streamed into ``git fast-import``: the .deb (an ar archive) is read here, its
``data.tar.xz`` and the upstream tarball inside it are decompressed on the fly,
and every file goes straight into the mirror as a blob. Nothing is unpacked
to disk.

One tagged commit per upstream version; when Debian has several revisions of
one upstream version, the newest wins. The tag message records package and
Debian version. For glibc, Debian ships the pristine ``glibc-2.36.tar.xz`` and
``debian/patches/git-updates.diff`` (upstream's own ``release/2.36/master``
branch, which carries the security fixes): the tarball becomes one commit and
the tagged commit applies ``git-updates.diff`` on top of it. Debian's own
patches are not applied.
"""

from __future__ import annotations

import io
import logging
import lzma
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from ukl_patchbot.core import versions
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.runner import run
from ukl_patchbot.upstream import gitops

IMPORT_NAME = f"{gitops.BOT_NAME} import"
IMPORT_EMAIL = gitops.BOT_EMAIL
IMPORT_TIMEOUT = 1800.0
UPDATES_DIFF = "debian/patches/git-updates.diff"
UPDATES_NAME = "git-updates.diff"
# Debian patches kept applied: Debian's glibc tarball has no manual/ (the GFDL
# manual is not DFSG-free) and this patch puts a stub manual/Makefile there;
# reverting it leaves a tree whose `make` fails on the missing manual subdir.
KEEP_APPLIED = frozenset({"all/local-remove-manual.diff"})
EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
_CHUNK = 1 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DebVersion:
    """One package version the archive offers and the tag it becomes."""

    package: str
    version: str  # Debian version, e.g. 6.1.192-2
    tag: str  # e.g. v6.1.192


def available(package: str, tag_prefix: str) -> list[DebVersion]:
    """Versions of ``package`` apt knows: the newest Debian revision per upstream version.

    Newest first.
    """
    res = run(["apt-cache", "madison", package], capture=True, timeout=120)
    found: dict[str, str] = {}
    for line in res.stdout.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 2 or parts[0] != package:
            continue
        ver = parts[1]
        tag = tag_prefix + versions.debian_tag_version(ver)
        if tag not in found or versions.compare_debian(ver, found[tag]) > 0:
            found[tag] = ver
    if not found:
        raise UserError(
            f"apt knows no versions of {package}",
            hint="run `apt-get update` (the package lists may be missing), "
            "or configure a git upstream in patchbot.toml",
        )
    tags = versions.sort_tags(found, tag_prefix)
    return [DebVersion(package, found[t], t) for t in tags]


def deb_filename(package: str, version: str) -> str:
    # apt-get download names files <pkg>_<version with ':' as %3a>_<arch>.deb.
    return f"{package}_{version.replace(':', '%3a')}_all.deb"


def download(dv: DebVersion, cache: Path, *, log_path: Path | None = None) -> Path:
    """The .deb for ``dv`` in ``cache``, fetched with ``apt-get download`` if missing."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / deb_filename(dv.package, dv.version)
    if target.is_file():
        return target
    # Download into a private directory, then rename: an interrupted download
    # never looks like a complete .deb.
    with tempfile.TemporaryDirectory(prefix=".dl-", dir=cache) as tmp:
        run(
            ["apt-get", "download", "-q", f"{dv.package}={dv.version}"],
            cwd=tmp, timeout=1800, log_path=log_path, check=True,
        )
        debs = list(Path(tmp).glob("*.deb"))
        if len(debs) != 1:
            raise InfraError(f"apt-get download {dv.package}={dv.version} produced {debs}")
        debs[0].rename(target)
    return target


def _ar_member(f: BinaryIO, prefix: str) -> int:
    """Position ``f`` at the start of the first ar member named ``prefix``*; its size."""
    if f.read(8) != b"!<arch>\n":
        raise UserError(f"{getattr(f, 'name', '?')}: not a Debian package (no ar header)")
    while True:
        header = f.read(60)
        if len(header) < 60:
            raise UserError(f"{getattr(f, 'name', '?')}: no {prefix}* member")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58])
        if name.startswith(prefix):
            if not name.endswith(".xz"):
                raise UserError(f"{getattr(f, 'name', '?')}: unsupported member {name}")
            return size
        f.seek(size + (size & 1), 1)


@dataclass
class _Entry:
    mode: str
    ref: str  # ":<mark>" or "inline"
    inline: bytes = b""


def _quote_path(path: str) -> bytes:
    # fast-import takes a path verbatim unless it starts with '"' or holds a newline.
    if path.startswith('"') or "\n" in path:
        escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'.encode()
    return path.encode("utf-8", "surrogateescape")


class _Stream:
    """Writes one tree to fast-import as blobs with marks, then the commit."""

    def __init__(self, wf: IO[bytes], first_mark: int) -> None:
        self.wf = wf
        self.mark = first_mark
        self.entries: dict[str, _Entry] = {}

    def add_tar(self, tf: tarfile.TarFile) -> None:
        for m in tf:
            parts = m.name.split("/", 1)
            if len(parts) != 2 or not parts[1] or parts[1].startswith(".git/"):
                continue  # the top directory itself, or git metadata
            path = parts[1].rstrip("/")
            if m.isreg():
                src = tf.extractfile(m)
                assert src is not None
                self.mark += 1
                self.wf.write(b"blob\nmark :%d\ndata %d\n" % (self.mark, m.size))
                remaining = m.size
                while remaining:
                    chunk = src.read(min(_CHUNK, remaining))
                    if not chunk:
                        raise InfraError(f"truncated tar member {m.name}")
                    self.wf.write(chunk)
                    remaining -= len(chunk)
                self.wf.write(b"\n")
                mode = "100755" if m.mode & 0o111 else "100644"
                self.entries[path] = _Entry(mode, f":{self.mark}")
            elif m.issym():
                self.entries[path] = _Entry("120000", "inline", m.linkname.encode())
            elif m.islnk():
                target = m.linkname.split("/", 1)[-1]
                if target in self.entries:
                    self.entries[path] = self.entries[target]

    def commit(self, ref: str, when: int, message: str, parent: str | None = None) -> None:
        msg = message.encode()
        who = f"{IMPORT_NAME} <{IMPORT_EMAIL}> {when} +0000".encode()
        self.mark += 1
        w = self.wf.write
        w(b"commit %s\nmark :%d\nauthor %s\ncommitter %s\ndata %d\n%s\n"
          % (ref.encode(), self.mark, who, who, len(msg), msg))
        if parent:
            w(b"from %s\n" % parent.encode())
        w(b"deleteall\n")
        for path, e in sorted(self.entries.items()):
            if e.ref == "inline":
                w(b"M %s inline %s\ndata %d\n%s\n" % (e.mode.encode(), _quote_path(path),
                                                      len(e.inline), e.inline))
            else:
                w(b"M %s %s %s\n" % (e.mode.encode(), e.ref.encode(), _quote_path(path)))
        w(b"\n")


def _tag_cmd(wf: IO[bytes], tag: str, target: str, when: int, message: str) -> None:
    msg = message.encode()
    who = f"{IMPORT_NAME} <{IMPORT_EMAIL}> {when} +0000".encode()
    wf.write(b"tag %s\nfrom %s\ntagger %s\ndata %d\n%s\n" % (tag.encode(), target.encode(), who,
                                                              len(msg), msg))


class _Limited(io.RawIOBase):
    """Read at most ``size`` bytes of ``f``: one ar member, so xz never sees what follows."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.left <= 0:
            return 0
        data = self.f.read(min(len(b), self.left))
        n = len(data)
        b[:n] = data
        self.left -= n
        return n


_TARBALL = re.compile(r"^(?:\./)?usr/src/(?:[^/]+/)?[^/]+\.tar\.xz$")


def _ref_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def import_ref(dv: DebVersion) -> str:
    """Where the imported (unpatched) tree of ``dv`` is kept in the mirror."""
    return f"refs/patchbot/imports/{_ref_safe(dv.package)}/{_ref_safe(dv.version)}"


def tag_message(dv: DebVersion, extra: str = "") -> str:
    return (
        f"{dv.tag} from Debian package {dv.package} {dv.version}\n\n{extra}"
        f"package: {dv.package}\nrevision: {dv.version}\n"
    )


def parse_tag_message(message: str) -> dict[str, str]:
    """The ``package:`` and ``revision:`` lines of an import tag message."""
    out: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("package", "revision"):
            out[key] = value.strip()
    return out


def _scan(outer: tarfile.TarFile, stream: _Stream, small: dict[str, bytes],
          when: list[int]) -> None:
    """Walk the .deb's data tarball: stream the upstream tarball, keep the Debian patches."""
    for m in outer:
        name = m.name.removeprefix("./")
        if m.isreg() and _TARBALL.match(name) and not when:
            src = outer.extractfile(m)
            assert src is not None
            inner_xz = lzma.LZMAFile(src)  # noqa: SIM115 - closed by the with below
            with inner_xz, tarfile.open(fileobj=inner_xz, mode="r|") as inner:
                stream.add_tar(inner)
            when.append(int(m.mtime))
        elif m.isreg() and "/debian/patches/" in name and m.size < 8 << 20:
            src = outer.extractfile(m)
            assert src is not None
            small[name.split("/debian/patches/", 1)[1]] = src.read()


def import_version(mirror: Path, deb: Path, dv: DebVersion, *, log_path: Path | None) -> str:
    """Stream ``deb`` into ``mirror`` as one commit and tag ``dv.tag``; returns the tag's commit.

    The tag is (re)pointed at the new commit, so a newer Debian revision of
    the same upstream version replaces the older one.
    """
    ref = import_ref(dv)
    small: dict[str, bytes] = {}
    when: list[int] = []

    def feed(wf: IO[bytes]) -> None:
        stream = _Stream(wf, 0)
        with open(deb, "rb") as f:
            size = _ar_member(f, "data.tar")
            # The LZMAFile is closed by the `with` below.
            xz = lzma.LZMAFile(cast(BinaryIO, _Limited(f, size)))  # noqa: SIM115
            with xz, tarfile.open(fileobj=xz, mode="r|") as outer:
                _scan(outer, stream, small, when)
        if not when:
            raise UserError(f"{deb}: no usr/src/*.tar.xz upstream tarball inside")
        msg = (f"Import {dv.package} {dv.version}\n\n"
               "Upstream tarball from the Debian package, unchanged.\n")
        stream.commit(ref, when[0], msg)
        if UPDATES_NAME not in small:
            _tag_cmd(wf, dv.tag, ref, when[0], tag_message(dv))

    start = time.monotonic()
    gitops.fast_import(mirror, feed, log_path=log_path, timeout=IMPORT_TIMEOUT)
    if UPDATES_NAME in small:
        _revert_debian_patches(mirror, ref, small, dv, when[0])
    sha = gitops.rev_parse(mirror, f"refs/tags/{dv.tag}")
    if sha is None:
        raise InfraError(f"import of {deb} finished but tag {dv.tag} is missing in {mirror}")
    log.info("imported %s %s as %s in %.1fs", dv.package, dv.version, dv.tag,
                    time.monotonic() - start)
    return sha


def _series_entries(series: bytes) -> list[tuple[str, str]]:
    """(patch name, strip option) for each line of a quilt ``series`` file."""
    out = []
    for line in series.decode("utf-8", "replace").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            strip = next((w for w in words[1:] if w.startswith("-p")), "-p1")
            out.append((words[0], strip))
    return out


def _revert_debian_patches(
    mirror: Path, shipped_ref: str, patches: dict[str, bytes], dv: DebVersion, when: int
) -> None:
    """Tag the upstream release-branch tree hidden in Debian's patched glibc tarball.

    Debian's ``glibc-source`` ships the tarball with its whole quilt series
    already applied, ``git-updates.diff`` (upstream's release branch) first.
    Reverting every other patch, newest first, leaves upstream 2.36 plus the
    release-branch update. quilt cannot create empty files, so the empty files
    ``git-updates.diff`` adds are added back here; a binary test file it
    changes cannot be restored from a text diff and stays as shipped.
    """
    stamp = f"{when} +0000"
    env = gitops.bot_identity(("AUTHOR", "COMMITTER"), name=IMPORT_NAME, keep_environment=False) \
        | {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    entries = _series_entries(patches.get("series", b""))
    if not entries or entries[0][0] != UPDATES_NAME:
        raise InfraError(
            f"{dv.package} {dv.version}: debian/patches/series does not start with "
            f"{UPDATES_NAME}; cannot separate upstream from Debian's changes"
        )
    with tempfile.TemporaryDirectory(prefix="patchbot-import-") as tmp:
        env_idx = {**env, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        gitops.git(mirror, "read-tree", shipped_ref, extra_env=env_idx)
        reverted = [(name, strip) for name, strip in entries[1:] if name not in KEEP_APPLIED]
        for name, strip in reversed(reverted):
            if name not in patches:
                raise InfraError(f"{dv.package} {dv.version}: series names missing patch {name}")
            path = Path(tmp) / "p.diff"
            path.write_bytes(patches[name])
            res = gitops.git(mirror, "apply", "--cached", "-R", strip, str(path),
                             extra_env=env_idx, check=False)
            if not res.ok:
                raise InfraError(
                    f"{dv.package} {dv.version}: Debian patch {name} does not revert cleanly:\n"
                    + res.stderr[-2000:]
                )
        empty = _empty_new_files(patches[UPDATES_NAME])
        if empty:
            gitops.git(mirror, "hash-object", "-w", "--stdin", input=b"")
            info = "".join(f"100644 {EMPTY_BLOB}\t{p}\n" for p in empty)
            gitops.git(mirror, "update-index", "--add", "--index-info", input=info,
                       extra_env=env_idx)
        tree = gitops.git(mirror, "write-tree", extra_env=env_idx).stdout.strip()
    first = patches[UPDATES_NAME].split(b"\n", 1)[0].decode("utf-8", "replace")
    msg = (
        f"Revert Debian's own patches of {dv.package} {dv.version}\n\n"
        f"Leaves upstream glibc plus {UPDATES_DIFF}:\n{first}\n"
        f"Reverted {len(reverted)} Debian patches; kept {', '.join(sorted(KEEP_APPLIED))}.\n"
    )
    commit = gitops.git(mirror, "commit-tree", tree, "-p", shipped_ref, "-m", msg,
                        extra_env=env).stdout.strip()
    gitops.git(mirror, "tag", "-f", "-a", dv.tag, commit, "-m",
               tag_message(dv, f"Upstream tree plus {UPDATES_DIFF} (Debian's own patches "
                               "reverted).\n\n"), extra_env=env)


def _empty_new_files(diff: bytes) -> list[str]:
    """Paths a git diff creates as empty files (quilt skips those)."""
    out: list[str] = []
    lines = diff.decode("utf-8", "replace").splitlines()
    for i, line in enumerate(lines[:-2]):
        if (line.startswith("diff --git a/") and lines[i + 1].startswith("new file mode")
                and lines[i + 2].startswith("index 0000000000..e69de29")):
            out.append(line.split(" b/", 1)[1])
    return out
