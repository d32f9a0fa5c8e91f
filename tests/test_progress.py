"""Progress output: a redrawn status line on a terminal, timestamped lines otherwise."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from ukl_patchbot.core import progress


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_for_stream_picks_by_isatty() -> None:
    assert isinstance(progress.for_stream(TtyBuffer()), progress.TtyProgress)
    assert isinstance(progress.for_stream(io.StringIO()), progress.PlainProgress)


def test_plain_lines_are_timestamped_and_throttled() -> None:
    out, clock = io.StringIO(), FakeClock()
    p = progress.PlainProgress(out, clock, lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    p.step("build ukl")
    for i in range(100):  # many log lines within the heartbeat: none printed
        clock.t = i * 0.1
        p.line(f"  CC      file{i}.o")
    clock.t = 31.0
    p.line("  CC      kernel/fork.o")
    p.finish("build ukl", "ok", 31.0)
    lines = out.getvalue().splitlines()
    assert lines == [
        "2026-01-02T03:04:05Z build ukl: started",
        "2026-01-02T03:04:05Z build ukl: 31s: CC      kernel/fork.o",
        "2026-01-02T03:04:05Z build ukl: ok (31.0s)",
    ]


def test_tty_redraws_one_line_with_step_elapsed_and_log_line() -> None:
    out, clock = TtyBuffer(), FakeClock()
    p = progress.TtyProgress(out, clock)
    p.step("boot classic")
    clock.t = 1.5
    p.line("ukl-probe: start variant=classic cpl=3 pid=1")
    text = out.getvalue()
    assert "\r\x1b[K[   1.5s] boot classic: ukl-probe: start" in text
    assert "\n" not in text  # still on the status line
    p.finish("boot classic", "pass", 1.6)
    assert out.getvalue().endswith("\r\x1b[Kboot classic: pass (1.6s)\n")
