from __future__ import annotations

from pathlib import Path

import pytest

from ukl_patchbot.core import runner
from ukl_patchbot.core.errors import CommandFailed, InfraError


def test_streams_to_log_and_keeps_tail(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "cmd.log"
    lines: list[str] = []
    res = runner.run(
        ["sh", "-c", "for i in $(seq 1 30); do echo line$i; done"],
        cwd=tmp_path,
        log_path=log,
        on_line=lines.append,
    )
    assert res.ok
    assert res.tail[-1] == "line30" and len(res.tail) == runner.TAIL_LINES
    assert len(lines) == 30
    text = log.read_text()
    assert text.startswith("$ sh -c") and "line1\n" in text


def test_timeout_kills_process_group(tmp_path: Path) -> None:
    res = runner.run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5, log_path=tmp_path / "l")
    assert res.timed_out and not res.ok
    assert res.duration < 10
    assert "killed after timeout" in (tmp_path / "l").read_text()


def test_check_raises_with_tail() -> None:
    with pytest.raises(CommandFailed) as ei:
        runner.run(["sh", "-c", "echo boom >&2; exit 3"], capture=True, check=True)
    assert ei.value.returncode == 3 and "boom" in str(ei.value)


def test_missing_tool_is_infra_error() -> None:
    with pytest.raises(InfraError, match="no-such-tool-xyz"):
        runner.run(["no-such-tool-xyz"], capture=True)
