"""The HTTP proof of the real program: asking until answered, judging the answer, stopping QEMU.

Against local servers (a fake of the guest's web server) and a stand-in for
QEMU (`tests/helpers/fake_qemu_http.py`) that forwards a port and obeys QMP.
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import fake_qemu_http
from ukl_patchbot.check import boot
from ukl_patchbot.check.apps import httpproof
from ukl_patchbot.check.apps.httpproof import HttpAnswer
from ukl_patchbot.check.results import AppStatus

BODY = bytes(range(256)) * 100


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    body = BODY

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def _server(port: int = 0, status: int = 200, body: bytes = BODY) -> http.server.HTTPServer:
    handler = type("H", (_Handler,), {"status": status, "body": body})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    srv = _server()
    yield srv
    srv.shutdown()


def test_judge_passes_only_the_exact_document() -> None:
    assert httpproof.judge(HttpAnswer(200, BODY), BODY)[0] is AppStatus.PASS
    status, detail = httpproof.judge(HttpAnswer(200, BODY[:-10]), BODY)
    assert status is AppStatus.FAIL and f"expected {len(BODY)}" in detail
    wrong = bytearray(BODY)
    wrong[4097] ^= 0xFF
    status, detail = httpproof.judge(HttpAnswer(200, bytes(wrong)), BODY)
    assert status is AppStatus.FAIL and "offset 4097" in detail
    status, detail = httpproof.judge(HttpAnswer(404, BODY), BODY)
    assert status is AppStatus.FAIL and "HTTP 404" in detail


def test_get_once_reads_a_whole_answer(server: http.server.HTTPServer) -> None:
    answer, why = httpproof.get_once(server.server_address[1], "/proof.bin")
    assert answer == HttpAnswer(200, BODY) and why == ""


def test_nothing_listening_is_no_answer_yet() -> None:
    answer, why = httpproof.get_once(httpproof.free_port(), "/")
    assert answer is None and "ConnectionRefused" in why


def test_a_connection_closed_at_once_is_no_answer_yet() -> None:
    # What QEMU's port forward does while nothing listens in the guest.
    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)

        def close_one() -> None:
            conn, _ = lsock.accept()
            conn.close()

        threading.Thread(target=close_one, daemon=True).start()
        answer, why = httpproof.get_once(lsock.getsockname()[1], "/")
    assert answer is None and why


def test_wait_for_answer_asks_until_the_server_comes_up() -> None:
    port = httpproof.free_port()
    srv: list[http.server.HTTPServer] = []
    threading.Timer(1.0, lambda: srv.append(_server(port))).start()
    start = time.monotonic()
    answer, _ = httpproof.wait_for_answer(port, "/x", time.monotonic() + 20, threading.Event(),
                                          interval=0.2)
    took = time.monotonic() - start
    srv[0].shutdown()
    assert answer == HttpAnswer(200, BODY)
    assert 0.9 < took < 10


def test_wait_for_answer_gives_up_at_the_deadline_or_when_stopped() -> None:
    port = httpproof.free_port()
    start = time.monotonic()
    answer, why = httpproof.wait_for_answer(port, "/", time.monotonic() + 1.0, threading.Event(),
                                            interval=0.2)
    assert answer is None and "ConnectionRefused" in why
    assert 0.9 < time.monotonic() - start < 5
    stop = threading.Event()
    stop.set()
    assert httpproof.wait_for_answer(port, "/", time.monotonic() + 60, stop) == (
        None, "no request was sent")


def test_qmp_quit_without_qemu_is_false(tmp_path: Path) -> None:
    assert httpproof.qmp_quit(tmp_path / "none.sock") is False


def test_net_options_forward_the_host_port_to_the_guest_port() -> None:
    opts = httpproof.net_options(12345, 80)
    assert "user,id=net0,hostfwd=tcp:127.0.0.1:12345-:80" in opts
    assert "virtio-net-pci,netdev=net0" in opts


# ---------------------------------------------------------------- with a stand-in for QEMU


@pytest.fixture
def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "qemu-system-x86_64"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {fake_qemu_http.FAKE} \"$@\"\n")
    script.chmod(0o755)
    monkeypatch.setattr(boot, "QEMU", str(script))
    body = tmp_path / "body"
    body.write_bytes(BODY)
    monkeypatch.setenv("FAKE_QEMU_BODY", str(body))
    return tmp_path


def _boot(work: Path, timeout: float = 30) -> httpproof.AppBoot:
    return httpproof.boot_and_ask(work / "bzImage", None, guest_port=80, url_path="/proof.bin",
                                  expected=BODY, log_path=work / "boot.log", timeout=timeout,
                                  accel="tcg")


def test_boot_passes_on_the_answer_and_stops_qemu_at_once(fake_qemu: Path) -> None:
    start = time.monotonic()
    res = _boot(fake_qemu)
    assert res.status is AppStatus.PASS, res.detail
    assert res.returncode == 0 and time.monotonic() - start < 15  # quit by QMP, not the timeout
    assert res.answer_after is not None and 0.9 < res.answer_after < 15
    log = Path(res.log_path).read_text()
    assert "terminating on QMP quit" in log
    assert httpproof.GUEST_IP in log  # the kernel configures the guest's address
    assert "-netdev" in res.reproduce and "hostfwd=tcp:127.0.0.1:" in res.reproduce


def test_a_wrong_document_fails(fake_qemu: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_QEMU_MODE", "wrong")
    res = _boot(fake_qemu)
    assert res.status is AppStatus.FAIL and f"offset {len(BODY) - 1}" in res.detail
    assert res.tail  # the console is quoted for a failure


def test_a_silent_guest_is_no_answer_at_the_timeout(fake_qemu: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_QEMU_MODE", "silent")
    start = time.monotonic()
    res = _boot(fake_qemu, timeout=4)
    assert res.status is AppStatus.NO_ANSWER and "no answer within 4 s" in res.detail
    assert time.monotonic() - start < 15


def test_a_panic_is_no_answer_quoting_the_console(fake_qemu: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_QEMU_MODE", "panic")
    start = time.monotonic()
    res = _boot(fake_qemu)
    assert res.status is AppStatus.NO_ANSWER
    assert "Attempted to kill init" in res.detail
    assert time.monotonic() - start < 15  # QEMU's exit ends the asking


def test_retry_stops_at_a_real_answer(fake_qemu: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_QEMU_MODE", "wrong")
    calls: list[Path] = []

    def once(log: Path) -> httpproof.AppBoot:
        calls.append(log)
        return httpproof.boot_and_ask(fake_qemu / "bzImage", None, guest_port=80,
                                      url_path="/proof.bin", expected=BODY, log_path=log,
                                      timeout=30, accel="tcg")

    res, n = httpproof.with_retry(once, fake_qemu, "nginx-classic", retries=1)
    assert res.status is AppStatus.FAIL and n == 1 and len(calls) == 1
    monkeypatch.setenv("FAKE_QEMU_MODE", "panic")
    res, n = httpproof.with_retry(once, fake_qemu, "nginx-classic", retries=1)
    assert res.status is AppStatus.NO_ANSWER and n == 2
    assert calls[-1].name == "boot-nginx-classic-2.log"
