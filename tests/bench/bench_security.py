"""Benchmark the intake's crash safety and its slow-client resistance, on a real `patchbot serve`.

    .venv/bin/python tests/bench/bench_security.py [--rounds 20] [--per-round 200]

1. kill -9: each round sends ``--per-round`` signed pull_request deliveries (4 senders
   at once) to a real `patchbot serve` with an SQLite queue and kills it with SIGKILL at
   a random moment of the round; it is restarted at once and every delivery that got no
   2xx answer is sent again with the same delivery id, as GitHub's redelivery does.
   Counted over all rounds: acknowledged (2xx), lost (acknowledged but not in the queue
   after the last restart), queued twice (harmless: the worker starts a trigger by
   compare-and-set, so it still runs once), wrongly answered "duplicate" (answered so
   while its record was not in the queue). The goal: lost = wrong duplicates = 0.
2. slow clients: the time to answer a signed delivery with no other client (the bare
   figure), then while 110 connections from 127.0.0.2 each send one header line every
   0.5 s; the goal is < 1 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers.slow_clients import Trickle
from tests.helpers.webhook_client import sign
from ukl_patchbot.bot.jobqueue import JobQueue

SECRET = "bench-webhook-secret-0123456789abcdef"
REPO = "ukl/patches"


class Serve:
    def __init__(self, tmp: Path, queue_url: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHBOT_")}
        env.update(PYTHONPATH=str(ROOT), PATCHBOT_QUEUE_URL=queue_url,
                   PATCHBOT_WEBHOOK_SECRET=SECRET, PATCHBOT_REPOSITORIES=REPO)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ukl_patchbot", "serve", "--port", "0"],
            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError("serve did not start")
            if "listening on" in line:
                self.port = int(line.split("listening on ")[1].split("/webhook")[0].rsplit(":", 1)[1])
                break

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def post(port: int, delivery: str, n: int, timeout: float = 10.0) -> tuple[int, str]:
    sha = f"{n:040x}"
    body = json.dumps({
        "action": "synchronize", "number": 1 + n % 50,
        "pull_request": {"number": 1 + n % 50, "head": {"sha": sha}, "user": {"login": "a"}},
        "repository": {"full_name": REPO}, "sender": {"login": "a"},
    }).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/webhook", body=body, headers={
            "Content-Type": "application/json", "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body, SECRET)})
        resp = conn.getresponse()
        data = resp.read()
        status = json.loads(data).get("status", "") if resp.status in (200, 202) else ""
        return resp.status, str(status)
    finally:
        conn.close()


def crash_rounds(rounds: int, per_round: int) -> dict[str, int]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-security-"))
    url = f"sqlite:///{tmp / 'queue.sqlite3'}"
    ledger = JobQueue(url).ledger
    counts: Counter[str] = Counter()
    acked: set[str] = set()
    serial = 0
    server = Serve(tmp, url)
    for r in range(rounds):
        todo = [(f"r{r}-{i}", serial + i) for i in range(per_round)]
        serial += per_round
        lock = threading.Lock()
        killed = threading.Event()
        port = server.port

        def sender(items: list[tuple[str, int]], failed: list[tuple[str, int]],
                   port: int = port, lock: threading.Lock = lock) -> None:
            for did, n in items:
                try:
                    status, _answer = post(port, did, n)
                except (OSError, http.client.HTTPException):
                    failed.append((did, n))
                    continue
                if 200 <= status < 300:
                    with lock:
                        acked.add(did)
                else:
                    failed.append((did, n))

        failed: list[tuple[str, int]] = []
        threads = [threading.Thread(target=sender, args=(todo[i::4], failed)) for i in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.05, 2.0))
        server.kill()
        killed.set()
        for t in threads:
            t.join()
        counts["kill_after_ms"] += int((time.monotonic() - t0) * 1000)
        server = Serve(tmp, url)
        # GitHub's redelivery of everything not answered 2xx, same delivery ids.
        for did, n in failed:
            for _attempt in range(3):
                try:
                    status, answer = post(server.port, did, n)
                except (OSError, http.client.HTTPException):
                    continue
                if 200 <= status < 300:
                    acked.add(did)
                    if answer == "duplicate":
                        raw = ledger.kv.get(f"trg:{did}")
                        if raw is None or raw.get("enqueued") is False:
                            counts["wrong_duplicate"] += 1
                    break
        counts["redelivered"] += len(failed)
        print(f"round {r + 1}/{rounds}: {len(failed)} unanswered, redelivered", flush=True)
    server.stop()
    final = Serve(tmp, url)  # its start drains the outbox
    final.stop()
    queue = JobQueue(url)
    tasks: Counter[str] = Counter()
    while (task := queue.huey.dequeue()) is not None:
        tasks[str(task.args[0])] += 1
    counts["acknowledged"] = len(acked)
    counts["lost"] = sum(1 for d in acked if tasks[d] == 0)
    counts["queued_twice"] = sum(1 for d in acked if tasks[d] > 1)
    counts["unqueued_records"] = len(queue.ledger.unqueued_triggers())
    counts["deliveries"] = rounds * per_round
    return dict(counts)


def slow_clients(n: int = 110, samples: int = 20) -> tuple[list[float], list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    server = Serve(tmp, f"sqlite:///{tmp / 'queue.sqlite3'}")
    try:
        def timed(i: int) -> float:
            t = time.monotonic()
            post(server.port, f"s-{i}-{time.time_ns()}", i)
            return time.monotonic() - t

        bare = [timed(i) for i in range(samples)]
        slow = Trickle(server.port, n)
        time.sleep(1.0)
        try:
            loaded = [timed(1000 + i) for i in range(samples)]
        finally:
            slow.close()
        return bare, loaded
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=200)
    args = ap.parse_args()
    started = time.monotonic()
    c = crash_rounds(args.rounds, args.per_round)
    print(f"\nkill -9 of serve: {args.rounds} rounds x {args.per_round} deliveries")
    for k in ("deliveries", "acknowledged", "redelivered", "lost", "wrong_duplicate",
              "queued_twice", "unqueued_records"):
        print(f"  {k:18} {c.get(k, 0)}")
    bare, loaded = slow_clients()
    print("\nslow clients: signed delivery answer time (s), 20 samples each")
    print(f"  no other client     median {statistics.median(bare):.3f}  max {max(bare):.3f}")
    print(f"  110 slow clients    median {statistics.median(loaded):.3f}  max {max(loaded):.3f}"
          f"  (ratio of medians {statistics.median(loaded) / statistics.median(bare):.1f}x)")
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    ok = c.get("lost", 0) == 0 and c.get("wrong_duplicate", 0) == 0 and max(loaded) < 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
