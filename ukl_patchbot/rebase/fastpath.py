"""The fast path of a rebase: apply patches whose hunks all match exactly, in memory.

A patch whose every hunk's context is found verbatim (at its line or moved)
applies the same way under any tool: the old lines are replaced by the new
ones. Doing that here, on the handful of files a series touches, and writing
the commits with one ``git fast-import`` avoids what dominates ``git am`` on
a Linux tree: reading and writing an 80,000-entry index for every patch.
Everything else (context changed, 3-way merges, conflicts, renames, mode
changes, binary patches) goes to ``git am`` in a throwaway worktree.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ukl_patchbot.core.runner import run
from ukl_patchbot.series.patchset import FileDiff, Hunk, Patch
from ukl_patchbot.upstream import gitops

Lines = list[bytes]


def split_lines(data: bytes) -> Lines:
    """Lines with their '\\n' (the last one may lack it); only '\\n' ends a line."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def hunk_sides(h: Hunk) -> tuple[Lines, Lines]:
    """The hunk's old and new lines as bytes with line endings ('\\ No newline' honoured)."""
    old: Lines = []
    new: Lines = []
    body = h.lines
    for i, line in enumerate(body):
        tag = line[:1]
        if tag == "\\":
            continue
        eol = b"" if i + 1 < len(body) and body[i + 1].startswith("\\") else b"\n"
        text = line[1:].encode("utf-8", "surrogateescape") + eol
        if tag in (" ", "-"):
            old.append(text)
        if tag in (" ", "+"):
            new.append(text)
    return old, new


def locate(lines: list[bytes] | list[str], want: list[bytes] | list[str], start: int) -> int | None:
    """1-based line where ``want`` occurs in ``lines``, nearest to ``start``; None if nowhere."""
    n = len(want)
    if n == 0:
        return start
    last = len(lines) - n + 1
    for d in range(max(start, last - start) + 1):
        for pos in ((start,) if d == 0 else (start + d, start - d)):
            if 1 <= pos <= last and lines[pos - 1] == want[0] and lines[pos - 1:pos - 1 + n] == want:
                return pos
    return None


def positions(f: FileDiff, content: bytes | None) -> list[int | None]:
    """Where each hunk of ``f`` matches in ``content`` (None: not found)."""
    if f.old_path is None:
        return [h.new_start if content is None else None for h in f.hunks]
    if content is None:
        return [None] * len(f.hunks)
    lines = split_lines(content)
    return [locate(lines, hunk_sides(h)[0], h.old_start) for h in f.hunks]


def apply_file(f: FileDiff, content: bytes | None, pos: list[int | None]) -> bytes | None:
    """``content`` with ``f`` applied at ``pos``; raises ValueError when git must decide."""
    if f.binary or f.special or any(p is None for p in pos):
        raise ValueError("needs git")
    if f.old_path is None:
        return b"".join(line for h in f.hunks for line in hunk_sides(h)[1])
    assert content is not None
    lines = split_lines(content)
    spans = []
    for h, p in zip(f.hunks, pos, strict=False):
        assert p is not None
        old, new = hunk_sides(h)
        moved = p != h.old_start
        # git anchors a hunk without leading or trailing context to the start or
        # end of the file; do not second-guess it there.
        if not old or (moved and (h.old_start == 1 or h.lines[-1][:1] != " ")):
            raise ValueError("needs git")
        spans.append((p - 1, p - 1 + len(old), new))
    for (_a0, a1, _), (b0, _, _) in itertools.pairwise(spans):
        if b0 < a1:
            raise ValueError("overlapping hunks")
    for start, end, new in reversed(spans):
        lines[start:end] = new
    if f.new_path is None:
        if lines:
            raise ValueError("deletion leaves content")
        return None
    return b"".join(lines)


def read_files(mirror: Path, commit: str, paths: list[str]) -> dict[str, tuple[str, bytes] | None]:
    """(mode, content) of ``paths`` in ``commit`` (None if absent), with two git calls."""
    out: dict[str, tuple[str, bytes] | None] = {p: None for p in paths}
    if not paths:
        return out
    listing = gitops.git(mirror, "ls-tree", "-z", commit, "--", *paths).stdout
    modes: dict[str, tuple[str, str]] = {}
    for rec in listing.split("\0"):
        if rec:
            meta, path = rec.split("\t", 1)
            mode, kind, sha = meta.split()
            if kind == "blob":
                modes[path] = (mode, sha)
    if not modes:
        return out
    with tempfile.TemporaryFile() as tmp:
        run(["git", "-C", str(mirror), "cat-file", "--batch"], stdout_file=tmp,
            input="".join(f"{sha}\n" for _, sha in modes.values()), check=True, timeout=300)
        tmp.seek(0)
        data = tmp.read()
    at = 0
    for path, (mode, _sha) in modes.items():
        nl = data.index(b"\n", at)
        size = int(data[at:nl].split()[2])
        out[path] = (mode, data[nl + 1:nl + 1 + size])
        at = nl + 1 + size + 1
    return out


