"""The webhook receiver: verify, route, enqueue, answer. Nothing slow happens here.

GitHub waits at most 10 s for an answer and does not resend on its own, so the
handler does only what proves the event authentic and records it durably:

1. body size (413), 2. ``X-Hub-Signature-256`` HMAC over the raw body (401),
3. content type and JSON (400), 4. route the event (204 when it needs no work),
5. refuse repositories that are not ours (403), 6. de-duplicate on
``X-GitHub-Delivery`` and the job identity and enqueue (202; 200 for a
duplicate). Permission checks and file lists need the GitHub API and are done
by the worker. A signed payload never gives a 500: JSON nested too deeply is a
400, and the router checks every field's type.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Request, Response, jsonify, request

from ukl_patchbot.bot.routing import Ignored, Pong, Trigger, route
from ukl_patchbot.bot.trust import BotPolicy
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.secrets import read_secret

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 5 * 1024 * 1024  # GitHub caps payloads at 25 MB; ours are far smaller
_DELIVERY = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_EVENT = re.compile(r"^[a-z_]{1,64}$")

Submit = Callable[[Trigger], str]  # returns "queued" or "duplicate"


@dataclass(frozen=True)
class WebhookSettings:
    secret: bytes
    max_body: int = DEFAULT_MAX_BODY
    bot_login: str | None = None
    # Repositories we serve (lower-cased owner/name): events of any other are refused.
    repositories: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "repositories", frozenset(r.lower() for r in self.repositories))

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, config_path: Path | None = None
    ) -> WebhookSettings:
        """Read the secret (required) and limits from the environment, repositories from
        ``[bot]`` of the configuration (or ``PATCHBOT_REPOSITORIES``)."""
        import os

        env = os.environ if env is None else env
        secret = read_secret("PATCHBOT_WEBHOOK_SECRET", env)
        if not secret:
            raise UserError(
                "no webhook secret: refusing to accept unauthenticated webhooks",
                hint="set PATCHBOT_WEBHOOK_SECRET (or PATCHBOT_WEBHOOK_SECRET_FILE naming a file"
                " that holds it) to the secret configured in the GitHub App or repository webhook",
            )
        try:
            max_body = int(env.get("PATCHBOT_WEBHOOK_MAX_BYTES") or DEFAULT_MAX_BODY)
        except ValueError:
            raise UserError("PATCHBOT_WEBHOOK_MAX_BYTES must be a number of bytes") from None
        return cls(
            secret=secret.encode(),
            max_body=max_body,
            bot_login=env.get("PATCHBOT_BOT_LOGIN") or None,
            repositories=BotPolicy.load(config_path, env).repositories,
        )


def signature_for(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of ``header`` against the HMAC of ``body``."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature_for(secret, body).encode(), header.encode())


def _problem(status: int, message: str) -> Response:
    resp = jsonify({"status": status, "message": message})
    resp.status_code = status
    return resp


def _parse_body(req: Request, body: bytes) -> dict[str, Any] | None:
    """The JSON payload for the two content types GitHub sends; None when malformed."""
    ctype = (req.mimetype or "").lower()
    try:
        if ctype == "application/json":
            data = json.loads(body)
        elif ctype == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
            if list(form) != ["payload"] or len(form["payload"]) != 1:
                return None
            data = json.loads(form["payload"][0])
        else:
            return None
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the interpreter's limit (a 100k-deep list).
        return None
    return data if isinstance(data, dict) else None


def create_app(settings: WebhookSettings, submit: Submit) -> Flask:
    """The Flask app. ``submit`` records a trigger durably (`JobQueue.submit_trigger`)."""
    app = Flask("ukl_patchbot.bot.webhook")
    # Werkzeug refuses to read a body over this size, whatever the Content-Length says.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.post("/webhook")
    def webhook() -> Response:
        delivery = request.headers.get("X-GitHub-Delivery", "")
        event = request.headers.get("X-GitHub-Event", "")
        if request.content_length is not None and request.content_length > settings.max_body:
            log.warning(
                "delivery %.64s: body of %d bytes refused (limit %d)",
                delivery,
                request.content_length,
                settings.max_body,
            )
            return _problem(413, f"body larger than {settings.max_body} bytes")
        body = request.get_data(cache=False)  # raises 413 itself on an over-long chunked body
        if not signature_ok(settings.secret, body, request.headers.get("X-Hub-Signature-256")):
            log.warning(
                "delivery %.64s: missing or bad signature from %s", delivery, request.remote_addr
            )
            return _problem(401, "missing or invalid X-Hub-Signature-256")
        if not _DELIVERY.match(delivery) or not _EVENT.match(event):
            return _problem(400, "missing or malformed X-GitHub-Delivery / X-GitHub-Event")
        payload = _parse_body(request, body)
        if payload is None:
            return _problem(400, "body is not a JSON object in a content type GitHub sends")
        try:
            decision = route(event, delivery, payload, bot_login=settings.bot_login)
        except RecursionError:
            return _problem(400, "payload nested too deeply")
        if isinstance(decision, Pong):
            log.info("delivery %s: ping", delivery)
            return jsonify({"status": "pong"})
        if isinstance(decision, Ignored):
            log.info("delivery %s: %s event ignored: %s", delivery, event, decision.reason)
            return Response(status=204)
        if decision.repo.lower() not in settings.repositories:
            log.warning(
                "delivery %s: %s event for %s refused: not one of the repositories this bot"
                " serves (add it to [bot] repositories in patchbot.toml or"
                " PATCHBOT_REPOSITORIES)",
                delivery,
                event,
                decision.repo,
            )
            return _problem(403, f"repository {decision.repo} is not served here")
        try:
            result = submit(decision)
        except InfraError as exc:
            # 503 makes GitHub record a failed delivery that can be redelivered.
            log.error("delivery %s: %s", delivery, exc)
            return _problem(503, "queue unavailable; redeliver later")
        log.info(
            "delivery %s: %s %s %s PR %s: %s",
            delivery,
            event,
            decision.command,
            decision.repo,
            decision.pr,
            result,
        )
        if result == "duplicate":
            return jsonify({"status": "duplicate"})
        resp = jsonify({"status": "queued"})
        resp.status_code = 202
        return resp

    @app.errorhandler(413)
    def too_large(_exc: Exception) -> Response:
        return _problem(413, f"body larger than {settings.max_body} bytes")

    return app


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client may hold of the server (slow-client resistance).

    waitress closes a connection only after ``channel_timeout`` of *silence*, so a
    client sending one header byte every few seconds held its slot for ever, and
    110 of them filled waitress's 100 connections. Here every request must be
    complete ``request_timeout`` seconds after the connection opened (or after
    the previous request on it), one address may hold ``per_address``
    connections, and the server holds up to ``total`` at once.
    """

    request_timeout: float = 10.0
    per_address: int = 32
    total: int = 1000


