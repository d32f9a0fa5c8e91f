"""Loading patchsets/<component>/: every kind of bad input names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.gitrepo import git
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.series.patchset import check_tree_path, load_series


@pytest.fixture
def series_dir(tmp_path: Path) -> Path:
    """A real two-patch series made with git format-patch."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "f.c").write_text("".join(f"line {i}\n" for i in range(20)))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "f.c").write_text("".join(f"line {i}\n" for i in range(20)).replace("line 5", "five"))
    git(repo, "commit", "-q", "-am", "f: five\n\nSigned-off-by: A <a@example.org>")
    (repo / "dir").mkdir()
    (repo / "dir" / "new.c").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add new.c with a \u00e9 in the subject")
    d = tmp_path / "patchsets" / "linux"
    d.mkdir(parents=True)
    names = git(repo, "format-patch", "-o", str(d), "HEAD~2..HEAD").splitlines()
    (d / "series").write_text("# comment\n\n" + "".join(Path(n).name + "\n" for n in names))
    (d / "patchset.toml").write_text('base = "v6.1.170"\n')
    return d


def test_loads_valid_series(series_dir: Path) -> None:
    s = load_series(series_dir, "linux")
    assert s.base == "v6.1.170"
    assert [p.subject for p in s.patches] == [
        "[PATCH 1/2] f: five", "[PATCH 2/2] Add new.c with a \u00e9 in the subject"]
    assert s.patches[0].has_signoff and not s.patches[1].has_signoff
    (f,) = s.patches[0].files
    assert (f.old_path, f.new_path) == ("f.c", "f.c")
    (h,) = f.hunks
    assert h.old_start == 3 and "line 5" in h.old_lines and "five" in h.new_lines
    new = s.patches[1].files[0]
    assert new.old_path is None and new.new_path == "dir/new.c"
    assert s.paths == ["dir/new.c", "f.c"]
    assert len(s.digest) == 12


def _patch(d: Path, idx: int = 0) -> Path:
    return sorted(d.glob("*.patch"))[idx]


def test_series_naming_missing_file(series_dir: Path) -> None:
    (series_dir / "series").write_text((series_dir / "series").read_text() + "0009-gone.patch\n")
    with pytest.raises(UserError, match=r"series:5: names missing file 0009-gone.patch"):
        load_series(series_dir, "linux")


@pytest.mark.parametrize(
    ("entry", "msg"),
    [("../escape.patch", "escapes the tree"), ("/etc/passwd", "absolute path"),
     (".git/config", r"\.git/"), ("sub/x.patch", "live directly in")],
)
def test_series_entry_escaping(series_dir: Path, entry: str, msg: str) -> None:
    (series_dir / "series").write_text(f"{entry}\n")
    with pytest.raises(UserError, match=msg) as exc:
        load_series(series_dir, "linux")
    assert "series:1:" in str(exc.value)


@pytest.mark.parametrize(
    ("old", "new", "msg"),
    [("a/f.c", "a/../../etc/f.c", "escapes the tree"),
     ("b/f.c", "b/.git/hooks/pre-commit", r"reaches into \.git/"),
     ("a/f.c", "/f.c", "lacks the 'a/' prefix")],
)
def test_patch_paths_escaping(series_dir: Path, old: str, new: str, msg: str) -> None:
    p = _patch(series_dir)
    text = p.read_text()
    lines = text.split("\n")
    idx = next(i for i, ln in enumerate(lines) if ln.startswith("--- a/" if old == "a/f.c" else "+++ b/"))
    lines[idx] = lines[idx].replace(old, new, 1)
    p.write_text("\n".join(lines))
    with pytest.raises(UserError, match=msg) as exc:
        load_series(series_dir, "linux")
    assert f"{p}:{idx + 1}:" in str(exc.value)


def test_malformed_hunk_names_line(series_dir: Path) -> None:
    p = _patch(series_dir)
    lines = p.read_text().split("\n")
    idx = next(i for i, ln in enumerate(lines) if ln.startswith("@@ "))
    lines[idx] = "@@ -3,7 +3,9 @@"  # claims more new lines than the hunk has
    p.write_text("\n".join(lines))
    with pytest.raises(UserError) as exc:
        load_series(series_dir, "linux")
    assert f"{p}:" in str(exc.value)


def test_not_a_patch(series_dir: Path) -> None:
    p = _patch(series_dir)
    p.write_text("just some text\nwithout headers\n")
    with pytest.raises(UserError, match=r"not a git format-patch file|missing From"):
        load_series(series_dir, "linux")
    p.write_text("From: a <a@b>\nSubject: x\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nno diff\n")
    with pytest.raises(UserError, match="no 'diff --git' section"):
        load_series(series_dir, "linux")


def test_metadata_errors(series_dir: Path) -> None:
    (series_dir / "patchset.toml").write_text("base = \n")
    with pytest.raises(UserError, match=r"patchset\.toml.*invalid TOML"):
        load_series(series_dir, "linux")
    (series_dir / "patchset.toml").write_text("other = 1\n")
    with pytest.raises(UserError, match='needs base = "<tag>"'):
        load_series(series_dir, "linux")
    (series_dir / "patchset.toml").unlink()
    with pytest.raises(UserError, match=r"patchset\.toml: missing"):
        load_series(series_dir, "linux")


def test_check_tree_path() -> None:
    assert check_tree_path("arch/x86/kernel/vmlinux.lds.S", Path("p"), 1) == \
        "arch/x86/kernel/vmlinux.lds.S"
    for bad in ("../x", "a/../../x", "/abs", ".GIT/x", "a/.git"):
        with pytest.raises(UserError, match="p:7"):
            check_tree_path(bad, Path("p"), 7)


def test_folded_and_encoded_subject(series_dir: Path) -> None:
    p = _patch(series_dir)
    text = p.read_text()
    start = text.index("Subject: ")
    end = text.index("\n", start)
    p.write_text(text[:start] + "Subject: [PATCH 1/2] a subject folded\n over two lines =?UTF-8?q?=C3=A9?="
                 + text[end:])
    s = load_series(series_dir, "linux")
    assert s.patches[0].subject == "[PATCH 1/2] a subject folded over two lines \u00e9"
