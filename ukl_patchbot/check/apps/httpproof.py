"""Boot a kernel whose program is a web server and judge it by a request sent from the host.

QEMU gets a virtio NIC on user networking with one host port forwarded to the
program's port in the guest; the kernel sets the guest's address itself
(``ip=`` on its command line), before PID 1 starts, in either variant. While
the machine boots, the host asks for the proof document again and again (a
refused or reset connection only means "not up yet"). The boot passes on the
first complete answer whose status is 200 and whose body is the expected
bytes; any other complete answer fails it. Then QEMU is told to quit through
its QMP socket, so a passing boot ends at once rather than at the timeout.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.check.boot import detect_accel, qemu_argv
from ukl_patchbot.check.results import AppStatus
from ukl_patchbot.core import cmdline
from ukl_patchbot.core.runner import run

HOST = "127.0.0.1"
# QEMU's user network: the guest is 10.0.2.15, the gateway 10.0.2.2.
GUEST_IP = "ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"
POLL_INTERVAL = 0.5
REQUEST_TIMEOUT = 10.0
# Console lines worth quoting when no answer came: the program's own
# complaints and the kernel's last words.
_NOTABLE = re.compile(r"\[(?:emerg|alert|crit)\]|Kernel panic|Attempted to kill init|"
                      r"BUG:|Oops|segfault|Unable to|IP-Config")


@dataclass(frozen=True)
class HttpAnswer:
    """A complete HTTP response: its status code and body."""

    status: int
    body: bytes


def get_once(port: int, path: str, *, host: str = HOST, timeout: float = REQUEST_TIMEOUT
             ) -> tuple[HttpAnswer | None, str]:
    """One GET; (answer, "") or (None, why there was no complete answer)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return HttpAnswer(resp.status, resp.read()), ""
    except (OSError, http.client.HTTPException) as exc:
        # Refused, reset, closed before a status line, or a truncated body:
        # the server is not (yet) answering.
        return None, f"{type(exc).__name__}: {exc}".rstrip(": ")
    finally:
        conn.close()


def judge(answer: HttpAnswer, expected: bytes) -> tuple[AppStatus, str]:
    """PASS for status 200 and exactly ``expected``; FAIL, saying how it differs, otherwise."""
    if answer.status != 200:
        return AppStatus.FAIL, f"answered HTTP {answer.status}, not 200"
    if answer.body == expected:
        return AppStatus.PASS, f"answered 200 with the {len(expected)}-byte document, byte for byte"
    if len(answer.body) != len(expected):
        return AppStatus.FAIL, f"answered {len(answer.body)} bytes, expected {len(expected)}"
    first = next(i for i, (a, b) in enumerate(zip(answer.body, expected, strict=True)) if a != b)
    return AppStatus.FAIL, f"answered {len(expected)} bytes differing from offset {first}"


def wait_for_answer(port: int, path: str, deadline: float, stop: threading.Event, *,
                    host: str = HOST, interval: float = POLL_INTERVAL
                    ) -> tuple[HttpAnswer | None, str]:
    """Ask until a complete answer comes, ``stop`` is set or ``deadline`` (monotonic) passes."""
    why = "no request was sent"
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        answer, why = get_once(port, path, host=host, timeout=min(REQUEST_TIMEOUT, left))
        if answer is not None:
            return answer, ""
        stop.wait(interval)
    return None, why


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def net_options(host_port: int, guest_port: int) -> list[str]:
    """QEMU options: a virtio NIC on user networking, host_port forwarded to guest_port."""
    return ["-netdev", f"user,id=net0,hostfwd=tcp:{HOST}:{host_port}-:{guest_port}",
            "-device", "virtio-net-pci,netdev=net0"]


def qmp_quit(sock_path: Path, timeout: float = 5.0) -> bool:
    """Ask QEMU to quit through its QMP socket; False if it is not there (already gone)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            f = s.makefile("rwb")
            f.readline()  # the greeting
            for cmd in ("qmp_capabilities", "quit"):
                f.write(json.dumps({"execute": cmd}).encode() + b"\n")
                f.flush()
                f.readline()
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class AppBoot:
    """One boot of a program's kernel, judged by its answer."""

    status: AppStatus
    detail: str
    answer_after: float | None
    returncode: int
    log_path: str
    reproduce: str
    tail: tuple[str, ...]


def boot_and_ask(kernel: Path, initrd: Path | None, *, guest_port: int, url_path: str,
                 expected: bytes, log_path: Path, timeout: float, accel: str | None = None,
                 append: Sequence[str] = (), on_line: Callable[[str], None] | None = None
                 ) -> AppBoot:
    """Boot ``kernel`` with a NIC, ask for ``url_path`` until answered, judge, stop QEMU."""
    accel = accel or detect_accel()
    port = free_port()
    lines: list[str] = []

    def watch(line: str) -> None:
        lines.append(line)
        if on_line is not None:
            on_line(line)

    with tempfile.TemporaryDirectory(prefix="patchbot-qmp-") as d:
        qmp = Path(d) / "qmp.sock"
        devices = [*net_options(port, guest_port), "-qmp", f"unix:{qmp},server=on,wait=off"]
        argv = qemu_argv(kernel, initrd, accel=accel, append=(GUEST_IP, *append), devices=devices)
        stop = threading.Event()
        got: dict[str, object] = {}
        start = time.monotonic()

        def ask() -> None:
            answer, why = wait_for_answer(port, url_path, start + timeout - 1.0, stop)
            got.update(answer=answer, why=why, at=time.monotonic() - start,
                       gave_up=answer is None and not stop.is_set())
            qmp_quit(qmp)

        client = threading.Thread(target=ask, name="app-proof", daemon=True)
        client.start()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)
        res = run(argv, log_path=log_path, timeout=timeout, on_line=watch)
        stop.set()
        client.join(REQUEST_TIMEOUT + 5)
    repro = cmdline.shell_line(argv)
    answer = got.get("answer")
    tail = tuple(lines[-20:])
    if isinstance(answer, HttpAnswer):
        status, detail = judge(answer, expected)
        at = got["at"] if status is AppStatus.PASS else None
        return AppBoot(status, detail, at if isinstance(at, float) else None, res.returncode,
                       str(log_path), repro, () if status is AppStatus.PASS else tail)
    if not lines and res.returncode != 0 and not res.timed_out:
        return AppBoot(AppStatus.QEMU_ERROR, f"QEMU exited {res.returncode} before any output",
                       None, res.returncode, str(log_path), repro, tail)
    notable = [x.strip() for x in lines if _NOTABLE.search(x)]
    if got.get("gave_up") or res.timed_out:
        detail = f"no answer within {timeout:g} s"
    else:
        detail = f"no answer: QEMU exited {res.returncode} first"
    detail += f" (last try: {got.get('why') or 'none'})"
    if notable:
        detail += f"; console: {notable[-1]}"
    return AppBoot(AppStatus.NO_ANSWER, detail, None, res.returncode, str(log_path), repro, tail)


def with_retry(boot: Callable[[Path], AppBoot], log_dir: Path, name: str, retries: int = 1
               ) -> tuple[AppBoot, int]:
    """Boot up to ``1 + retries`` times until one passes; (the deciding boot, attempts made)."""
    result: AppBoot | None = None
    n = 0
    for n in range(1, 2 + max(0, retries)):
        result = boot(log_dir / f"boot-{name}-{n}.log")
        if result.status in (AppStatus.PASS, AppStatus.FAIL):
            break  # a wrong answer is an answer: booting again would not change it
    assert result is not None
    return result, n
