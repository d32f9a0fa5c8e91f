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
    from ukl_patchbot.bot.runtime import WorkerSettings, load_executor
    from ukl_patchbot.bot.trust import BotPolicy
    from ukl_patchbot.bot.worker import BotWorker
    from ukl_patchbot.commands.serve import cache_dir_for
    from ukl_patchbot.core import config
    from ukl_patchbot.core.secrets import install_log_redaction, isolate, scrub_environment
    from ukl_patchbot.dispatch import prsource
    from ukl_patchbot.github.client import Credentials, GitHubClient

    # Re-executes this command once without the secrets in its environment (/proc/<pid>/environ).
    isolate()
    cfg = config.load(args.config)
    policy = BotPolicy.load(args.config)
    settings = WorkerSettings.from_env()
    creds = Credentials.from_env()
    # Secrets are in memory now; build and boot processes must not inherit them.
    scrub_environment()
    if args.verbose == 0:
        logging.getLogger("ukl_patchbot").setLevel(logging.INFO)
    install_log_redaction()
    url = queue_url_from_env(cache_dir_for(args.config))
    confine_builds(cfg, policy.sandbox, url)
    queue = JobQueue(url)
    # PATCHBOT_GITHUB_PACE=0 drops PyGithub's ~1 s spacing of writes (for a local fake GitHub).
    pace = os.environ.get("PATCHBOT_GITHUB_PACE", "1") != "0"
    gh = GitHubClient(creds, pace=pace)
    # The pipeline reads pull requests' series through this client: the environment no
    # longer holds the credentials.
    prsource.use_github(gh)
    worker = BotWorker(queue, cfg, gh, load_executor(args.executor), settings, policy=policy)
    stale = worker.stale_queued_after
    counts = queue.reap(settings.max_attempts, stale)
    served = ", ".join(sorted(policy.repositories)) or "none (every event is refused)"
    print(f"patchbot worker: repositories served: {served}; sandbox: {policy.sandbox}",
          flush=True)
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


def confine_builds(cfg: object, kind: str, queue_url: str) -> None:
    """Install the build sandbox for this worker, or refuse to start without one.

    Builds write only to the work tree, the glibc builds and ccache; they read the
    checkout (kconfig fragments) and the pull requests' files; the queue database is
    masked. ``kind == "none"`` (set on purpose in patchbot.toml) builds unconfined.
    """
    from pathlib import Path

    from ukl_patchbot.bot.ledger import sqlite_path
    from ukl_patchbot.core import sandbox
    from ukl_patchbot.core.config import Config

    assert isinstance(cfg, Config)
    if kind == "none":
        logging.getLogger(__name__).warning(
            "sandbox = \"none\": pull requests are built without a sandbox"
        )
        return
    db = sqlite_path(queue_url)
    hidden = tuple(Path(db + suffix) for suffix in ("", "-wal", "-shm")) if db else ()
    policy = sandbox.Policy(
        writable=(cfg.work_dir, cfg.cache_dir / "glibc", cfg.cache_dir / "ccache"),
        read_only=(cfg.root, cfg.cache_dir / "pr-trees"),
        hidden=hidden,
    )
    sandbox.require(policy)  # InfraError: the worker does not start without it
    sandbox.install(policy)
