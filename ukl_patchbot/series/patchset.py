"""Patch series: ``patchsets/<component>/`` with ``series``, ``patchset.toml`` and the patches.

Layout::

    patchsets/linux/
      patchset.toml      base = "v6.1.170"   (the tag the series was last verified on)
      series             one patch file name per line, in order; '#' starts a comment
      0001-....patch     `git format-patch` output (From, Date, Subject, message, diff)

Loading validates everything before anything is applied: a missing file, a
malformed patch or a path that leaves the tree (``../``, absolute, ``.git/``)
is a `UserError` naming the file and line.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.core.paths import path_problem
from ukl_patchbot.series.meta import file_error as _err
from ukl_patchbot.series.meta import read_base

SERIES_NAME = "series"

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")


@dataclass(frozen=True)
class Hunk:
    """One hunk of a patch; ``lines`` keep their ' ', '-', '+' or '\\' prefix."""

    old_start: int
    old_len: int
    new_start: int
    new_len: int
    section: str
    lines: tuple[str, ...]
    line_no: int  # of the @@ line in the patch file

    @property
    def header(self) -> str:
        sec = f" {self.section}" if self.section else ""
        return f"@@ -{self.old_start},{self.old_len} +{self.new_start},{self.new_len} @@{sec}"

    @property
    def old_lines(self) -> list[str]:
        """What the hunk expects to find: context and removed lines."""
        return [ln[1:] for ln in self.lines if ln[:1] in (" ", "-")]

    @property
    def new_lines(self) -> list[str]:
        return [ln[1:] for ln in self.lines if ln[:1] in (" ", "+")]


@dataclass(frozen=True)
class FileDiff:
    old_path: str | None  # None for a new file
    new_path: str | None  # None for a deleted file
    hunks: tuple[Hunk, ...]
    binary: bool
    line_no: int
    new_mode: str | None = None  # from "new file mode" / "new mode"
    special: bool = False  # rename, copy or mode change: left to git to apply

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


@dataclass(frozen=True)
class Patch:
    name: str  # file name as listed in `series`
    path: Path
    subject: str
    author: str
    date: str
    files: tuple[FileDiff, ...]
    raw: bytes
    has_signoff: bool

    @property
    def paths(self) -> list[str]:
        out: list[str] = []
        for f in self.files:
            out += [p for p in (f.old_path, f.new_path) if p]
        return out


@dataclass(frozen=True)
class Series:
    component: str
    directory: Path
    base: str
    patches: tuple[Patch, ...]

    @property
    def paths(self) -> list[str]:
        """Every tree path the series touches (sorted, unique)."""
        return sorted({p for patch in self.patches for p in patch.paths})

    @property
    def digest(self) -> str:
        """Identifies the series content (order and bytes of the patches)."""
        h = hashlib.sha256()
        for p in self.patches:
            h.update(p.name.encode() + b"\0" + p.raw + b"\0")
        return h.hexdigest()[:12]


def check_tree_path(path: str, where: Path, line: int) -> str:
    """``path`` if it stays inside the tree; a UserError naming ``where:line`` otherwise."""
    problem = path_problem(path)
    if problem is not None:
        raise _err(where, line, f"path {path[:200]!r} {problem}")
    return path


def _strip_prefix(path: str, prefix: str, where: Path, line: int) -> str:
    path = path.split("\t", 1)[0]
    if path.startswith('"'):
        raise _err(where, line, f"quoted path {path} is not supported",
                   hint="rename the file to plain ASCII without special characters")
    if not path.startswith(prefix):
        raise _err(where, line, f"path {path!r} lacks the {prefix!r} prefix of git diffs")
    return check_tree_path(path[len(prefix):], where, line)


def parse_diff(text: str, where: Path, first_line: int = 1) -> tuple[FileDiff, ...]:
    """Parse the diff part of a patch; ``first_line`` is its line number in ``where``.

    Errors name ``where`` and the line, so a maintainer goes straight to it.
    """
    lines = _Lines(text.split("\n"), where, first_line)
    files: list[FileDiff] = []
    i = 0
    while i < len(lines.text):
        if lines.text[i].startswith("diff --git "):
            f, i = _parse_file(lines, i)
            files.append(f)
        else:
            i += 1
    return tuple(files)


@dataclass(frozen=True)
class _Lines:
    """The diff's lines and where they come from, for error messages."""

    text: list[str]
    where: Path
    first_line: int

    def no(self, i: int) -> int:
        return self.first_line + i


