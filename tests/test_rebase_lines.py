"""Two lines on a small synthetic upstream: line selection, a new line from an older
one, and a resumable rebase (--continue/--abort/--status) through real conflicts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.gitrepo import git
from tests.helpers.rebase_world import upstream_and_clone
from tests.helpers.smallrepo import commit_files, edit, numbered
from ukl_patchbot import cli
from ukl_patchbot.core import config
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.rebase import engine, resume
from ukl_patchbot.rebase import state as st
from ukl_patchbot.rebase.report import PatchStatus
from ukl_patchbot.upstream import gitops

# The line-1 series, made on v1.0. On v2.0 patches 2 and 4 conflict (upstream rewrote
# the lines they change), patch 1 moves (offset) and patch 3 applies as is.
SERIES = [
    ("b: change line 10", {"b.c": edit(numbered("b"), "b line 10\n", "b ten\n")}),
    ("a: mine at 20", {"a.c": edit(numbered("a"), "a line 20\n", "mine 20\n")}),
    ("c: change line 5", {"c.c": edit(numbered("c"), "c line 5\n", "c five\n")}),
    ("a: mine at 30", {"a.c": edit(edit(numbered("a"), "a line 20\n", "mine 20\n"),
                                   "a line 30\n", "mine 30\n")}),
]
V2 = {
    "a.c": edit(edit(numbered("a"), "a line 20\n", "theirs 20\n"), "a line 30\n", "theirs 30\n"),
    "b.c": "".join(f"top {i}\n" for i in range(3)) + numbered("b"),
}


@dataclass
class World:
    cfg: Config
    checkout: Path

    def series(self, line: str) -> Path:
        return self.checkout / "patchsets" / "linux" / line


@pytest.fixture
def world(tmp_path: Path) -> World:
    up, dev = upstream_and_clone(tmp_path)
    for subject, change in SERIES:
        commit_files(dev, change, f"{subject}\n\nWhy.\n\nSigned-off-by: Dev <d@example.org>")
    commit_files(up, {"d.c": edit(numbered("d"), "d line 1\n", "d one\n")}, "1.1", "v1.1")
    git(up, "checkout", "-q", "v1.0")
    commit_files(up, V2, "the 2 line", "v2.0")
    co = tmp_path / "checkout"
    sdir = co / "patchsets" / "linux" / "1"
    sdir.mkdir(parents=True)
    names = git(dev, "format-patch", "-o", str(sdir), "v1.0..HEAD").splitlines()
    (sdir / "series").write_text("".join(Path(n).name + "\n" for n in names))
    (sdir / "patchset.toml").write_text('base = "v1.0"\n')
    (co / "patchbot.toml").write_text(
        f'[paths]\ncache_dir = "{tmp_path / "cache"}"\n'
        f'[components.linux]\nupstream = "file://{up}"\ntag_prefix = "v"\n'
        '[components.linux.lines."1"]\nseries = "patchsets/linux/1"\n'
        '[components.linux.lines."2"]\nseries = "patchsets/linux/2"\n'
        '[components.glibc]\ntracked = []\n')
    git(co, "init", "-q")
    git(co, "add", "-A")
    git(co, "commit", "-q", "-m", "series")
    cfg = config.load(co / "patchbot.toml")
    mirror = gitops.ensure_mirror(cfg.mirror_dir("linux"))
    git(mirror, "fetch", "-q", str(up), "refs/tags/*:refs/tags/*")
    return World(cfg, co)


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.is_dir() else {}


def test_a_tag_uses_its_lines_series(world: World) -> None:
    line2 = world.series("2")
    report = engine.rebase_series(world.cfg, "linux", "v1.1")
    assert report.ok and report.written
    assert 'base = "v1.1"' in (world.series("1") / "patchset.toml").read_text()
    assert not line2.exists()  # the other line is untouched
    assert not any("started from" in n for n in report.notes)


def test_new_line_starts_from_the_newest_older_line(world: World) -> None:
    before = snapshot(world.series("1"))
    report = engine.rebase_series(world.cfg, "linux", "v2.0", dry_run=True)
    assert any("started from line 1's series (base v1.0" in n for n in report.notes)
    assert report.old_base == "v1.0"
    statuses = [p.status for p in report.patches]
    assert statuses == [PatchStatus.OFFSET, PatchStatus.CONFLICT, PatchStatus.CLEAN,
                        PatchStatus.CONFLICT]
    # The conflicting hunk carries the upstream change that caused it.
    hunk = next(h for h in report.patches[1].hunks if h.file == "a.c")
    assert "+theirs 20" in hunk.upstream_diff
    assert snapshot(world.series("1")) == before and not world.series("2").exists()
    report = engine.rebase_series(world.cfg, "linux", "v2.0", dry_run=True, from_line="1")
    assert any("as asked (--from)" in n for n in report.notes)
    with pytest.raises(UserError, match="has no line '3'"):
        engine.rebase_series(world.cfg, "linux", "v2.0", dry_run=True, from_line="3")


def resolve(wt: Path, old: str, new: str) -> None:
    """What a maintainer does: edit the conflict away (--continue stages it)."""
    text = (wt / "a.c").read_text()
    start, end = text.index("<<<<<<<"), text.index(">>>>>>>")
    end = text.index("\n", end) + 1
    assert old in text[start:end]
    (wt / "a.c").write_text(text[:start] + new + text[end:])


def test_continue_through_two_conflicts_writes_the_new_line(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    line1 = snapshot(world.series("1"))
    report = engine.rebase_series(world.cfg, "linux", "v2.0", resumable=True)
    assert not report.ok and not report.written and report.worktree
    assert any("--continue" in c for c in report.continue_commands)
    wt = Path(report.worktree)
    assert "<<<<<<<" in (wt / "a.c").read_text()
    (pending,) = resume.rebase_status(world.cfg)
    assert pending.state == st.RebaseState.STOPPED and pending.current.endswith(
        "a-mine-at-20.patch")
    assert [d.status for d in pending.done] == [PatchStatus.OFFSET]
    # The CLI says the same.
    assert cli.main(["--config", str(world.checkout / "patchbot.toml"), "rebase",
                     "--status"]) == 0
    assert "stopped at 0002-a-mine-at-20.patch" in capsys.readouterr().out

    # Not resolved yet: refused, and nothing moves.
    with pytest.raises(UserError, match=r"conflict markers left in .*: a\.c"):
        resume.continue_rebase(world.cfg)
    # A fresh rebase of the same line is refused while this one is stopped.
    with pytest.raises(UserError, match="is stopped at 0002"):
        engine.rebase_series(world.cfg, "linux", "v2.0")

    resolve(wt, "theirs 20", "theirs 20 and mine\n")
    report = resume.continue_rebase(world.cfg)
    assert not report.ok  # patch 4 conflicts next
    assert [p.status for p in report.patches] == [
        PatchStatus.OFFSET, PatchStatus.CONTEXT_CHANGED, PatchStatus.CLEAN, PatchStatus.CONFLICT]
    (pending,) = resume.rebase_status(world.cfg)
    assert pending.current.endswith("a-mine-at-30.patch") and len(pending.done) == 3

    resolve(wt, "theirs 30", "theirs 30 and mine\n")
    assert cli.main(["--config", str(world.checkout / "patchbot.toml"), "rebase",
                     "--continue", "--json", str(world.checkout / "r.json")]) == 0
    data = json.loads((world.checkout / "r.json").read_text())
    assert data["written"] and data["new_base"] == "v2.0"
    # Written as a clean rebase writes: base, series order, mail headers, the fixes.
    line2 = world.series("2")
    assert 'base = "v2.0"' in (line2 / "patchset.toml").read_text()
    names = (line2 / "series").read_text().split()
    assert names == (world.series("1") / "series").read_text().split()
    p2 = (line2 / names[1]).read_text()
    original_head = line1[names[1]].decode().partition("\n\n")[0]
    assert p2.startswith(original_head + "\n\n") and "Subject: [PATCH 2/4] a: mine at 20" in p2
    assert "+theirs 20 and mine" in p2
    assert "+theirs 30 and mine" in (line2 / names[3]).read_text()
    assert (line2 / names[2]).read_bytes() == line1[names[2]]  # clean: same bytes
    assert snapshot(world.series("1")) == line1
    assert resume.rebase_status(world.cfg) == [] and not wt.exists()
    with pytest.raises(UserError, match="no rebase in progress"):
        resume.continue_rebase(world.cfg)


def test_abort_drops_worktree_and_state(world: World) -> None:
    report = engine.rebase_series(world.cfg, "linux", "v2.0", resumable=True)
    wt = Path(report.worktree or "")
    assert wt.is_dir()
    pending = resume.abort_rebase(world.cfg)
    assert pending.tag == "v2.0" and not wt.exists()
    assert resume.rebase_status(world.cfg) == [] and not world.series("2").exists()
    assert str(wt) not in git(world.cfg.mirror_dir("linux"), "worktree", "list")
    with pytest.raises(UserError, match="no rebase in progress"):
        resume.abort_rebase(world.cfg)
    # And a new rebase may start again.
    assert not engine.rebase_series(world.cfg, "linux", "v2.0", resumable=True).ok


def test_state_machine_refuses_wrong_moves(world: World) -> None:
    engine.rebase_series(world.cfg, "linux", "v2.0", resumable=True)
    (pending,) = resume.rebase_status(world.cfg)
    with pytest.raises(UserError, match="cannot go from stopped to stopped"):
        pending.to(st.RebaseState.STOPPED)
    # A killed --continue leaves APPLYING: only --abort helps then.
    st.save(world.cfg, pending.to(st.RebaseState.APPLYING))
    with pytest.raises(UserError, match="is applying, not stopped"):
        resume.continue_rebase(world.cfg)
    resume.abort_rebase(world.cfg)
    # A damaged state file is a UserError naming it.
    path = st.state_path(world.cfg, "linux", "2")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{")
    with pytest.raises(UserError, match=r"linux-2.json: unreadable rebase state"):
        resume.rebase_status(world.cfg)
