"""The content-keyed cache: keys, atomic publication, recovery after a killed writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ukl_patchbot.core.cache import ContentCache, cache_key, hash_files, hash_tree

REPO = Path(__file__).resolve().parent.parent


def test_key_ignores_dict_order_and_changes_with_any_input() -> None:
    a = cache_key("kernel", {"tree": "abc", "variant": "ukl", "frags": "f1"})
    b = cache_key("kernel", {"frags": "f1", "variant": "ukl", "tree": "abc"})
    assert a == b and a.startswith("kernel-")
    assert cache_key("kernel", {"tree": "abd", "variant": "ukl", "frags": "f1"}) != a
    assert cache_key("glibc", {"tree": "abc", "variant": "ukl", "frags": "f1"}) != a


def test_hash_files_depends_on_content_and_name(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("CONFIG_X=y\n")
    (tmp_path / "b").write_text("CONFIG_X=y\n")
    h1 = hash_files({"base.config": tmp_path / "a"})
    assert h1 == hash_files({"base.config": tmp_path / "b"})
    assert h1 != hash_files({"ukl.config": tmp_path / "a"})
    (tmp_path / "b").write_text("CONFIG_X=n\n")
    assert h1 != hash_files({"base.config": tmp_path / "b"})


def test_hash_tree_sees_nested_changes(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f.c").write_text("int x;\n")
    before = hash_tree(tmp_path)
    (tmp_path / "d" / "e" / "f.c").write_text("int y;\n")
    assert hash_tree(tmp_path) != before


def test_put_publishes_only_on_success(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "c")
    with cache.put("k1") as stage:
        (stage / "bzImage").write_bytes(b"image")
        assert cache.get("k1") is None  # not visible while being written
    entry = cache.get("k1")
    assert entry is not None and (entry / "bzImage").read_bytes() == b"image"

    with pytest.raises(OSError), cache.put("k2") as stage:
        (stage / "half").write_bytes(b"x")
        raise OSError(28, "No space left on device")
    assert cache.get("k2") is None
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["k1"]  # staging removed


def test_second_writer_of_same_key_keeps_first(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    with cache.put("k") as s1:
        (s1 / "f").write_text("first")
        with cache.put("k") as s2:
            (s2 / "f").write_text("second")
    entry = cache.get("k")
    assert entry is not None and (entry / "f").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_store_files_copies(tmp_path: Path) -> None:
    src = tmp_path / "bzImage"
    src.write_bytes(b"\x7fELF")
    entry = ContentCache(tmp_path / "c").store_files("img", {"boot/bzImage": src})
    assert (entry / "boot" / "bzImage").read_bytes() == b"\x7fELF"


def test_killed_writer_leaves_no_entry_and_is_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "c"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from ukl_patchbot.core.cache import ContentCache
        with ContentCache(Path({str(root)!r})).put("kernel-x") as stage:
            (stage / "bzImage").write_bytes(b"partial")
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    cache = ContentCache(root)
    assert cache.get("kernel-x") is None
    leftovers = [p for p in root.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".staging-")
    removed = cache.clean_stale()
    assert removed == leftovers and list(root.iterdir()) == []


def test_clean_stale_keeps_live_writers_but_not_ancient_ones(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    ancient = tmp_path / f".staging-old.{os.getpid()}.1"
    ancient.mkdir()
    old = time.time() - 10 * 24 * 3600
    os.utime(ancient, (old, old))
    with cache.put("k") as stage:
        assert cache.clean_stale() == [ancient]
        assert stage.is_dir()
    assert cache.get("k") is not None
