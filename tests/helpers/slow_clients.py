"""Slow clients on loopback: connections that trickle one header line at a time at the
webhook server (the attack the server's connection limits answer; tests and the bench)."""

from __future__ import annotations

import socket
import threading
import time


class Trickle:
    """``n`` connections from ``source`` that each send a header line every ``every`` s."""

    def __init__(self, port: int, n: int, source: str = "127.0.0.2", every: float = 0.5) -> None:
        self.socks: list[socket.socket] = []
        self.closed_after: list[float] = []
        self.stop = threading.Event()
        self.started = time.monotonic()
        for _ in range(n):
            s = socket.socket()
            s.bind((source, 0))
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
                s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                s.close()
                continue
            self.socks.append(s)
        self.thread = threading.Thread(target=self._loop, args=(every,), daemon=True)
        self.thread.start()

    def _loop(self, every: float) -> None:
        i = 0
        while not self.stop.wait(every):
            i += 1
            for s in list(self.socks):
                try:
                    s.sendall(f"X-Slow-{i}: 1\r\n".encode())
                except OSError:
                    self.socks.remove(s)
                    self.closed_after.append(time.monotonic() - self.started)
                    s.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for s in self.socks:
            s.close()
