"""A kept build directory and a warm ccache never give a stale kernel (real Linux tree).

Slow: a 64-bit tinyconfig kernel of two real 6.1 tags (the test mirror's base and new
tags, derived from what apt offers): a clean build of A (fresh directory,
empty ccache), then B in the same directory with the source updated in place,
then A again. The last build recompiles what B changed and takes the rest from
make's own tracking and ccache; its vmlinux must be the clean build's, byte for
byte. A round trip needs one full compile less than a clean build of B as the
reference and proves the same thing: the rebuilt kernel for a tag after another
is the clean build of that tag. About two cold classic builds in all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers import realtrees
from ukl_patchbot.check import kbuild, variants, workspace
from ukl_patchbot.upstream import gitops

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_rebuild_after_another_tag_is_byte_identical_to_the_clean_build(
        linux_mirror: Path, tmp_path: Path) -> None:
    a, b = realtrees.linux_base_tag(), realtrees.linux_new_tag()
    assert a != b, "the test mirror needs two different tags"
    root = tmp_path / "check"
    cc = tmp_path / "ccache"
    ws = variants.Workspace(root, root / "src" / "linux", cc)
    out = ws.build_dir("classic")
    # Plain 64-bit tinyconfig: byte identity does not depend on the probe's
    # options (kconfigs/base.config adds NET, crypto...: 40% more compiling).
    frag = tmp_path / "tiny64.config"
    frag.write_text("CONFIG_64BIT=y\n")
    frags = (frag,)

    def build(tag: str) -> tuple[str, float | None, int]:
        tree = gitops.git(linux_mirror, "rev-parse", f"refs/tags/{tag}^{{tree}}").stdout.strip()
        workspace.export_tree_once(linux_mirror, f"refs/tags/{tag}", tree, ws.src)
        before = kbuild.ccache_stats(cc)
        c = kbuild.configure(ws.src, out, frags, benv=ws.benv(), log_path=tmp_path / f"{tag}.c")
        assert c.ok, (c.status, c.dropped, c.error_lines)
        # vmlinux is what the comparison needs: no bzImage, no compression.
        res = kbuild.build(ws.src, out, targets=("vmlinux",), benv=ws.benv(),
                           log_path=tmp_path / f"{tag}.log")
        assert res.ok, res.first_errors
        after = kbuild.ccache_stats(cc)
        calls = sum(after.get(k, 0) - before.get(k, 0)
                    for k in ("direct_cache_hit", "preprocessed_cache_hit", "cache_miss"))
        return (hashlib.sha256((out / "vmlinux").read_bytes()).hexdigest(),
                kbuild.hit_rate(before, after), calls)

    # An empty cache: every object of the first build is compiled for real (its
    # hits are the compiler probes each make invocation repeats, e.g. cc-option).
    assert not cc.exists()
    clean_a, _, _ = build(a)
    b_sum, _, b_calls = build(b)
    assert b_sum != clean_a and b_calls > 0
    again_a, again_rate, again_calls = build(a)
    # Make recompiled what B had changed, and ccache answered from A's objects.
    assert again_calls > 0 and again_rate is not None and again_rate > 0.9
    assert again_a == clean_a, f"{a} rebuilt after {b} differs from its clean build"