@dataclass
class _FileHeader:
    """What the extended header lines of one file say (built up line by line)."""

    old: str | None
    new: str | None
    binary: bool = False
    special: bool = False
    new_mode: str | None = None


def _parse_file(lines: _Lines, i: int) -> tuple[FileDiff, int]:
    """One file's diff starting at its ``diff --git`` line ``i``; returns it and the next index."""
    lno = lines.no(i)
    m = re.match(r"^diff --git (\S+) (\S+)$", lines.text[i])
    if not m:
        raise _err(lines.where, lno, "malformed 'diff --git' line (quoted or spaced paths?)")
    head = _FileHeader(_strip_prefix(m.group(1), "a/", lines.where, lno),
                       _strip_prefix(m.group(2), "b/", lines.where, lno))
    i += 1
    while i < len(lines.text) and not lines.text[i].startswith(("diff --git ", "@@ ")):
        if not _header_line(lines.text[i], head, lines.where, lines.no(i)):
            break  # format-patch signature after a header-only diff
        i += 1
    hunks: list[Hunk] = []
    while i < len(lines.text) and lines.text[i].startswith("@@ "):
        hunk, i = _parse_hunk(lines, i)
        hunks.append(hunk)
    # Mode-only changes and pure renames have no hunks; that is fine.
    return FileDiff(head.old, head.new, tuple(hunks), head.binary, lno, head.new_mode,
                    head.special), i


def _header_line(h: str, head: _FileHeader, where: Path, hl: int) -> bool:
    """Apply one extended header line to ``head``; False at the signature that ends the patch."""
    if h.startswith("--- "):
        head.old = None if h[4:].startswith("/dev/null") else _strip_prefix(h[4:], "a/", where, hl)
    elif h.startswith("+++ "):
        head.new = None if h[4:].startswith("/dev/null") else _strip_prefix(h[4:], "b/", where, hl)
    elif h.startswith(("rename from ", "copy from ")):
        head.old = check_tree_path(h.split(" ", 2)[2], where, hl)
        head.special = True
    elif h.startswith(("rename to ", "copy to ")):
        head.new = check_tree_path(h.split(" ", 2)[2], where, hl)
        head.special = True
    elif h.startswith(("old mode ", "new mode ")):
        head.special = True
    elif h.startswith("new file mode"):
        head.new_mode = h.split()[-1]
        head.old = None
    elif h.startswith("deleted file mode"):
        head.new = None
    elif h.startswith(("Binary files", "GIT binary patch")):
        head.binary = True
    elif h == "-- " or h.startswith("-- "):
        return False
    return True


def _parse_hunk(lines: _Lines, i: int) -> tuple[Hunk, int]:
    """The hunk whose ``@@`` line is ``i``; returns it and the index after it."""
    hl = lines.no(i)
    hm = _HUNK.match(lines.text[i])
    if not hm:
        raise _err(lines.where, hl, f"malformed hunk header {lines.text[i]!r}")
    os_, ol, ns, nl = (int(hm.group(1)), int(hm.group(2) or 1), int(hm.group(3)),
                       int(hm.group(4) or 1))
    body, i = _hunk_body(lines, i, ol, nl)
    while i < len(lines.text) and lines.text[i].startswith("\\"):
        body.append(lines.text[i])
        i += 1
    return Hunk(os_, ol, ns, nl, hm.group(5), tuple(body), hl), i


