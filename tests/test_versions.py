"""Version parsing and ordering: tags sort by version, Debian versions like dpkg."""

from __future__ import annotations

import pytest

from ukl_patchbot.core import versions


def test_linux_tags_sort_by_version_not_string() -> None:
    tags = ["v6.1.99", "v6.1.170", "v6.1", "v6.1-rc7", "v6.1.192", "v6.10", "junk", "v6.1.9"]
    assert versions.sort_tags(tags, "v") == [
        "v6.10", "v6.1.192", "v6.1.170", "v6.1.99", "v6.1.9", "v6.1", "v6.1-rc7"]
    assert versions.sort_tags(tags, "v", newest_first=False)[0] == "v6.1-rc7"


def test_glibc_stable_updates_sort_numerically() -> None:
    tags = ["glibc-2.36-deb12u7", "glibc-2.36-deb12u14", "glibc-2.36", "glibc-2.35"]
    assert versions.sort_tags(tags, "glibc-") == [
        "glibc-2.36-deb12u14", "glibc-2.36-deb12u7", "glibc-2.36", "glibc-2.35"]


def test_tracked_line_membership() -> None:
    v = versions.tag_version("v6.1.192", "v")
    assert v is not None and v.in_line("6.1") and not v.in_line("6.10") and v.in_line("6")
    v10 = versions.tag_version("v6.10.3", "v")
    assert v10 is not None and not v10.in_line("6.1")
    assert versions.tag_version("glibc-2.36", "v") is None


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("6.1.192-1", "6.1.192-2", -1),
        ("2.36-9+deb12u7", "2.36-9+deb12u14", -1),
        ("1.0~rc1", "1.0", -1),
        ("1.0", "1.0+b1", -1),
        ("1:0.1", "9.9", 1),
        ("6.1.170-3", "6.1.170-3", 0),
        ("1.0a", "1.0-1", 1),
    ],
)
def test_debian_compare(a: str, b: str, want: int) -> None:
    assert versions.compare_debian(a, b) == want
    assert versions.compare_debian(b, a) == -want


def test_debian_tag_version() -> None:
    assert versions.debian_tag_version("6.1.170-3") == "6.1.170"
    assert versions.debian_tag_version("2.36-9+deb12u14") == "2.36-deb12u14"
    assert versions.debian_tag_version("2.36-9") == "2.36"
    assert versions.split_debian("1:2.36-9+deb12u7") == (1, "2.36", "9+deb12u7")


def test_closest_tags_by_version_then_spelling() -> None:
    known = ["v6.1.170", "v6.1.176", "v6.1.187", "v6.1.192"]
    assert versions.closest_tags("v6.1.190", known, "v", n=2) == ["v6.1.192", "v6.1.187"]
    assert versions.closest_tags("6.1.171", known, "v", n=1) == ["v6.1.170"]
    assert versions.closest_tags("latest", known, "v", n=1)[0] in known
    assert versions.closest_tags("v1", [], "v") == []


def test_component_of_tag_longest_prefix_wins() -> None:
    prefixes = {"linux": "v", "glibc": "glibc-", "other": ""}
    assert versions.component_of_tag("v6.1.192", prefixes) == "linux"
    assert versions.component_of_tag("glibc-2.36-deb12u14", prefixes) == "glibc"
    assert versions.component_of_tag("nonsense", {"linux": "v", "glibc": "glibc-"}) is None
