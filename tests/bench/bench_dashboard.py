"""Benchmark the dashboard's matrix page over a history of N recorded checks (default 500).

Seeds an SQLite history with synthetic checks (two lines, about two checks
per tag, some failures and flaky passes), then times, each the median of
--repeat runs in this process:
  bare read     the same rows read with plain sqlite3 (checks joined with variants):
                the floor for any page built from the history
  matrix        `HistoryStore.checks()` + the matrix view + the HTML page
  served        GET / through the dashboard blueprint (Flask test client)
and prints wall and CPU time (this shared machine is often loaded several times
over: CPU time is what a render costs, wall time what it took in this run) and the
CPU ratios to the bare read. Goal: matrix under 200 ms for 500 checks.

With --screenshot PNG, also writes the static site and saves chromium
screenshots of its matrix and trends pages (PNG and PNG with -trends).

Usage: .venv/bin/python tests/bench/bench_dashboard.py [--checks 500] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flask import Flask

from tests.helpers import reports
from ukl_patchbot.dashboard import render, views, web
from ukl_patchbot.history import model, store
from ukl_patchbot.history.model import Origin, Source


def seed(h: store.HistoryStore, n: int) -> None:
    """``n`` checks: tags v6.1.x and v6.12.x, about two checks each, figures drifting."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    tags = [f"v6.1.{100 + i}" for i in range(n // 4)] + [f"v6.12.{1 + i}" for i in range(n // 4)]
    for i in range(n):
        tag = tags[i % len(tags)]
        k = i % 17
        ukl = reports.variant("ukl", ns=38.0 + (i % 5), ttm=0.85 + k / 100, size=1_480_000 + k * 512,
                              build_s=55.0 + k, ok=k != 3, flaky=k == 7,
                              findings=(reports.finding(),) if k == 3 else ())
        classic = reports.variant("classic", ns=95.0 + (i % 7), ttm=1.1 + k / 80,
                                  size=990_000 + k * 700, build_s=120.0 + k)
        r = reports.report(tag, classic=classic, ukl=ukl)
        h.record(model.record_of(r, Origin(Source.TRACK, f"job-{i}"), {"linux": f"{i:012x}"},
                                 t0 + timedelta(hours=i)))


def median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU time of ``fn`` in ms (CPU time: what the render costs on an idle
    machine; wall time: what it took here, with whatever else the machine was running)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def screenshots(h: store.HistoryStore, png: Path, work: Path) -> None:
    from tests.helpers import browser
    from ukl_patchbot.dashboard import site

    site.write_site(h, work / "site")
    with browser.chromium(width=1100, height=900) as d:
        d.get((work / "site" / "index.html").as_uri())
        d.save_screenshot(str(png))
        d.get((work / "site" / "trends.html").as_uri())
        d.save_screenshot(str(png.with_name(png.stem + "-trends.png")))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--screenshot", type=Path, metavar="PNG")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "history.sqlite"
        h = store.open_store(f"sqlite:///{db}")
        t = time.perf_counter()
        seed(h, args.checks)
        print(f"seeded {args.checks} checks in {time.perf_counter() - t:.1f} s")

        def bare() -> object:
            with sqlite3.connect(db) as conn:
                return conn.execute("SELECT * FROM checks c JOIN check_variants v "
                                    "ON v.check_id = c.id ORDER BY c.recorded_at DESC").fetchall()

        def matrix() -> object:
            return render.matrix_page(h.checks())

        app = Flask("bench")
        web.register(app, lambda: h)
        client = app.test_client()

        def served() -> object:
            r = client.get("/")
            assert r.status_code == 200
            return r.data

        matrix()  # templates compiled, modules imported
        (bw, bc), (mw, mc), (sw, sc) = (median_ms(f, args.repeat) for f in (bare, matrix, served))
        rows = sum(len(g.rows) for g in views.matrix(h.checks()).groups)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"matrix of {rows} tags from {args.checks} checks (median of {args.repeat}; "
              f"load average {load} on {os.cpu_count()} CPUs):")
        print("                      wall ms   CPU ms   CPU vs bare")
        print(f"  bare sqlite3 read  {bw:8.1f} {bc:8.1f}")
        print(f"  matrix page        {mw:8.1f} {mc:8.1f}   {mc / bc:5.1f}x")
        print(f"  served GET /       {sw:8.1f} {sc:8.1f}   {sc / bc:5.1f}x")
        met = mc < 200
        print(f"goal: matrix under 200 ms of CPU: {'met' if met else 'MISSED'}")
        if args.screenshot:
            screenshots(h, args.screenshot, Path(tmp))
            print(f"screenshots: {args.screenshot}")
        h.close()
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