def _hunk_body(lines: _Lines, at: int, want_old: int, want_new: int) -> tuple[list[str], int]:
    """The body lines after the ``@@`` line ``at``, exactly as many as its header counts."""
    hl = lines.no(at)
    body: list[str] = []
    i = at + 1
    while want_old > 0 or want_new > 0:
        if i >= len(lines.text):
            raise _err(lines.where, hl, f"hunk {lines.text[at]!r} is cut short "
                       f"(file ends before {want_old} old/{want_new} new lines)")
        b = lines.text[i]
        tag = b[:1]
        if tag == " " or b == "":
            want_old -= 1
            want_new -= 1
            b = b or " "
        elif tag == "-":
            want_old -= 1
        elif tag == "+":
            want_new -= 1
        elif tag != "\\":
            raise _err(lines.where, lines.no(i),
                       f"unexpected line in hunk (expected ' ', '-' or '+'): {b[:60]!r}")
        if want_old < 0 or want_new < 0:
            raise _err(lines.where, hl, "hunk has more lines than its header says")
        body.append(b)
        i += 1
    return body, i


def _decode_header(value: str) -> str:
    # Unfold (RFC 5322: drop the line break, keep the whitespace), then decode RFC 2047 words.
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    return str(email.header.make_header(email.header.decode_header(value)))


def parse_patch(path: Path, name: str) -> Patch:
    """Read and validate one `git format-patch` file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _err(path, None, "file does not exist") from None
    text = raw.decode("utf-8", "surrogateescape")
    head, sep, body = text.partition("\n\n")
    if not sep:
        raise _err(path, 1, "no blank line after the mail headers: not a git format-patch file")
    header_text = head
    if header_text.startswith("From ") and not header_text.startswith("From: "):
        header_text = header_text.split("\n", 1)[1] if "\n" in header_text else ""
    msg = email.parser.Parser(policy=email.policy.compat32).parsestr(header_text + "\n\n",
                                                                     headersonly=True)
    for key in ("From", "Subject", "Date"):
        if not msg.get(key):
            raise _err(path, 1, f"missing {key}: header",
                       hint="patches must be `git format-patch` output")
    body_line = head.count("\n") + 3
    diff_at = body.find("\ndiff --git ")
    if body.startswith("diff --git "):
        diff_at = 0
    elif diff_at >= 0:
        diff_at += 1
    else:
        raise _err(path, None, "contains no 'diff --git' section")
    message = body[:diff_at]
    diff_line = body_line + message.count("\n")
    files = parse_diff(body[diff_at:], path, diff_line)
    return Patch(
        name=name,
        path=path,
        subject=_decode_header(msg["Subject"]),
        author=_decode_header(msg["From"]),
        date=msg["Date"],
        files=files,
        raw=raw,
        has_signoff="Signed-off-by:" in message,
    )


def load_series(directory: Path, component: str) -> Series:
    """Load and validate ``directory`` (patchsets/<component>)."""
    series_path = directory / SERIES_NAME
    if not series_path.is_file():
        raise _err(series_path, None, "missing", hint="list the patch files in order, one a line")
    base = read_base(directory)
    patches: list[Patch] = []
    seen: set[str] = set()
    for lno, line in enumerate(series_path.read_text().splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if len(entry.split()) > 1:
            raise _err(series_path, lno, f"expected one file name, got {entry!r}",
                       hint="patch options (-p1 ...) are not supported: patches are git format")
        check_tree_path(entry, series_path, lno)
        if "/" in entry:
            raise _err(series_path, lno, f"{entry!r}: patches live directly in {directory}")
        if entry in seen:
            raise _err(series_path, lno, f"{entry!r} listed twice")
        seen.add(entry)
        p = directory / entry
        if not p.is_file():
            raise _err(series_path, lno, f"names missing file {entry}")
        patches.append(parse_patch(p, entry))
    if not patches:
        raise _err(series_path, None, "lists no patches")
    return Series(component, directory, base, tuple(patches))
