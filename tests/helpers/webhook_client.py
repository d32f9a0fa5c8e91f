"""Sending webhook deliveries the way GitHub does, and a running `patchbot serve` app for tests."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ukl_patchbot.bot.jobqueue import JobQueue
from ukl_patchbot.bot.webhook import WebhookSettings, create_app

SECRET = "It's a Secret to Everybody"
# The repositories the test servers serve: the octokit examples' and the fakes'.
OUR_REPOS = frozenset({"codertocat/hello-world", "ukl/patches", "octocat/hello-world"})


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    base: str,
    event: str,
    payload: Any = None,
    *,
    body: bytes | None = None,
    delivery: str | None = None,
    secret: str | None = SECRET,
    signature: str | None = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> Answer:
    """POST one delivery to ``base``/webhook; ``signature`` overrides the computed one."""
    if body is None:
        body = json.dumps(payload).encode()
    headers = {
        "Content-Type": content_type,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "User-Agent": "GitHub-Hookshot/test",
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(body, secret)
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", "/webhook", body=body, headers=headers)
        resp = conn.getresponse()
        return Answer(resp.status, resp.read())
    finally:
        conn.close()


@dataclass
class RunningServer:
    url: str
    queue: JobQueue  # None for a bare app (start_app)
    stop: Any


def start_server(queue: JobQueue, settings: WebhookSettings, threads: int = 4) -> RunningServer:
    """`patchbot serve`'s app for ``queue`` under waitress on a free loopback port."""
    app = create_app(settings, lambda t: str(queue.submit_trigger(t)))
    running = start_app(app, threads=threads, max_body=settings.max_body)
    running.queue = queue
    return running


def start_app(app: Any, threads: int = 4, max_body: int = 5 * 1024 * 1024) -> RunningServer:
    """A WSGI app under waitress on a free loopback port, in a background thread."""
    from waitress.server import create_server

    server = create_server(
        app, host="127.0.0.1", port=0, threads=threads, max_request_body_size=max_body + 1
    )
    stopping = threading.Event()

    def serve() -> None:
        try:
            server.run()
        except OSError:
            # close() from another thread pulls the sockets from under select(): expected.
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        server.close()
        thread.join(timeout=5)

    return RunningServer(f"http://127.0.0.1:{server.effective_port}", None, stop)  # type: ignore[arg-type]


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[RunningServer]:
    """`patchbot serve`'s app on loopback with an SQLite queue in ``tmp_path``."""
    queue = JobQueue(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    running = start_server(
        queue,
        WebhookSettings(
            secret=SECRET.encode(),
            max_body=256 * 1024,
            bot_login="ukl-patchbot[bot]",
            repositories=OUR_REPOS,
        ),
    )
    try:
        yield running
    finally:
        running.stop()