State = dict[str, "tuple[str, bytes] | None"]


@dataclass
class FastPatch:
    """One patch handled in memory.

    ``outcome``: "exact" (all hunks found), "merged" (3-way merge of the files
    it touches), "already" (its change is already there), "conflict".
    """

    patch: Patch
    positions: list[list[int | None]]
    files: dict[str, tuple[str, bytes] | None]  # path -> (mode, content) or deleted
    outcome: str = "exact"
    conflict_files: tuple[str, ...] = ()
    pre: dict[str, bytes | None] | None = None  # touched files before it (non-exact outcomes)


def _apply_exact(state: State, patch: Patch) -> tuple[list[list[int | None]], State]:
    """Positions and changed files if ``patch`` applies exactly to ``state``; else ValueError."""
    pos_all: list[list[int | None]] = []
    changes: State = {}
    for f in patch.files:
        cur = state.get(f.old_path) if f.old_path else None
        if f.old_path is None and state.get(f.path) is not None:
            raise ValueError("new file exists")
        pos = positions(f, cur[1] if cur else None)
        pos_all.append(pos)
        result = apply_file(f, cur[1] if cur else None, pos)
        changes[f.path] = None if result is None else (f.new_mode or (cur[0] if cur else "100644"),
                                                       result)
        if f.old_path and f.new_path is None:
            changes[f.old_path] = None
    if not changes or all(state.get(p) == c for p, c in changes.items()):
        raise ValueError("no change")
    return pos_all, changes


def _positions_of(state: State, patch: Patch) -> list[list[int | None]]:
    return [positions(f, (state.get(f.old_path) or ("", b""))[1] if f.old_path else
                      (state.get(f.path) or (None, None))[1]) for f in patch.files]


def _reverse_applies(state: State, patch: Patch) -> bool:
    """Every hunk's result is already in ``state`` where the hunk would go."""
    for f in patch.files:
        cur = state.get(f.path)
        if cur is None or not f.hunks:
            return False
        lines = split_lines(cur[1])
        for h in f.hunks:
            new = hunk_sides(h)[1]
            if not new or locate(lines, new, h.new_start) is None:
                return False
    return True


def _merge3(ours: bytes, base: bytes, theirs: bytes) -> tuple[bytes, bool]:
    """``git merge-file`` of one file; (result, clean)."""
    with tempfile.TemporaryDirectory(prefix="patchbot-merge-") as tmp:
        paths = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            (Path(tmp) / name).write_bytes(data)
            paths.append(str(Path(tmp) / name))
        with tempfile.TemporaryFile() as out:
            res = run(["git", "merge-file", "-p", "-L", "new tag", "-L", "old base", "-L",
                       "patch", *paths], stdout_file=out, timeout=60)
            out.seek(0)
            merged = out.read()
    if res.returncode < 0 or res.returncode > 127:
        raise ValueError("git merge-file failed")
    return merged, res.returncode == 0


def simulate(new_state: State, old_state: State | None, patches: tuple[Patch, ...]
             ) -> list[FastPatch]:
    """Carry ``patches`` onto ``new_state`` in memory, as far as that is sure to match git.

    ``old_state`` (the files at the old base, where the series applies
    exactly) supplies the merge base for patches whose context changed, as
    ``git am -3`` would. Stops at the first patch that needs git itself
    (renames, mode changes, binary, no old base).
    """
    state = dict(new_state)
    old = dict(old_state) if old_state is not None else None
    out: list[FastPatch] = []
    for patch in patches:
        old_pre = dict(old) if old is not None else None
        old = _advance_old(old, patch)
        fp = _carry(state, old_pre, old, patch)
        if fp is None:
            break
        state.update(fp.files)  # empty unless the patch changed the files (exact, merged)
        out.append(fp)
    return out


def _advance_old(old: State | None, patch: Patch) -> State | None:
    """The old-base state after ``patch``; None once the series stops applying exactly there."""
    if old is None:
        return None
    try:
        old.update(_apply_exact(old, patch)[1])
    except ValueError:
        return None  # the series does not apply exactly to its base any more
    return old