def make_server(
    app: Flask,
    host: str,
    port: int,
    *,
    threads: int = 4,
    max_body: int = DEFAULT_MAX_BODY,
    limits: ConnectionLimits = ConnectionLimits(),
) -> Any:
    """A waitress server for ``app`` with `ConnectionLimits`; ``.run()`` serves until closed."""
    from waitress.adjustments import Adjustments
    from waitress.channel import HTTPChannel
    from waitress.server import TcpWSGIServer
    from waitress.task import ThreadedTaskDispatcher

    class GuardedChannel(HTTPChannel):  # type: ignore[misc]
        def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
            super().__init__(server, sock, addr, adj, map=map)
            self.request_began = self.creation_time
            peer = addr[0] if isinstance(addr, tuple) else addr
            same = sum(
                1
                for c in server.active_channels.values()
                if isinstance(c.addr, tuple) and c.addr[0] == peer
            )
            if same > limits.per_address:
                log.warning("connection from %s refused: %d open (limit %d)", peer, same - 1,
                            limits.per_address)
                self.handle_close()

        def received(self, data: bytes) -> bool:
            had = bool(self.requests)
            result = super().received(data)
            if self.requests and not had:
                self.request_began = time.time()  # complete: the next one gets a fresh budget
            return bool(result)

    class GuardedServer(TcpWSGIServer):  # type: ignore[misc]
        channel_class = GuardedChannel

        def maintenance(self, now: float) -> None:
            super().maintenance(now)
            cutoff = now - limits.request_timeout
            for channel in list(self.active_channels.values()):
                if not channel.requests and getattr(channel, "request_began", now) < cutoff:
                    if channel.request is not None:
                        log.warning("connection from %s closed: request not complete in %.0fs",
                                    channel.addr, limits.request_timeout)
                    channel.will_close = True

    adj = Adjustments(
        host=host,
        port=port,
        threads=threads,
        # waitress buffers each request fully before the app sees it (slow clients
        # cannot hold a worker thread) and drops bodies over this size itself.
        max_request_body_size=max_body + 1,
        channel_timeout=30,
        cleanup_interval=1,  # how often the request deadline is checked
        connection_limit=limits.total,
        ident="patchbot",
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    (sockinfo,) = adj.listen[:1]
    return GuardedServer(app, {}, True, None, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)


def serve(
    app: Flask,
    host: str,
    port: int,
    *,
    threads: int = 4,
    max_body: int = DEFAULT_MAX_BODY,
    ready: Callable[[str, int], None] | None = None,
    limits: ConnectionLimits = ConnectionLimits(),
) -> None:
    """Run ``app`` under waitress until interrupted."""
    server = make_server(app, host, port, threads=threads, max_body=max_body, limits=limits)
    if ready is not None:
        ready(server.effective_host, server.effective_port)
    server.run()
