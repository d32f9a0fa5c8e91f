"""`patchbot serve`: the GitHub webhook receiver (Flask app under waitress)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "serve",
        help="receive GitHub webhooks and queue jobs",
        description="Verify GitHub webhook deliveries, route them and queue jobs for"
        " `patchbot worker`. Needs PATCHBOT_WEBHOOK_SECRET or PATCHBOT_WEBHOOK_SECRET_FILE.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    # Requests are short and CPU-bound (HMAC, JSON, one SQLite commit): more threads than
    # cores only add GIL contention. waitress buffers slow clients before a thread sees them.
    p.add_argument("--threads", type=int, default=4, help="request threads (default 4)")
    p.set_defaults(func=run)


def cache_dir_for(config_path: Path | None) -> Path:
    """The configured cache dir, or the default one when there is no patchbot.toml."""
    from ukl_patchbot.core import config
    from ukl_patchbot.core.errors import UserError

    try:
        return config.load(config_path).cache_dir
    except UserError:
        if config_path is not None:
            raise
        import os

        env = os.environ.get("PATCHBOT_CACHE_DIR")
        return Path(env) if env else config.default_cache_dir()


def run(args: argparse.Namespace) -> int:
    from ukl_patchbot.bot.jobqueue import JobQueue, queue_url_from_env
    from ukl_patchbot.bot.webhook import WebhookSettings, create_app, serve
    from ukl_patchbot.core.secrets import install_log_redaction, isolate, scrub_environment

    # Re-executes this command once without the secrets in its environment (/proc/<pid>/environ).
    isolate()
    settings = WebhookSettings.from_env(config_path=args.config)
    scrub_environment()
    if args.verbose == 0:
        logging.getLogger("ukl_patchbot").setLevel(logging.INFO)
    install_log_redaction()
    url = queue_url_from_env(cache_dir_for(args.config))
    queue = JobQueue(url)
    # Deliveries recorded but not queued when an earlier serve died: queue them now.
    recovered = queue.drain_outbox()
    if recovered:
        logging.getLogger(__name__).warning(
            "queued %d delivery(ies) a crash had kept back", recovered
        )
    app = create_app(settings, lambda trigger: str(queue.submit_trigger(trigger)))
    # issue 14: the read-only results dashboard at /
    from ukl_patchbot.commands.dashboard import history_opener
    from ukl_patchbot.dashboard import web as dashboard_web

    dashboard_web.register(app, history_opener(args.config))

    served = ", ".join(sorted(settings.repositories)) or "none (every event is refused)"

    def ready(host: str, port: int) -> None:
        print(
            f"patchbot serve: listening on http://{host}:{port}/webhook (queue {url.split('://')[0]};"
            f" repositories served: {served})",
            flush=True,
        )

    serve(app, args.host, args.port, threads=args.threads, max_body=settings.max_body, ready=ready)
    return 0