def _carry(state: State, old_pre: State | None, old: State | None, patch: Patch
           ) -> FastPatch | None:
    """``patch`` carried onto ``state`` in memory, or None when only git can tell."""
    try:
        pos, changes = _apply_exact(state, patch)
        return FastPatch(patch, pos, changes)
    except ValueError:
        pass
    if any(f.binary or f.special for f in patch.files):
        return None
    pos = _positions_of(state, patch)
    pre = {p: (v[1] if (v := state.get(p)) else None) for p in patch.paths}
    if _reverse_applies(state, patch):
        return FastPatch(patch, pos, {}, "already", pre=pre)
    if old_pre is None or old is None:
        return None
    merged, conflicts = _three_way(state, old_pre, old, patch)
    if conflicts:
        return FastPatch(patch, pos, {}, "conflict", tuple(conflicts), pre)
    if all(state.get(p) == c for p, c in merged.items()):
        return FastPatch(patch, pos, {}, "already", pre=pre)
    return FastPatch(patch, pos, merged, "merged", pre=pre)


def _three_way(state: State, old_pre: State, old: State, patch: Patch) -> tuple[State, list[str]]:
    """Merge what ``patch`` did at the old base (``old_pre`` -> ``old``) into ``state``."""
    merged: State = {}
    conflicts = []
    for path in dict.fromkeys(p for f in patch.files for p in (f.old_path, f.new_path) if p):
        ours, base, theirs = state.get(path), old_pre.get(path), old.get(path)
        if theirs == base:
            continue
        if ours in (base, theirs):
            merged[path] = theirs
        elif ours is None or base is None or theirs is None:
            conflicts.append(path)  # added or deleted on one side, changed on the other
        else:
            data, clean = _merge3(ours[1], base[1], theirs[1])
            if clean:
                merged[path] = (theirs[0] if ours[0] == base[0] else ours[0], data)
            else:
                conflicts.append(path)
    return merged, conflicts


def commit_message(patch: Patch) -> tuple[str, str, str, str]:
    """(author name, email, RFC 2822 date, message) as ``git am`` would record them."""
    with tempfile.TemporaryDirectory(prefix="patchbot-mailinfo-") as tmp:
        msg, diff = Path(tmp) / "msg", Path(tmp) / "patch"
        info = run(["git", "mailinfo", str(msg), str(diff)], input=patch.raw, capture=True,
                   check=True, timeout=60).stdout
        body = msg.read_text(errors="surrogateescape")
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    text = fields.get("Subject", "").strip() + "\n\n" + body
    # git am cleans the message like `git stripspace`.
    lines = [ln.rstrip() for ln in text.split("\n")]
    cleaned: list[str] = []
    for ln in lines:
        if ln or (cleaned and cleaned[-1]):
            cleaned.append(ln)
    message = "\n".join(cleaned).strip("\n") + "\n"
    return fields.get("Author", ""), fields.get("Email", ""), fields.get("Date", ""), message


def write_commits(mirror: Path, chains: list[tuple[str, list[FastPatch]]],
                  committer: tuple[str, str]) -> list[list[str]]:
    """One fast-import run writing each (parent, patches) chain; the commit shas per chain."""
    if not any(chain for _, chain in chains):
        return [[] for _ in chains]
    marks_file = Path(tempfile.mkstemp(prefix="patchbot-marks-")[1])
    meta = {id(fp): commit_message(fp.patch) for _, chain in chains for fp in chain}
    mark = 0
    marks: list[list[int]] = []
    scratch = f"refs/patchbot/scratch/{uuid.uuid4().hex}".encode()

    def feed(wf: IO[bytes]) -> None:
        nonlocal mark
        for parent, chain in chains:
            ids = []
            prev = parent
            for fp in chain:
                name, email, date, msg = meta[id(fp)]
                mark += 1
                body = msg.encode("utf-8", "surrogateescape")
                wf.write(b"commit %s\nmark :%d\n" % (scratch, mark))
                wf.write(f"author {name} <{email}> {date}\n".encode())
                wf.write(f"committer {committer[0]} <{committer[1]}> {date}\n".encode())
                wf.write(b"data %d\n%s\nfrom %s\n" % (len(body), body, prev.encode()))
                for path, val in fp.files.items():
                    if val is None:
                        wf.write(b"D %s\n" % path.encode("utf-8", "surrogateescape"))
                    else:
                        wf.write(b"M %s inline %s\ndata %d\n" % (
                            val[0].encode(), path.encode("utf-8", "surrogateescape"), len(val[1])))
                        wf.write(val[1] + b"\n")
                wf.write(b"\n")
                ids.append(mark)
                prev = f":{mark}"
            marks.append(ids)
        # Leave no scratch ref behind.
        wf.write(b"reset %s\nfrom %s\n\n" % (scratch, b"0" * 40))

    try:
        gitops.fast_import(mirror, feed, log_path=None, timeout=300,
                           extra_args=["--date-format=rfc2822", f"--export-marks={marks_file}"])
        table = dict(line.split() for line in marks_file.read_text().splitlines())
    finally:
        marks_file.unlink(missing_ok=True)
    return [[table[f":{m}"] for m in ids] for ids in marks]

