"""Progress display for long checks: a live status line on a terminal, timestamped lines in CI.

The pipeline reports steps and log lines to a `Progress`; only the CLI picks
the concrete kind and the stream (stderr), so library code still never prints.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

HEARTBEAT_S = 30.0  # plain mode: at most one "still working" line per step this often
REFRESH_S = 0.1  # tty mode: redraw at most this often


class Progress:
    """Silent base: the pipeline may always call these."""

    def step(self, name: str) -> None:
        """A new step starts (e.g. "build ukl")."""

    def line(self, text: str) -> None:
        """The current step printed a log line."""

    def finish(self, name: str, status: str, seconds: float) -> None:
        """A step ended with ``status``."""

    def close(self) -> None:
        """Leave the output clean (end a live status line)."""


class PlainProgress(Progress):
    """One timestamped line per event; for logs and CI where redrawing makes noise."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.stream = stream
        self.clock = clock
        self.now = now
        self._step = ""
        self._started = 0.0
        self._last_beat = 0.0
        self._lock = threading.Lock()

    def _emit(self, text: str) -> None:
        stamp = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        self.stream.write(f"{stamp} {text}\n")
        self.stream.flush()

    def step(self, name: str) -> None:
        with self._lock:
            self._step, self._started = name, self.clock()
            self._last_beat = self._started
            self._emit(f"{name}: started")

    def line(self, text: str) -> None:
        with self._lock:
            t = self.clock()
            if t - self._last_beat >= HEARTBEAT_S:
                self._last_beat = t
                self._emit(f"{self._step}: {t - self._started:.0f}s: {text.strip()[:160]}")

    def finish(self, name: str, status: str, seconds: float) -> None:
        with self._lock:
            self._emit(f"{name}: {status} ({seconds:.1f}s)")


class TtyProgress(Progress):
    """A status line redrawn in place: step, elapsed time, the current log line."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self._step = ""
        self._started = 0.0
        self._last_draw = 0.0
        self._lock = threading.Lock()

    def _draw(self, text: str) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        status = f"[{self.clock() - self._started:6.1f}s] {self._step}: {text.strip()}"
        self.stream.write("\r\x1b[K" + status[: max(10, width - 1)])
        self.stream.flush()

    def step(self, name: str) -> None:
        with self._lock:
            self._step, self._started = name, self.clock()
            self._draw("")

    def line(self, text: str) -> None:
        with self._lock:
            t = self.clock()
            if t - self._last_draw >= REFRESH_S:
                self._last_draw = t
                self._draw(text)

    def finish(self, name: str, status: str, seconds: float) -> None:
        with self._lock:
            self.stream.write(f"\r\x1b[K{name}: {status} ({seconds:.1f}s)\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def for_stream(stream: TextIO) -> Progress:
    """Live progress on a terminal, plain timestamped lines otherwise."""
    return TtyProgress(stream) if stream.isatty() else PlainProgress(stream)
