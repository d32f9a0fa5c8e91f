"""`rebase_series` on small real repositories: every per-patch result, bad input, interruption."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.gitrepo import git
from tests.helpers.rebase_world import build_world
from tests.helpers.smallrepo import edit, numbered
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.rebase import engine as rebase
from ukl_patchbot.rebase.report import HunkStatus, PatchStatus, render_json, render_markdown
from ukl_patchbot.upstream import gitops


def a_offset() -> dict[str, str]:
    # Five new lines at the top of a.c move everything below.
    return {"a.c": "".join(f"new {i}\n" for i in range(5)) + numbered("a")}


def test_clean_offset_and_new_file_rewrite_series(tmp_path: Path) -> None:
    w = build_world(
        tmp_path,
        [("a: change line 20", {"a.c": edit(numbered("a"), "a line 20\n", "a line twenty\n")}),
         ("c: change line 5", {"c.c": edit(numbered("c"), "c line 5\n", "c line five\n")}),
         ("e: new file", {"e.c": "brand new\n"})],
        a_offset(),
    )
    before = {p.name: p.read_bytes() for p in w.series_dir.iterdir()}
    report = w.rebase("v1.1")
    assert report.ok
    assert [p.status for p in report.patches] == [
        PatchStatus.OFFSET, PatchStatus.CLEAN, PatchStatus.CLEAN]
    hunk = report.patches[0].hunks[0]
    assert (hunk.status, hunk.offset, hunk.new_start) == (HunkStatus.OFFSET, 5, hunk.old_start + 5)
    assert report.patches[2].hunks[0].status == HunkStatus.NEW_FILE
    # The clean patches keep their bytes; the moved one gets new line numbers, same headers.
    after = {p.name: p.read_bytes() for p in w.series_dir.iterdir()}
    names = sorted(n for n in before if n.endswith(".patch"))
    assert after[names[1]] == before[names[1]] and after[names[2]] == before[names[2]]
    assert after[names[0]] != before[names[0]]
    old_head, new_head = before[names[0]].split(b"\n\n")[0], after[names[0]].split(b"\n\n")[0]
    assert old_head == new_head  # From line, author, date, subject untouched
    assert b"@@ -22,7 +22,7 @@" in after[names[0]] and b"@@ -17,7 +17,7 @@" in before[names[0]]
    assert 'base = "v1.1"' in (w.series_dir / "patchset.toml").read_text()
    assert "# verified base" in (w.series_dir / "patchset.toml").read_text()
    assert report.changed_files == (names[0],)
    # range-diff pairs all three patches; the applied ref holds the rebased tree.
    assert report.range_diff.count("=") >= 2 or "!" in report.range_diff
    mirror = w.cfg.mirror_dir("linux")
    assert report.applied_ref and gitops.rev_parse(mirror, report.applied_ref)
    assert "a line twenty" in gitops.out(mirror, "show", f"{report.applied_ref}:a.c")
    assert gitops.out(mirror, "show", f"{report.applied_ref}:e.c") == "brand new"
    # No worktree left behind, no scratch refs; the in-memory result equals git am's.
    wts = w.cfg.work_dir / "worktrees"
    assert not wts.exists() or not any(p.is_dir() for p in wts.iterdir())
    assert "scratch" not in git(mirror, "for-each-ref")
    am = tmp_path / "am"
    git(tmp_path, "clone", "-q", str(w.upstream), str(am))
    git(am, "checkout", "-q", "v1.1")
    git(am, "am", "-q", *sorted(str(p) for p in w.series_dir.glob("*.patch")))
    assert git(am, "rev-parse", "HEAD^{tree}") == gitops.out(mirror, "rev-parse",
                                                             f"{report.applied_ref}^{{tree}}")
    log = gitops.out(mirror, "log", "--format=%an <%ae> %ad%n%B", "-1", report.applied_ref)
    assert log == git(am, "log", "--format=%an <%ae> %ad%n%B", "-1")


def test_context_changed_uses_three_way(tmp_path: Path) -> None:
    patched = edit(numbered("b"), "b line 10\n", "b line ten\n")
    w = build_world(tmp_path, [("b: change line 10", {"b.c": patched})],
                    {"b.c": edit(numbered("b"), "b line 8\n", "b line EIGHT\n")})
    report = w.rebase("v1.1")
    assert report.ok
    (p,) = report.patches
    assert p.status == PatchStatus.CONTEXT_CHANGED
    (h,) = p.hunks
    assert h.status == HunkStatus.CHANGED
    assert "b line 8" in h.expected and "b line EIGHT" in h.actual
    assert "+b line EIGHT" in h.upstream_diff
    text = (w.series_dir / next(n for n in os.listdir(w.series_dir) if n.endswith(".patch")))
    assert "b line EIGHT" in text.read_text()  # context refreshed


def test_conflict_reports_hunk_and_writes_nothing(tmp_path: Path) -> None:
    w = build_world(
        tmp_path,
        [("a: change line 20", {"a.c": edit(numbered("a"), "a line 20\n", "a line twenty\n")}),
         ("d: change line 30", {"d.c": edit(numbered("d"), "d line 30\n", "d line thirty\n")})],
        {"a.c": edit(numbered("a"), "a line 20\n", "a line 20 upstream\n")},
    )
    before = {p.name: p.read_bytes() for p in w.series_dir.iterdir()}
    report = w.rebase("v1.1")
    assert not report.ok and report.applied_ref is None and not report.written
    assert [p.status for p in report.patches] == [PatchStatus.CONFLICT, PatchStatus.CLEAN]
    bad = report.patches[0]
    assert bad.conflict_files == ("a.c",)
    (h,) = bad.hunks
    assert h.status == HunkStatus.CONFLICT and h.file == "a.c"
    assert "a line 20" in h.expected and "a line 20 upstream" in h.actual
    assert "+a line 20 upstream" in h.upstream_diff
    # The upstream repo has history, so git log -L names the commit.
    assert any("upstream change" in c for c in h.upstream_commits)
    assert {p.name: p.read_bytes() for p in w.series_dir.iterdir()} == before
    md = render_markdown(report)
    assert "conflict" in md and "a line 20 upstream" in md and "upstream change" in md
    data = json.loads(render_json(report))
    assert data["ok"] is False and data["patches"][0]["hunks"][0]["status"] == "conflict"


def test_already_upstream_is_dropped(tmp_path: Path) -> None:
    fix = edit(numbered("a"), "a line 3\n", "a line three\n")
    w = build_world(
        tmp_path,
        [("a: fix line 3", {"a.c": fix}),
         ("c: change line 5", {"c.c": edit(numbered("c"), "c line 5\n", "c line five\n")})],
        {"a.c": fix},
    )
    report = w.rebase("v1.1")
    assert report.ok
    assert [p.status for p in report.patches] == [PatchStatus.ALREADY_UPSTREAM, PatchStatus.CLEAN]
    series = (w.series_dir / "series").read_text()
    assert "fix-line-3" not in series and "change-line-5" in series
    assert not list(w.series_dir.glob("*fix-line-3*"))
    assert "# UKL series" in series


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    w = build_world(tmp_path, [("a: x", {"a.c": edit(numbered("a"), "a line 20\n", "X\n")})],
                    a_offset())
    before = {p.name: p.read_bytes() for p in w.series_dir.iterdir()}
    report = w.rebase("v1.1", dry_run=True)
    assert report.ok and not report.written and report.changed_files
    assert {p.name: p.read_bytes() for p in w.series_dir.iterdir()} == before


def test_unknown_tag_names_closest(tmp_path: Path) -> None:
    w = build_world(tmp_path, [("a: x", {"a.c": edit(numbered("a"), "a line 20\n", "X\n")})],
                    a_offset())
    with pytest.raises(UserError) as exc:
        w.rebase("v1.2")
    assert "v1.2" in str(exc.value) and "v1.1" in str(exc.value)


def test_dirty_series_refused_unless_force(tmp_path: Path) -> None:
    w = build_world(tmp_path, [("a: x", {"a.c": edit(numbered("a"), "a line 20\n", "X\n")})],
                    a_offset())
    (w.series_dir / "series").write_text((w.series_dir / "series").read_text() + "# local\n")
    with pytest.raises(UserError, match="uncommitted changes"):
        w.rebase("v1.1")
    assert "# local" in (w.series_dir / "series").read_text()
    report = w.rebase("v1.1", force=True)
    assert report.written and 'base = "v1.1"' in (w.series_dir / "patchset.toml").read_text()


def test_interrupted_run_leaves_series_and_cleans_up_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = build_world(
        tmp_path,
        [("a: x", {"a.c": edit(numbered("a"), "a line 20\n", "X\n")}),
         ("c: y", {"c.c": edit(numbered("c"), "c line 5\n", "Y\n")})],
        a_offset(),
    )
    before = {p.name: p.read_bytes() for p in w.series_dir.iterdir()}
    real = rebase._write_series

    def interrupted(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C just before the series is swapped in

    monkeypatch.setattr(rebase, "_write_series", interrupted)
    with pytest.raises(KeyboardInterrupt):
        w.rebase("v1.1")
    assert {p.name: p.read_bytes() for p in w.series_dir.iterdir()} == before
    # A killed run (no cleanup at all) leaves a worktree and a staging copy behind.
    mirror = w.cfg.mirror_dir("linux")
    stale = w.cfg.work_dir / "worktrees" / "rebase-linux-dead"
    git(mirror, "worktree", "add", "-q", "--detach", str(stale), "v1.0")
    stale.with_suffix(".lock").touch()
    staging = w.series_dir.with_name(".linux.staging-99999")
    staging.mkdir()
    monkeypatch.setattr(rebase, "_write_series", real)
    report = w.rebase("v1.1")
    assert report.written
    assert not stale.exists() and not staging.exists()
    assert str(stale) not in git(mirror, "worktree", "list")


def test_keep_worktree_on_conflict_is_ready_to_continue(tmp_path: Path) -> None:
    w = build_world(
        tmp_path,
        [("c: ok", {"c.c": edit(numbered("c"), "c line 5\n", "Y\n")}),
         ("a: clash", {"a.c": edit(numbered("a"), "a line 20\n", "mine\n")})],
        {"a.c": edit(numbered("a"), "a line 20\n", "theirs\n")},
    )
    report = w.rebase("v1.1", keep_worktree=True)
    assert not report.ok and report.worktree
    wt = Path(report.worktree)
    status = git(wt, "status")
    assert "am session" in status or "git am --continue" in status
    assert "<<<<<<<" in (wt / "a.c").read_text()
    assert any("git am --continue" in c for c in report.continue_commands)
    # The kept worktree survives the next run's stale-worktree pruning.
    w.rebase("v1.1", dry_run=True)
    assert wt.exists()


def test_worktree_is_sparse_and_outside_checkout(tmp_path: Path) -> None:
    w = build_world(tmp_path, [("a: x", {"a.c": edit(numbered("a"), "a line 20\n", "X\n")})],
                    a_offset())
    mirror = w.cfg.mirror_dir("linux")
    with gitops.temp_worktree(mirror, "v1.1", sparse_paths=["a.c"],
                              work_root=tmp_path / "wts") as wt:
        assert sorted(p.name for p in wt.iterdir() if p.name != ".git") == ["a.c"]
        assert not str(wt).startswith(str(w.checkout))
    assert not wt.exists()
    out = tmp_path / "export"
    gitops.export_tree(mirror, "v1.1", out)
    assert sorted(p.name for p in out.iterdir()) == ["a.c", "b.c", "c.c", "d.c"]
    assert (out / "a.c").read_text().startswith("new 0")


def test_cli_exit_codes(tmp_path: Path) -> None:
    w = build_world(tmp_path, [("a: clash", {"a.c": edit(numbered("a"), "a line 20\n", "m\n")})],
                    {"a.c": edit(numbered("a"), "a line 20\n", "t\n")})
    env = {**os.environ, "PATCHBOT_CACHE_DIR": str(w.cfg.cache_dir)}
    # The CLI reads patchbot.toml; point the linux series at the test series.
    (w.checkout / "patchbot.toml").write_text(
        '[components.linux]\nupstream = "file:///nowhere"\nseries = "patchsets/linux"\n'
    )
    git(w.checkout, "add", "-A")
    git(w.checkout, "commit", "-q", "-m", "cfg")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ukl_patchbot", *args], cwd=w.checkout, env=env,
                              text=True, capture_output=True, timeout=120, check=False)

    js = tmp_path / "r.json"
    res = cli("rebase", "v1.1", "--json", str(js))
    assert res.returncode == 2, res.stderr
    assert "conflict" in res.stdout and json.loads(js.read_text())["ok"] is False
    res = cli("rebase", "v9.9")
    assert res.returncode == 1 and "closest known tags" in res.stderr
    # The conflict left a resumable rebase: a new one waits for --continue or --abort.
    res = cli("rebase", "v1.0")
    assert res.returncode == 1 and "--abort" in res.stderr
    res = cli("rebase", "--status")
    assert res.returncode == 0 and "stopped at 0001-a-clash.patch" in res.stdout
    assert cli("rebase", "--abort").returncode == 0
    res = cli("rebase", "v1.0")
    assert res.returncode == 0, res.stdout + res.stderr


def test_three_way_in_memory_matches_git_am(tmp_path: Path) -> None:
    w = build_world(
        tmp_path,
        [("b: change line 10", {"b.c": edit(numbered("b"), "b line 10\n", "b line ten\n")}),
         ("b: and line 30", {"b.c": edit(edit(numbered("b"), "b line 10\n", "b line ten\n"),
                                         "b line 30\n", "b line thirty\n")})],
        {"b.c": edit(edit(numbered("b"), "b line 8\n", "b line EIGHT\n"), "b line 1\n", "B1\n")},
    )
    patches = sorted(str(p) for p in w.series_dir.glob("*.patch"))
    report = w.rebase("v1.1", dry_run=True)
    assert [p.status for p in report.patches] == [PatchStatus.CONTEXT_CHANGED, PatchStatus.CLEAN]
    am = tmp_path / "am"
    git(tmp_path, "clone", "-q", str(w.upstream), str(am))
    git(am, "checkout", "-q", "v1.1")
    git(am, "am", "-q", "-3", *patches)
    mirror = w.cfg.mirror_dir("linux")
    assert git(am, "rev-parse", "HEAD^{tree}") == gitops.out(
        mirror, "rev-parse", f"{report.applied_ref}^{{tree}}")


def test_rename_goes_through_git_am_worktree(tmp_path: Path) -> None:
    w = build_world(
        tmp_path,
        [("a: tweak", {"a.c": edit(numbered("a"), "a line 20\n", "X\n")})],
        a_offset(),
    )
    # A second patch renaming c.c (git format-patch -M): applied by git am in a worktree.
    dev = tmp_path / "dev"
    git(dev, "mv", "c.c", "c_renamed.c")
    git(dev, "commit", "-q", "-m", "c: rename\n\nSigned-off-by: Dev <d@example.org>")
    out = git(dev, "format-patch", "-M", "-1", "-o", str(w.series_dir), "--start-number=2")
    (w.series_dir / "series").write_text((w.series_dir / "series").read_text()
                                         + Path(out).name + "\n")
    git(w.checkout, "commit", "-q", "-am", "more", "--allow-empty")
    git(w.checkout, "add", "-A")
    git(w.checkout, "commit", "-q", "-m", "rename patch")
    report = w.rebase("v1.1")
    assert report.ok, report
    assert [p.status for p in report.patches] == [PatchStatus.OFFSET, PatchStatus.CLEAN]
    mirror = w.cfg.mirror_dir("linux")
    names = gitops.out(mirror, "ls-tree", "--name-only", report.applied_ref).split()
    assert "c_renamed.c" in names and "c.c" not in names
    assert not any(p.is_dir() for p in (w.cfg.work_dir / "worktrees").iterdir())


def test_cli_fetches_a_tag_missing_from_the_mirror(tmp_path: Path) -> None:
    w = build_world(tmp_path, [("a: x", {"a.c": edit(numbered("a"), "a line 20\n", "X\n")})],
                    a_offset())
    mirror = w.cfg.mirror_dir("linux")
    git(mirror, "tag", "-d", "v1.1")
    (w.checkout / "patchbot.toml").write_text(
        f'[components.linux]\nupstream = "file://{w.upstream}"\nseries = "patchsets/linux"\n'
        'tracked = ["1"]\n')
    git(w.checkout, "commit", "-q", "-am", "cfg")
    env = {**os.environ, "PATCHBOT_CACHE_DIR": str(w.cfg.cache_dir)}
    res = subprocess.run([sys.executable, "-m", "ukl_patchbot", "rebase", "v1.1", "--dry-run"],
                         cwd=w.checkout, env=env, text=True, capture_output=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert "fetching it" in res.stderr and "offset" in res.stdout
    assert "v1.1" in git(mirror, "tag", "-l")
