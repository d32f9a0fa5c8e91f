"""A stand-in for qemu-system-x86_64 whose "guest" is a web server behind the host forward.

Run as a script with QEMU's command line. It reads the ``hostfwd`` port of
``-netdev`` and the QMP socket of ``-qmp``, prints a few console lines, then
behaves as FAKE_QEMU_MODE says:

- ``good``: serves FAKE_QEMU_BODY (a file) on the forwarded port after a delay
- ``wrong``: serves the same file with its last byte changed
- ``silent``: never listens (no answer), until QMP says quit or it is killed
- ``panic``: prints a kernel panic and exits, as QEMU does with -no-reboot

It exits 0 when a QMP client sends ``quit``, as QEMU does.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import sys
import threading
import time

FAKE = __file__


def _arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _serve(port: int, body: bytes) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/proof.bin" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()


def _qmp(path: str) -> None:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    while True:
        conn, _ = srv.accept()
        f = conn.makefile("rwb")
        f.write(b'{"QMP": {"version": {}}}\n')
        f.flush()
        for line in f:
            cmd = json.loads(line)["execute"]
            f.write(b'{"return": {}}\n')
            f.flush()
            if cmd == "quit":
                print("qemu: terminating on QMP quit", flush=True)
                os._exit(0)


def main(argv: list[str]) -> None:
    port = int(re.search(r"hostfwd=tcp:127\.0\.0\.1:(\d+)-", _arg(argv, "-netdev")).group(1))  # type: ignore[union-attr]
    qmp = re.match(r"unix:([^,]+),", _arg(argv, "-qmp")).group(1)  # type: ignore[union-attr]
    threading.Thread(target=_qmp, args=(qmp,), daemon=True).start()
    mode = os.environ.get("FAKE_QEMU_MODE", "good")
    print("Linux version 6.1.0 (fake)", flush=True)
    print(f"command line: {_arg(argv, '-append')}", flush=True)
    if mode == "panic":
        print("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100", flush=True)
        sys.exit(0)
    if mode in ("good", "wrong"):
        with open(os.environ["FAKE_QEMU_BODY"], "rb") as f:
            body = f.read()
        if mode == "wrong":
            body = body[:-1] + bytes([body[-1] ^ 1])
        time.sleep(float(os.environ.get("FAKE_QEMU_DELAY", "1")))
        _serve(port, body)
        print("nginx: [notice] using the \"epoll\" event method", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1:])
