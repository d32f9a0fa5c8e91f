"""The webhook load test (tests/bench/bench_webhook.py) as part of the suite.

Here it checks what must hold on any machine: all 500 deliveries acknowledged,
none lost, redeliveries and same-job deliveries collapsed. The 100 ms p99
target is the bench script's own check; on a machine shared with kernel builds
the suite allows 1 s so a busy neighbour cannot fail CI (the figures are printed).
"""

from __future__ import annotations

import pytest

from tests.bench.bench_webhook import run


def test_500_deliveries_at_concurrency_20(capsys: pytest.CaptureFixture[str]) -> None:
    figures = run(n=500, concurrency=20, p99_limit_ms=1000.0)
    assert figures["accepted"] == 400 and figures["duplicates"] == 100
    with capsys.disabled():
        print("\n" + capsys.readouterr().out)
