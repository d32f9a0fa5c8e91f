"""The real program's recipe and the initramfs it boots with (classic: with /init; UKL: data only)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ukl_patchbot.check import uklapp
from ukl_patchbot.check.apps import build, recipes, rootfs
from ukl_patchbot.check.variant_records import Userland
from ukl_patchbot.core.errors import UserError

NGINX = recipes.NGINX


def _cpio_names(archive: Path) -> list[str]:
    res = subprocess.run(["cpio", "-t", "--quiet"], stdin=open(archive, "rb"),  # noqa: SIM115
                         capture_output=True, text=True, check=True)
    return res.stdout.split()


def _cpio_file(archive: Path, name: str, tmp: Path) -> bytes:
    out = tmp / "x"
    out.mkdir(exist_ok=True)
    with open(archive, "rb") as f:
        subprocess.run(["cpio", "-id", "--quiet", name], stdin=f, cwd=out, check=True)
    return (out / name).read_bytes()


def test_proof_document_is_fixed_sized_and_never_repeats() -> None:
    a, b = rootfs.proof_bytes(NGINX), rootfs.proof_bytes(NGINX)
    assert a == b and len(a) == NGINX.proof_size
    chunks = {a[i:i + 32] for i in range(0, len(a) - 32, 32)}
    assert len(chunks) == len(range(0, len(a) - 32, 32))  # every 32-byte block differs


def test_classic_initramfs_holds_init_config_users_and_the_document(tmp_path: Path) -> None:
    init = tmp_path / "nginx"
    init.write_bytes(b"\x7fELF fake program")
    out = rootfs.make_initramfs(NGINX, tmp_path / "i.cpio", init_binary=init)
    names = _cpio_names(out)
    assert {"init", "etc", "etc/nginx.conf", "etc/passwd", "etc/group", "www",
            "www/proof.bin"} == set(names)
    # Directories come before what they hold, so the kernel can unpack in order.
    assert names.index("etc") < names.index("etc/nginx.conf")
    assert _cpio_file(out, "www/proof.bin", tmp_path) == rootfs.proof_bytes(NGINX)
    assert _cpio_file(out, "init", tmp_path) == init.read_bytes()


def test_ukl_data_initramfs_has_no_init(tmp_path: Path) -> None:
    out = rootfs.make_initramfs(NGINX, tmp_path / "d.cpio")
    names = _cpio_names(out)
    assert "init" not in names and "etc/nginx.conf" in names and "www/proof.bin" in names
    assert not list(tmp_path.glob(".d.cpio*"))  # staging removed


def test_missing_program_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        rootfs.make_initramfs(NGINX, tmp_path / "i.cpio", init_binary=tmp_path / "none")


def test_recipe_defaults_find_the_files_the_initramfs_holds() -> None:
    """nginx runs with no arguments: its built-in paths must be where the archive puts things."""
    opts = dict(a.split("=", 1) for a in NGINX.configure if "=" in a)
    conf_dest = dict((src, dest) for src, dest in NGINX.files)["nginx.conf"]
    assert opts["--conf-path"] == "/" + conf_dest
    assert opts["--error-log-path"] == "stderr"  # the console
    conf = (NGINX.data_dir / "nginx.conf").read_text()
    # One process in the foreground (PID 1 or the UKL application), epoll, the document root.
    for line in ("master_process off;", "daemon off;", "use epoll;",
                 f"listen {NGINX.guest_port};", "root /www;"):
        assert line in conf
    assert NGINX.proof_path == "www" + NGINX.url_path
    users = (NGINX.data_dir / "passwd").read_text()
    groups = (NGINX.data_dir / "group").read_text()
    assert users.startswith("root:x:0:0:") and f"{opts['--user']}:x:" in users
    assert f"{opts['--group']}:x:" in groups
    # Only libc: nothing that needs PCRE, zlib or OpenSSL, and no threads or aio.
    assert {"--without-pcre", "--without-http_rewrite_module", "--without-http_gzip_module"} \
        <= set(NGINX.configure)
    assert not [a for a in NGINX.configure if "ssl" in a or "threads" in a or "aio" in a]


def test_ukl_build_gets_the_flags_of_ukl_application_code() -> None:
    classic = build.configure_argv(NGINX, Userland.STOCK_STATIC)
    ukl = build.configure_argv(NGINX, Userland.LINKED_APP)
    assert "--with-ld-opt=-static" in classic and "--with-ld-opt=-static" in ukl
    cc = next(a for a in ukl if a.startswith("--with-cc-opt="))
    for flag in uklapp.UKL_APP_CFLAGS:
        assert flag in cc.split("=", 1)[1].split()
    assert not set(uklapp.UKL_APP_CFLAGS) & set(
        next(a for a in classic if a.startswith("--with-cc-opt=")).split("=", 1)[1].split())


def test_unknown_program_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown program 'httpd'"):
        recipes.get("httpd")
