"""`patchbot dashboard --out DIR`: the served pages as a static site, replaced atomically.

Written to a temporary directory beside DIR, then renamed into place, so a
web server or an upload never sees half a site.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ukl_patchbot.core.errors import UserError
from ukl_patchbot.dashboard import render
from ukl_patchbot.history.store import HistoryStore

MARKER = ".patchbot-dashboard"  # only a directory we wrote is ever replaced


def write_site(store: HistoryStore, out: Path) -> int:
    """Write every page for the history in ``store`` to ``out``; returns the number of checks."""
    out = out.resolve()
    foreign = out.exists() and not (out / MARKER).is_file()
    if foreign and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not a dashboard written by patchbot",
                        hint="name a new or empty directory, or one an earlier "
                             "`patchbot dashboard` wrote")
    out.parent.mkdir(parents=True, exist_ok=True)
    checks = store.checks(with_report=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (tmp / MARKER).write_text("written by `patchbot dashboard`; replaced on each run\n")
        shutil.copytree(render.STATIC_DIR, tmp / "assets")
        (tmp / "index.html").write_text(render.matrix_page(checks))
        (tmp / "trends.html").write_text(render.trends_page(checks))
        (tmp / "findings.html").write_text(render.findings_page(checks))
        (tmp / "checks").mkdir()
        for c in checks:
            (tmp / "checks" / f"{c.id}.html").write_text(
                render.check_page(c, len(checks), render.file_links))
        tmp.chmod(0o755)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}-old-{tmp.name}")
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return len(checks)
