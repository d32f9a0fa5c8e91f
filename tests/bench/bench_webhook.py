"""Load test of `patchbot serve`: 500 signed deliveries at concurrency 20 on loopback.

Runs the real command (`python -m ukl_patchbot serve`, waitress + Flask + the
SQLite queue) in a subprocess and a bare waitress app that answers 202 at once
as the baseline, measured in the same run. Of the 500 deliveries, 50 are
GitHub-style redeliveries (same X-GitHub-Delivery) and 50 carry the same
job identity (repo, PR, head sha) under a new delivery id: both must collapse.

Checks: every delivery acknowledged (202 or 200 duplicate), p99 acknowledgement
under 100 ms, exactly 400 triggers queued (none lost, duplicates collapsed).

Usage: .venv/bin/python tests/bench/bench_webhook.py [--n 500] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers.octokit_specs import examples
from tests.helpers.webhook_client import SECRET, deliver, sign, start_app


def plan(n: int) -> list[tuple[str, dict[str, Any]]]:
    """(delivery id, payload): n - 2*(n//10) distinct jobs, n//10 redeliveries, n//10 same-job."""
    base = next(examples("pull_request", "opened"))
    unique = n - 2 * (n // 10)
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(unique):
        p = json.loads(json.dumps(base))
        p["number"] = p["pull_request"]["number"] = 1000 + i
        p["pull_request"]["head"]["sha"] = f"{i:040x}"
        out.append((f"bench-{i}", p))
    for i in range(n // 10):
        out.append(out[i])  # GitHub redelivery: same id, same body
        did, p = out[i + n // 10]
        out.append((f"{did}-again", p))  # new delivery id, same repo/PR/sha/command
    return out


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def fire(
    url: str, deliveries: list[tuple[str, dict[str, Any]]], concurrency: int
) -> tuple[list[float], list[int], float]:
    # Bodies and signatures are made before the clock starts: the figures are the server's.
    signed = [
        (did, body, sign(body))
        for did, body in ((d, json.dumps(p).encode()) for d, p in deliveries)
    ]

    def one(item: tuple[str, bytes, str]) -> tuple[float, int]:
        did, body, sig = item
        t0 = time.perf_counter()
        ans = deliver(url, "pull_request", body=body, signature=sig, delivery=did, timeout=10)
        return time.perf_counter() - t0, ans.status

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, signed))
    wall = time.perf_counter() - t0
    return [r[0] for r in results], [r[1] for r in results], wall


def start_patchbot_serve(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "PATCHBOT_WEBHOOK_SECRET": SECRET,
        "PATCHBOT_CACHE_DIR": str(tmp),
        "PATCHBOT_QUEUE_URL": f"sqlite:///{tmp / 'queue.sqlite3'}",
        "PYTHONPATH": str(ROOT),
        # The octokit example payloads' repository: events of any other are refused (403).
        "PATCHBOT_REPOSITORIES": "Codertocat/Hello-World",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ukl_patchbot", "serve", "--port", "0"],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "patchbot serve: listening on http://127.0.0.1:PORT/webhook"
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"patchbot serve did not start: {line!r}")
    url = line.split("listening on ")[1].split("/webhook")[0]
    return proc, url


def start_bare_server() -> tuple[Any, str]:
    """The floor: waitress with a WSGI app that answers 202 without looking at the body."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read()
        start_response("202 Accepted", [("Content-Type", "application/json")])
        return [b'{"status":"queued"}']

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" noise
    running = start_app(app, threads=4)
    return running, running.url


def summarize(name: str, lat: list[float], wall: float) -> dict[str, float]:
    fig = {
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": percentile(lat, 95) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": max(lat) * 1000,
        "rate_per_s": len(lat) / wall,
    }
    print(
        f"{name:>16}: p50 {fig['p50_ms']:6.1f} ms  p95 {fig['p95_ms']:6.1f} ms  "
        f"p99 {fig['p99_ms']:6.1f} ms  max {fig['max_ms']:6.1f} ms  "
        f"{fig['rate_per_s']:6.0f} deliveries/s"
    )
    return fig


def run(n: int = 500, concurrency: int = 20, p99_limit_ms: float = 100.0) -> dict[str, Any]:
    """Run the benchmark; returns the figures. Raises AssertionError when a check fails."""
    deliveries = plan(n)
    bare, bare_url = start_bare_server()
    try:
        fire(bare_url, deliveries[:50], concurrency)  # warm-up
        bare_lat, _, bare_wall = fire(bare_url, deliveries, concurrency)
    finally:
        bare.stop()
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as d:
        tmp = Path(d)
        proc, url = start_patchbot_serve(tmp)
        try:
            lat, statuses, wall = fire(url, deliveries, concurrency)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        from ukl_patchbot.bot.jobqueue import JobQueue

        queue = JobQueue(f"sqlite:///{tmp / 'queue.sqlite3'}")
        queued_tasks = queue.pending()
        # Every delivery id is recorded; one repeating a live job identity is closed at once.
        parked = sum(
            1 for k in queue.ledger.kv.keys("trg:")
            if "duplicate_of" not in (queue.ledger.kv.get(k) or {})
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{n} signed deliveries, concurrency {concurrency}, loopback; "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    base = summarize("bare waitress", bare_lat, bare_wall)
    fig = summarize("patchbot serve", lat, wall)
    accepted, dup = statuses.count(202), statuses.count(200)
    print(
        f"acknowledged {accepted + dup}/{n} (202 queued {accepted}, 200 duplicate {dup}); "
        f"queued tasks {queued_tasks}, parked triggers {parked}"
    )
    print(
        f"ratio patchbot/bare: p50 x{fig['p50_ms'] / base['p50_ms']:.2f}, "
        f"p99 x{fig['p99_ms'] / base['p99_ms']:.2f}, "
        f"throughput x{fig['rate_per_s'] / base['rate_per_s']:.2f}"
    )
    expect_unique = n - 2 * (n // 10)
    assert accepted + dup == n, f"not all acknowledged: {sorted(set(statuses))}"
    assert accepted == expect_unique and dup == n - expect_unique, (accepted, dup)
    assert queued_tasks == parked == expect_unique, (queued_tasks, parked)
    assert fig["p99_ms"] < p99_limit_ms, f"p99 {fig['p99_ms']:.1f} ms over {p99_limit_ms} ms"
    return {"patchbot": fig, "bare": base, "accepted": accepted, "duplicates": dup}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--p99-limit-ms", type=float, default=100.0)
    args = ap.parse_args()
    try:
        run(args.n, args.concurrency, args.p99_limit_ms)
    except AssertionError as exc:
        print(f"FAILED: {exc}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
