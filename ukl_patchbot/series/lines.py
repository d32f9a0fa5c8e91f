"""Which series a tag gets: its line's, or, for a line without one yet, an older line's.

`Config.for_tag` maps tag -> line -> series directory; this adds the rule for
a new line (``patchbot rebase v6.12.117`` while ``patchsets/linux/6.12`` is
empty starts from the newest older line with a series, or ``--from LINE``)
and says so for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.core.config import Component, Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.series import patchset as series_mod
from ukl_patchbot.series.patchset import Series


@dataclass(frozen=True)
class SeriesSource:
    """The series carried, where it goes, and what the report should say about that."""

    series: Series
    target: Path
    line: str
    notes: tuple[str, ...] = ()


def _has_series(d: Path) -> bool:
    return (d / series_mod.SERIES_NAME).is_file()


def choose_source(cfg: Config, component: str, tag: str, from_line: str | None = None
                  ) -> SeriesSource:
    """The series to carry onto ``tag``: its line's, else the newest older line's.

    ``cfg`` picks the line (`Config.for_tag` is applied here, so callers may
    pass either form). ``from_line`` names the line to start from explicitly.
    """
    cfg = cfg.for_tag(component, tag)
    comp = cfg.component(component)
    target = comp.series_dir
    line = comp.line or ""
    if from_line is None and _has_series(target):
        return SeriesSource(series_mod.load_series(target, component), target, line)
    src_line = _older_line(comp, line, from_line)
    src_dir = comp.line_series(comp.get_line(src_line))
    series = series_mod.load_series(src_dir, component)
    how = "as asked (--from)" if from_line else "the newest older line with a series"
    note = (f"line {line or '?'} had no series yet: started from line {src_line}'s series "
            f"(base {series.base}, {how}); the result is written to {target}")
    if from_line is not None and _has_series(target):
        note = (f"started from line {src_line}'s series (base {series.base}) as asked (--from); "
                f"the result replaces {target}")
    return SeriesSource(series, target, line, (note,))


def _older_line(comp: Component, line: str, from_line: str | None) -> str:
    if from_line is not None:
        ln = comp.get_line(from_line)
        if not _has_series(comp.line_series(ln)):
            raise UserError(f"line {from_line} of {comp.name} has no series in "
                            f"{comp.line_series(ln)}", hint="name a line that has one")
        return ln.name
    older = comp.older_lines(line) if line else []
    if not older:
        raise UserError(
            f"{comp.series_dir} holds no series and no older line of {comp.name} has one",
            hint="create the series there, or pass --from LINE",
        )
    return older[0].name
