"""`patchbot worker`: run queued jobs (the same pipeline as `patchbot check` / `rebase`)."""

from __future__ import annotations

import argparse
import logging
import os
import threading


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "worker",
        help="run jobs queued by `patchbot serve` and report them on GitHub",
        description="Take jobs from the queue (PATCHBOT_QUEUE_URL; default SQLite in the cache"
        " dir), run them, report on GitHub. Several workers may share a Redis queue.",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="jobs run at once in this process (default 1; builds are heavy)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="run what is queued now, then exit (instead of waiting for more)",
    )
    p.add_argument(
        "--executor",
        metavar="MODULE:FUNCTION",
        help="run jobs with this function instead of ukl_patchbot.dispatch.execute.execute_job",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ukl_patchbot.bot.jobqueue import JobQueue, queue_url_from_env
    from ukl_patchbot.bot.worker import BotWorker, WorkerSettings, load_executor
    from ukl_patchbot.commands.serve import cache_dir_for
    from ukl_patchbot.core import config
    from ukl_patchbot.core.secrets import install_log_redaction, isolate, scrub_environment
    from ukl_patchbot.dispatch import prsource
    from ukl_patchbot.github.client import Credentials, GitHubClient

    # Re-executes this command once without the secrets in its environment (/proc/<pid>/environ).
    isolate()
    cfg = config.load(args.config)
    settings = WorkerSettings.from_env()
    creds = Credentials.from_env()
    # Secrets are in memory now; build and boot processes must not inherit them.
    scrub_environment()
    if args.verbose == 0:
        logging.getLogger("ukl_patchbot").setLevel(logging.INFO)
    install_log_redaction()
    queue = JobQueue(queue_url_from_env(cache_dir_for(args.config)))
    # PATCHBOT_GITHUB_PACE=0 drops PyGithub's ~1 s spacing of writes (for a local fake GitHub).
    pace = os.environ.get("PATCHBOT_GITHUB_PACE", "1") != "0"
    gh = GitHubClient(creds, pace=pace)
    # The pipeline reads pull requests' series through this client: the environment no
    # longer holds the credentials.
    prsource.use_github(gh)
    worker = BotWorker(queue, cfg, gh, load_executor(args.executor), settings)
    stale = worker.stale_queued_after
    counts = queue.reap(settings.max_attempts, stale)
    print(
        f"patchbot worker {worker.owner}: started; took back {counts['requeued']} job(s) of dead"
        f" workers, gave up {counts['failed']}",
        flush=True,
    )
    if args.once:
        queue.drain(timeout=24 * 3600)
        return 0
    stop = threading.Event()

    def reaper() -> None:
        while not stop.wait(max(settings.lease / 2, 0.5)):
            try:
                queue.reap(settings.max_attempts, stale)
            except Exception:
                logging.getLogger(__name__).exception("reaper failed")

    threading.Thread(target=reaper, name="patchbot-reaper", daemon=True).start()
    consumer = queue.huey.create_consumer(
        workers=max(1, args.threads),
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        backoff=1.5,
        max_delay=1.0,
        check_worker_health=True,
    )
    try:
        consumer.run()  # returns on SIGTERM / SIGINT after the running jobs finish
    finally:
        stop.set()
    return 0
