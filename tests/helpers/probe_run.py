"""Running the real probe in user mode: its data files, a fresh network namespace, its lines."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.check import console, uklapp
from ukl_patchbot.check.results import AbiCheck, ProbeMarkers


@dataclass(frozen=True)
class ProbeRun:
    returncode: int
    stdout: str
    markers: ProbeMarkers

    def abi(self) -> dict[str, AbiCheck]:
        return {c.name: c for c in self.markers.abi}


def unshare_skip_reason() -> str | None:
    """Why the probe cannot run in its own user and network namespace here, or None."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    res = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "true"], check=False,
                         capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        return f"unshare --user --net refused: {res.stderr.strip()}"
    return None


def host_af_alg_errno() -> int | None:
    """The errno of ``socket(AF_ALG)`` on this host kernel; None when AF_ALG works."""
    try:
        socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0).close()
    except OSError as exc:
        return exc.errno or errno.EAFNOSUPPORT
    return None


def run_probe(exe: Path, data_dir: Path | None, *, timeout: float = 120) -> ProbeRun:
    """Run ``exe`` as root of a new user namespace with a new network namespace (lo down)."""
    env = {"PATH": "/usr/bin:/bin"}
    if data_dir is not None:
        env["UKL_PROBE_DATA"] = str(data_dir)
    res = subprocess.run(["unshare", "--user", "--map-root-user", "--net", str(exe)], check=False,
                         capture_output=True, text=True, timeout=timeout, env=env)
    return ProbeRun(res.returncode, res.stdout, console.parse_markers(res.stdout.splitlines()))


def probe_with_data(tmp_path: Path, *defines: str) -> tuple[Path, Path]:
    """The classic probe (with ``defines``) and a directory holding its data files."""
    exe = uklapp.compile_probe("classic", tmp_path / "bin", defines=defines)
    return exe, uklapp.write_probe_data(tmp_path / "root")
