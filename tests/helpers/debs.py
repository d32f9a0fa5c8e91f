"""Real Debian packages built in memory: a tarball of a tree and a .deb holding it."""

from __future__ import annotations

import io
import lzma
import tarfile
from pathlib import Path


def tar_xz(members: dict[str, bytes | tuple[str, str]], top: str) -> bytes:
    """A .tar.xz of ``members``: bytes = file (name ending '*' = executable), ('link', target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        d = tarfile.TarInfo(top)
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        for name, content in members.items():
            exe = name.endswith("*")
            info = tarfile.TarInfo(f"{top}/{name.rstrip('*')}")
            info.mtime = 1_700_000_000
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = content[1]
                tf.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o755 if exe else 0o644
                tf.addfile(info, io.BytesIO(content))
    return lzma.compress(buf.getvalue())


def make_deb(path: Path, data_files: dict[str, bytes], control: bytes = b"") -> Path:
    """A real .deb (ar archive, control.tar.xz, data.tar.xz) holding ``data_files``."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tf:
        for name, content in data_files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(content)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(content))
    ctl = io.BytesIO()
    with tarfile.open(fileobj=ctl, mode="w") as tf:
        if control:
            info = tarfile.TarInfo("./control")
            info.size = len(control)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(control))
    members = [(b"debian-binary", b"2.0\n"), (b"control.tar.xz", lzma.compress(ctl.getvalue())),
               (b"data.tar.xz", lzma.compress(data.getvalue()))]
    out = bytearray(b"!<arch>\n")
    for name, content in members:
        out += (name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6)
                + b"100644".ljust(8) + str(len(content)).encode().ljust(10) + b"`\n")
        out += content + (b"\n" if len(content) % 2 else b"")
    path.write_bytes(bytes(out))
    return path
