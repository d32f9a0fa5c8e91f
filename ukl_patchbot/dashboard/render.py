"""The dashboard pages as HTML (Jinja2 with autoescaping: report text is never trusted).

Both the served dashboard and the static site call these: the pages are the
same, only where log links point differs (``LogLinks``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from ukl_patchbot.dashboard import plots, views
from ukl_patchbot.dashboard.markdown import render_report
from ukl_patchbot.history.model import CheckRecord

STATIC_DIR = Path(__file__).parent / "static"

# (check, index of the log, its path) -> href, or None when it cannot be linked
LogLinks = Callable[[CheckRecord, int, str], str | None]


def file_links(_check: CheckRecord, _i: int, path: str) -> str | None:
    """Links for the static site: the log on the machine that ran the check."""
    return Path(path).as_uri() if Path(path).is_absolute() else None


def _num(x: float | None, digits: int) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _kib(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024:,.0f}"


@functools.lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=PackageLoader("ukl_patchbot.dashboard", "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.globals.update(num=_num, kib=_kib)
    return env


def _page(name: str, page: str, root: str, count: int, **ctx: Any) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _env().get_template(name).render(page=page, root=root, count=count,
                                            generated=generated, **ctx)


def matrix_page(checks: Sequence[CheckRecord]) -> str:
    return _page("matrix.html", "matrix", "", len(checks), m=views.matrix(checks))


def trends_page(checks: Sequence[CheckRecord]) -> str:
    points = views.trend_points(checks)
    tcg = any(p.check.accel == "tcg" for p in points)
    return _page("trends.html", "trends", "", len(checks), points=points,
                 plots=plots.render_all(points), tcg=tcg)


def findings_page(checks: Sequence[CheckRecord]) -> str:
    return _page("findings.html", "findings", "", len(checks), rows=views.findings(checks))


def check_page(check: CheckRecord, count: int, links: LogLinks = file_links) -> str:
    logs = [(label, links(check, i, path)) for i, (label, path) in enumerate(check.logs)]
    return _page("check.html", "check", "../", count, c=check, logs=logs,
                 report_html=render_report(check.report_md))
