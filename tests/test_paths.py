"""The one path rule shared by the series parser, the PR reader and the publisher."""

from __future__ import annotations

import pytest

from ukl_patchbot.core.paths import path_problem


@pytest.mark.parametrize("path", ["a", "arch/x86/kernel/vmlinux.lds.S", "patchsets/linux/series",
                                  "kconfigs/ukl.config", "a/.gitignore"])
def test_plain_relative_paths_pass(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "why"),
    [("", "empty"), ("a\0b", "NUL"), ("/etc/passwd", "absolute"), ("a\\b", "backslash"),
     ("../x", "'..'"), ("a/../../x", "'..'"), ("..", "'..'"), (".", "'.'"), ("a/./b", "'.'"),
     ("a//b", "empty"), ("a/", "empty"), (".GIT/config", ".git/"), ("a/.git", ".git/")],
)
def test_every_unsafe_shape_is_named(path: str, why: str) -> None:
    problem = path_problem(path)
    assert problem is not None and why in problem
