"""The dashboard served by `patchbot serve` at ``/``: read-only pages over the history.

Nothing here writes, and no page needs a login: the history holds no secret.
The history is opened on the first request (the webhook keeps working when
the database is down; the dashboard answers 503 until it is back). Logs are
served by their index in the check's record, never by a path from the URL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, send_from_directory

from ukl_patchbot.core.errors import PatchbotError
from ukl_patchbot.dashboard import render
from ukl_patchbot.history.model import CheckRecord
from ukl_patchbot.history.store import HistoryStore

log = logging.getLogger(__name__)

# No script runs on these pages; inline styles come from matplotlib's SVG.
CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
LOG_SUFFIXES = (".log", ".md", ".json", ".txt")


class LazyStore:
    """Opens the history once, on first use, and again after a failure."""

    def __init__(self, opener: Callable[[], HistoryStore]) -> None:
        self._opener = opener
        self._store: HistoryStore | None = None
        self._lock = threading.Lock()

    def get(self) -> HistoryStore:
        with self._lock:
            if self._store is None:
                self._store = self._opener()
            return self._store


def _served_links(check: CheckRecord, i: int, path: str) -> str | None:
    p = Path(path)
    return f"../runs/{check.id}/{i}/{p.name}" if p.suffix in LOG_SUFFIXES else None


def _html(text: str) -> Response:
    return Response(text, mimetype="text/html")


def blueprint(store: LazyStore) -> Blueprint:
    bp = Blueprint("dashboard", __name__, static_folder=None)

    def history() -> HistoryStore:
        try:
            return store.get()
        except PatchbotError as exc:
            log.error("dashboard: %s", exc)
            abort(503)

    @bp.get("/")
    @bp.get("/index.html")
    def matrix() -> Response:
        return _html(render.matrix_page(history().checks()))

    trends_cache: dict[object, str] = {}

    @bp.get("/trends.html")
    def trends() -> Response:
        # The plots cost a fraction of a second of CPU: drawn again only when the
        # history changed, so reloading the page cannot keep the server busy.
        h = history()
        key = h.version()
        page = trends_cache.get(key)
        if page is None:
            page = render.trends_page(h.checks())
            trends_cache.clear()
            trends_cache[key] = page
        return _html(page)

    @bp.get("/findings.html")
    def findings() -> Response:
        return _html(render.findings_page(history().checks()))

    @bp.get("/checks/<int:check_id>.html")
    def check(check_id: int) -> Response:
        h = history()
        c = h.check(check_id)
        if c is None:
            abort(404)
        return _html(render.check_page(c, h.count(), _served_links))

    @bp.get("/runs/<int:check_id>/<int:index>/<name>")
    def run_log(check_id: int, index: int, name: str) -> Response:
        c = history().check(check_id)
        if c is None or index >= len(c.logs):
            abort(404)
        path = Path(c.logs[index][1])
        if path.name != name or path.suffix not in LOG_SUFFIXES or not path.is_file():
            abort(404)
        resp = send_from_directory(path.parent, path.name, mimetype="text/plain")
        resp.headers["Content-Type"] = "text/plain; charset=utf-8"
        return resp

    # Not /static: the webhook's Flask app keeps that route for itself.
    @bp.get("/assets/<path:name>")
    def assets(name: str) -> Response:
        return send_from_directory(render.STATIC_DIR, name)

    @bp.get("/favicon.ico")  # asked for by browsers on pages without <link rel=icon> (logs)
    def favicon() -> Response:
        return send_from_directory(render.STATIC_DIR, "favicon.svg", mimetype="image/svg+xml")

    @bp.after_request
    def headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        return resp

    return bp


def register(app: Flask, opener: Callable[[], HistoryStore]) -> None:
    """Serve the dashboard from ``app`` at ``/`` (next to the webhook)."""
    app.register_blueprint(blueprint(LazyStore(opener)))
