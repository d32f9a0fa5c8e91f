"""Trend plots as SVG, drawn on the server by matplotlib (no script, no CDN).

Each plotted series carries an SVG id (``trend-<plot>-<series>``), one marker
per tag that has a value, so a reader (or a test) can find its points.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ukl_patchbot.check import variant_records
from ukl_patchbot.dashboard.views import TrendPoint
from ukl_patchbot.history.model import CheckRecord

Value = Callable[[CheckRecord], float | None]

# matplotlib's global state (rcParams, font cache) is shared: one drawing at a time.
_LOCK = threading.Lock()
# Colours by a variant's role (variant records), so a new variant needs no edit here.
ROLE_COLOURS = {variant_records.Role.BASELINE: "#4c72b0", variant_records.Role.DELTA: "#dd8452"}
COLOURS = {v.name: ROLE_COLOURS[v.role] for v in variant_records.RECORDS} | {"ratio": "#55a868"}


@dataclass(frozen=True)
class Series:
    name: str  # a variant name, or "ratio"
    label: str
    value: Value


@dataclass(frozen=True)
class Plot:
    slug: str
    title: str
    unit: str
    series: tuple[Series, ...]


def _variant(name: str, attr: str, scale: float = 1.0) -> Value:
    def get(c: CheckRecord) -> float | None:
        v = c.variant(name)
        x = getattr(v, attr) if v is not None else None
        return None if x is None else float(x) * scale
    return get


def _both(attr: str, scale: float = 1.0) -> tuple[Series, ...]:
    return tuple(Series(v.name, v.name, _variant(v.name, attr, scale))
                 for v in variant_records.RECORDS)


PLOTS = (
    Plot("boot", "Boot to marker", "seconds", _both("time_to_marker")),
    Plot("syscall", "getppid cost, classic vs UKL", "ns per call", _both("ns_per_call")),
    Plot("ratio", "UKL / classic syscall cost ratio", "ratio (below 1: UKL cheaper)",
         (Series("ratio", "UKL / classic", lambda c: c.syscall_ratio),)),
    Plot("size", "Kernel image (bzImage) size", "KiB", _both("image_size", 1 / 1024)),
    Plot("build", "Build time (builds that ran, not cached)", "seconds",
         _both("build_duration")),
)

_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def render_svg(plot: Plot, points: Sequence[TrendPoint]) -> str:
    """``plot`` over ``points`` (oldest tag first) as an inline SVG element."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    # A tag is outside text: cut it short so a long one cannot squeeze the plot away.
    tags = [p.tag if len(p.tag) <= 20 else p.tag[:19] + "…" for p in points]
    with _LOCK, rc_context({"svg.fonttype": "none", "svg.hashsalt": f"patchbot-{plot.slug}",
                            "font.size": 9}):
        fig = Figure(figsize=(8.0, 3.0), layout="constrained")
        ax = fig.add_subplot()
        drawn = 0
        for s in plot.series:
            xy = [(i, y) for i, p in enumerate(points) if (y := s.value(p.check)) is not None]
            if not xy:
                continue
            (line,) = ax.plot([i for i, _ in xy], [y for _, y in xy], marker="o",
                              markersize=4, linewidth=1.2, label=s.label,
                              color=COLOURS.get(s.name))
            line.set_gid(f"trend-{plot.slug}-{s.name}")
            drawn += 1
        ax.set_title(plot.title, loc="left")
        ax.set_ylabel(plot.unit)
        ax.set_xticks(range(len(tags)), labels=tags, rotation=45, ha="right")
        ax.set_xlim(-0.5, max(len(tags) - 0.5, 0.5))
        ax.grid(True, axis="y", alpha=0.3)
        if drawn > 1:
            ax.legend(loc="best", frameon=False)
        if not drawn:
            ax.text(0.5, 0.5, "no data recorded yet", transform=ax.transAxes, ha="center")
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    # Drop the XML declaration and DOCTYPE: the SVG is inlined in an HTML page.
    return _SVG_HEAD.sub("", buf.getvalue(), count=1)


def render_all(points: Sequence[TrendPoint]) -> list[tuple[Plot, str]]:
    return [(p, render_svg(p, points)) for p in PLOTS]
