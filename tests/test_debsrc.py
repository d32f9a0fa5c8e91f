"""Debian sources through a private apt configuration derived from the machine's own sources.

Parsing and derivation run on apt source files written here (deb822 and the
one-line form, made-up archive hosts). `fetch_source` runs the real apt-get
and dpkg-source against a flat source repository on disk (`FakeSourceArchive`),
reached only through the derived configuration.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.apt_sources import FakeSourceArchive, write_etc
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.upstream import debsrc

DEB822 = """\
Types: deb
# a comment between fields
URIs: http://mirror-a.example.org/debian
Suites: stable stable-updates
Components: main contrib
Signed-By: /usr/share/keyrings/example-archive.gpg

Types: deb deb-src
URIs: http://security-b.example.org/debian-security
Suites: stable-security
Components: main
Signed-By: /usr/share/keyrings/example-archive.gpg

Types: deb
URIs: http://off.example.org/debian
Suites: stable
Components: main
Enabled: no
"""

ONE_LINE = """\
# the archive, twice (binary and source), and a flat repository
deb [arch=amd64 signed-by=/etc/apt/keyrings/c.asc] http://mirror-c.example.org/debian stable main
deb-src [signed-by=/etc/apt/keyrings/c.asc] http://mirror-c.example.org/debian stable main
deb [trusted=yes] file:/srv/flat ./
deb cdrom:[Debian GNU/Linux 12 _Bookworm_]/ bookworm main
"""


def _hosts(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+://([^/\s]+)", text))


def test_deb822_gives_one_entry_per_uri_and_suite_and_skips_disabled() -> None:
    entries = debsrc.parse_deb822(DEB822, "x.sources")
    assert [(e.uri, e.suite) for e in entries] == [
        ("http://mirror-a.example.org/debian", "stable"),
        ("http://mirror-a.example.org/debian", "stable-updates"),
        ("http://security-b.example.org/debian-security", "stable-security"),
    ]
    assert entries[0].components == ("main", "contrib")
    assert entries[2].types == ("deb", "deb-src")
    assert dict(entries[0].options) == {"Signed-By": "/usr/share/keyrings/example-archive.gpg"}


def test_one_line_form_with_options() -> None:
    entries = debsrc.parse_one_line(ONE_LINE, "sources.list")
    assert [e.types for e in entries] == [("deb",), ("deb-src",), ("deb",), ("deb",)]
    assert dict(entries[0].options) == {"Architectures": "amd64",
                                        "Signed-By": "/etc/apt/keyrings/c.asc"}
    assert entries[2].uri == "file:/srv/flat" and entries[2].suite == "./"
    assert entries[2].components == ()


def test_malformed_lines_name_the_file() -> None:
    with pytest.raises(UserError, match=r"bad\.list line 1"):
        debsrc.parse_one_line("deb http://x.example.org/debian\n", "bad.list")
    with pytest.raises(UserError, match="lacks Types, URIs or Suites"):
        debsrc.parse_deb822("Types: deb\nURIs: http://x.example.org/\n", "bad.sources")


def test_derivation_turns_every_archive_into_one_source_entry(tmp_path: Path) -> None:
    etc = write_etc(tmp_path / "etc", sources_list=ONE_LINE, parts={"a.sources": DEB822})
    derived = debsrc.derive_deb_src(debsrc.read_system_sources(etc))
    assert {e.types for e in derived} == {("deb-src",)}
    keys = [(e.uri, e.suite) for e in derived]
    # The archive listed both as deb and deb-src gives one entry, not two.
    assert keys.count(("http://mirror-c.example.org/debian", "stable")) == 1
    assert ("http://security-b.example.org/debian-security", "stable-security") in keys
    assert ("http://off.example.org/debian", "stable") not in keys  # Enabled: no
    assert not [e for e in derived if e.uri.startswith("cdrom:")]
    assert len(derived) == 5


def test_files_apt_does_not_read_are_ignored(tmp_path: Path) -> None:
    etc = write_etc(tmp_path / "etc", parts={
        "a.sources": DEB822,
        "old.list.disabled": "deb http://disabled.example.org/debian stable main\n",
        "b.sources.bak": "Types: deb\nURIs: http://bak.example.org/\nSuites: s\n"})
    text = debsrc.render_deb822(debsrc.derive_deb_src(debsrc.read_system_sources(etc)))
    assert "disabled.example.org" not in text and "bak.example.org" not in text


def test_generated_configuration_holds_only_hosts_read_from_the_input(tmp_path: Path) -> None:
    etc = write_etc(tmp_path / "etc", sources_list=ONE_LINE, parts={"a.sources": DEB822})
    apt = debsrc.PrivateApt(tmp_path / "apt", etc)
    apt.write()
    generated = "".join(p.read_text() for p in (tmp_path / "apt").rglob("*") if p.is_file())
    assert _hosts(generated) == {"mirror-a.example.org", "security-b.example.org",
                                 "mirror-c.example.org"}
    sources = apt.sources_file.read_text()
    assert "Types: deb-src" in sources and "Types: deb\n" not in sources
    assert "Signed-By: /etc/apt/keyrings/c.asc" in sources
    assert "Architectures: amd64" in sources
    # The machine's lists and sources are not used: apt reads ours.
    conf = apt.config.read_text()
    assert f'Dir::State::Lists "{tmp_path / "apt" / "lists"}";' in conf
    assert f'Dir::Etc::SourceParts "{tmp_path / "apt" / "sources.list.d"}";' in conf
    assert (tmp_path / "apt" / "sources.list").read_text() == ""


def test_multi_line_field_survives_rendering(tmp_path: Path) -> None:
    key = "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----"
    text = f"Types: deb\nURIs: http://k.example.org/d\nSuites: s\nComponents: main\n{key}\n"
    (entry,) = debsrc.derive_deb_src(debsrc.parse_deb822(text))
    again = debsrc.parse_deb822(debsrc.render_deb822([entry]))
    assert again[0].options == entry.options
    assert dict(entry.options)["Signed-By"].splitlines()[-1] == "-----END PGP PUBLIC KEY BLOCK-----"


def test_machine_without_sources_is_a_clear_error(tmp_path: Path) -> None:
    etc = write_etc(tmp_path / "etc")
    with pytest.raises(UserError, match="lists no apt sources"):
        debsrc.PrivateApt(tmp_path / "apt", etc).write()


def test_fetch_unpacks_the_newest_version_then_answers_from_the_cache(tmp_path: Path) -> None:
    archive = FakeSourceArchive(tmp_path / "archive")
    archive.add("hello-src", "1.0", {"hello.c": "int main(void) { return 0; }\n"})
    archive.add("hello-src", "1.2", {"hello.c": "int main(void) { return 12; }\n"})
    etc = write_etc(tmp_path / "etc", parts={"local.sources": archive.deb822()})
    cache = tmp_path / "cache"
    tree = debsrc.fetch_source("hello-src", cache, etc=etc, log_path=tmp_path / "fetch.log")
    assert tree.version == "1.2"
    assert (tree.path / "hello.c").read_text() == "int main(void) { return 12; }\n"
    assert tree.dsc.name == "hello-src_1.2.dsc" and tree.fetch_seconds > 0
    # apt itself was told to fetch sources from the derived list, which names the archive.
    assert "Types: deb-src" in (cache / "apt" / "sources.list.d" / "derived-deb-src.sources"
                                ).read_text()
    archive.remove_files("hello-src", "1.2")
    again = debsrc.fetch_source("hello-src", cache, etc=etc)
    assert again.path == tree.path and again.fetch_seconds == 0.0


def test_a_version_the_archive_does_not_serve_falls_back_to_the_next(tmp_path: Path) -> None:
    archive = FakeSourceArchive(tmp_path / "archive")
    archive.add("hello-src", "1.0", {"hello.c": "/* one */\n"})
    archive.add("hello-src", "2.0", {"hello.c": "/* two */\n"})
    archive.remove_files("hello-src", "2.0")  # indexed, but the files are gone
    etc = write_etc(tmp_path / "etc", parts={"local.sources": archive.deb822()})
    tree = debsrc.fetch_source("hello-src", tmp_path / "cache", etc=etc,
                               log_path=tmp_path / "fetch.log")
    assert tree.version == "1.0"
    assert (tree.path / "hello.c").read_text() == "/* one */\n"
    assert not [p for p in (tmp_path / "cache" / "src").glob(".*")
                if not p.name.startswith(".unserved-")]  # no half-written entry left
    # Asked again with the same lists: the unserved version is not tried again.
    again = debsrc.fetch_source("hello-src", tmp_path / "cache", etc=etc,
                                log_path=tmp_path / "again.log")
    assert again.version == "1.0" and again.fetch_seconds == 0.0
    assert not (tmp_path / "again.log").exists()  # no update, no download
    # After the lists are fetched again, it is tried again (the archive may serve it now).
    archive.add("hello-src", "2.0", {"hello.c": "/* two */\n"})
    fresh = debsrc.fetch_source("hello-src", tmp_path / "cache", etc=etc, refresh=True)
    assert fresh.version == "2.0"


def test_a_tampered_file_is_refused(tmp_path: Path) -> None:
    archive = FakeSourceArchive(tmp_path / "archive")
    archive.add("hello-src", "1.0", {"hello.c": "/* original */\n"})
    archive.tamper("hello-src", "1.0")
    etc = write_etc(tmp_path / "etc", parts={"local.sources": archive.deb822()})
    with pytest.raises(InfraError, match="no version of source package hello-src"):
        debsrc.fetch_source("hello-src", tmp_path / "cache", etc=etc,
                            log_path=tmp_path / "fetch.log")
    assert "Hash Sum mismatch" in (tmp_path / "fetch.log").read_text() or \
        "Size mismatch" in (tmp_path / "fetch.log").read_text()


def test_unknown_package_is_a_user_error(tmp_path: Path) -> None:
    archive = FakeSourceArchive(tmp_path / "archive")
    archive.add("hello-src", "1.0", {"hello.c": "\n"})
    etc = write_etc(tmp_path / "etc", parts={"local.sources": archive.deb822()})
    with pytest.raises(UserError, match="no source package 'nope'"):
        debsrc.fetch_source("nope", tmp_path / "cache", etc=etc)


def test_dpkg_source_is_installed() -> None:
    # fetch_source unpacks with dpkg-source (dpkg-dev, in ci/install-deps.sh).
    assert subprocess.run(["dpkg-source", "--version"], capture_output=True,
                          check=False).returncode == 0
