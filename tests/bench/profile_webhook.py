"""Where a webhook delivery's time goes: the Flask app and the SQLite queue in-process,
without HTTP, under cProfile (issue 11: profile before changing anything).

Usage: .venv/bin/python tests/bench/profile_webhook.py [--n 400] [--top 25]
Prints the mean time per delivery and the functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_webhook import plan
from tests.helpers.webhook_client import SECRET, sign
from ukl_patchbot.bot.jobqueue import JobQueue
from ukl_patchbot.bot.webhook import WebhookSettings, create_app


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        queue = JobQueue(f"sqlite:///{Path(tmp) / 'queue.sqlite3'}")
        app = create_app(WebhookSettings(secret=SECRET.encode()), queue.submit_trigger)
        client = app.test_client()
        bodies = [(d, json.dumps(p).encode()) for d, p in plan(args.n)]
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for delivery, body in bodies:
            ans = client.post("/webhook", data=body, headers={
                "Content-Type": "application/json", "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body)})
            assert ans.status_code in (200, 202), ans.status_code
        prof.disable()
        wall = time.perf_counter() - t0
    print(f"{len(bodies)} deliveries in-process: {1000 * wall / len(bodies):.2f} ms each "
          "(profiled; includes cProfile overhead)")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
