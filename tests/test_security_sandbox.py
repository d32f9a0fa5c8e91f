"""The build sandbox on a real build step: a pull request's makefile cannot reach secrets,
the worker's processes, files outside its workspace or the network; a normal build works.

Each attack is tried twice, with and without the sandbox: the run without it shows the
attack would work here, so the sandboxed run's "blocked" means something.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ukl_patchbot.check import kbuild
from ukl_patchbot.core import runner, sandbox

FAKE = Path(__file__).parent / "fakelinux"
TOKEN = "ghs_sandboxtesttoken0123456789abcdef"

pytestmark = pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is not installed")


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's loopback that accepts and answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def loop() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.sendall(b"hello\n")
            conn.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


def attack_tree(tmp_path: Path, port: int) -> tuple[Path, dict[str, Path]]:
    """A fake kernel tree whose bzImage recipe first tries four attacks, then builds."""
    secret_dir = tmp_path / "etc-patchbot"
    secret_dir.mkdir()
    token_file = secret_dir / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    outside = tmp_path / "outside-workspace"
    outside.mkdir()
    src = tmp_path / "work" / "src"
    shutil.copytree(FAKE, src)
    probe = (
        f"python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', {port}), 2);"
        " print(s.recv(5).decode())\""
    )
    attacks = [
        ("read-secret-file", f"cat {token_file}"),
        ("read-worker-environ", (f"cat /proc/{os.getpid()}/environ /proc/$$PPID/environ"
                                 " | tr '\\0' '\\n' | grep PATCHBOT_GITHUB_TOKEN")),
        ("write-outside", f"echo pwned > {outside}/pwned && cat {outside}/pwned"),
        ("network", probe),
    ]
    lines = []
    for name, cmd in attacks:
        lines.append(
            f"\t-( {cmd} ) >> $(O)/attack.log 2>&1 && echo LEAK-{name} >> $(O)/attack.log"
            f" || echo BLOCKED-{name} >> $(O)/attack.log"
        )
    mk = src / "Makefile"
    text = mk.read_text().replace("bzImage:\n", "bzImage:\n" + "\n".join(lines) + "\n", 1)
    mk.write_text(text)
    return src, {"token": token_file, "outside": outside / "pwned"}


def verdicts(log: Path) -> dict[str, str]:
    out = {}
    for line in log.read_text().splitlines():
        for kind in ("LEAK", "BLOCKED"):
            if line.startswith(kind + "-"):
                out[line[len(kind) + 1 :]] = kind
    return out


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a worker that still had its secret in the environment.
    monkeypatch.setenv("PATCHBOT_GITHUB_TOKEN", TOKEN)


def test_attacks_work_without_the_sandbox(
    tmp_path: Path, listener: int, worker_env: None
) -> None:
    src, paths = attack_tree(tmp_path, listener)
    out = tmp_path / "work" / "build"
    res = kbuild.build(src, out, benv=kbuild.BuildEnv(jobs=1), log_path=tmp_path / "build.log")
    assert res.ok, res
    assert verdicts(out / "attack.log") == {
        "read-secret-file": "LEAK",
        "read-worker-environ": "LEAK",
        "write-outside": "LEAK",
        "network": "LEAK",
    }
    assert paths["outside"].exists()


def test_sandboxed_build_blocks_every_attack_and_still_builds(
    tmp_path: Path, listener: int, worker_env: None
) -> None:
    src, paths = attack_tree(tmp_path, listener)
    out = tmp_path / "work" / "build"
    policy = sandbox.Policy(writable=(tmp_path / "work",))
    # The token file sits under /tmp here (masked anyway); register it as a secret file
    # the way the secrets module does, which also covers files in visible places.
    sandbox.hide(paths["token"])
    sandbox.install(policy)
    try:
        res = kbuild.build(src, out, benv=kbuild.BuildEnv(jobs=1),
                           log_path=tmp_path / "build.log")
    finally:
        sandbox.install(None)
    assert res.ok, (tmp_path / "build.log").read_text()
    assert (out / "arch/x86/boot/bzImage").is_file()
    log = (out / "attack.log").read_text()
    assert verdicts(out / "attack.log") == {
        "read-secret-file": "BLOCKED",
        "read-worker-environ": "BLOCKED",
        "write-outside": "BLOCKED",
        "network": "BLOCKED",
    }, log
    assert TOKEN not in log
    assert "hello" not in log
    assert not paths["outside"].exists()


def test_secret_file_in_a_visible_tree_is_masked(tmp_path: Path) -> None:
    """A token under a read-only tree the build may read (e.g. the checkout) is hidden."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "kconfig").write_text("CONFIG_X=y\n")
    (checkout / "token").write_text(TOKEN)
    work = tmp_path / "work"
    work.mkdir()
    policy = sandbox.Policy(writable=(work,), read_only=(checkout,), hidden=(checkout / "token",))
    script = f"cat {checkout}/kconfig; cat {checkout}/token; echo x > {checkout}/new"
    res = runner.run(["sh", "-c", script], cwd=work, capture=True, sandbox=policy)
    assert "CONFIG_X=y" in res.stdout
    assert TOKEN not in res.stdout
    assert not (checkout / "new").exists()


def test_environment_is_an_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHBOT_WEBHOOK_SECRET", TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-" + TOKEN)
    policy = sandbox.Policy(writable=(tmp_path,))
    res = runner.run(["env"], cwd=tmp_path, capture=True, extra_env={"KBUILD_BUILD_USER": "pb"},
                     sandbox=policy)
    names = {line.split("=", 1)[0] for line in res.stdout.splitlines()}
    assert TOKEN not in res.stdout
    assert "KBUILD_BUILD_USER" in names and "PATH" in names
    assert names <= sandbox.ALLOWED_ENV | {"HOME", "KBUILD_BUILD_USER", "PWD"}


def test_only_commands_in_the_workspace_are_confined(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    sandbox.install(sandbox.Policy(writable=(work,)))
    try:
        inside = runner.run(["sh", "-c", "ls /proc | grep -c '^[0-9]'"], cwd=work, capture=True)
        outside = runner.run(["sh", "-c", "ls /proc | grep -c '^[0-9]'"], cwd=tmp_path,
                             capture=True)
    finally:
        sandbox.install(None)
    # A new pid namespace shows a handful of processes; the host shows its own.
    assert int(inside.stdout) < 10
    assert int(outside.stdout) > int(inside.stdout)


def test_probe_reports_a_missing_tool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    policy = sandbox.Policy(writable=(tmp_path,))
    assert sandbox.probe(policy) is None
    monkeypatch.setattr(sandbox, "BWRAP", "bwrap-not-installed")
    why = sandbox.probe(policy)
    assert why is not None and "bwrap-not-installed" in why
