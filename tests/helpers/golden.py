"""Golden files: rendered text pinned in tests/data/golden/.

After an intended change to a renderer, regenerate them with
``PATCHBOT_REGEN_GOLDEN=1 .venv/bin/python -m pytest <the test file>`` and
review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "data" / "golden"
REGEN_VAR = "PATCHBOT_REGEN_GOLDEN"


def check_golden(name: str, text: str) -> None:
    """Assert ``text`` equals golden file ``name`` (or rewrite it when regenerating)."""
    path = GOLDEN_DIR / name
    if os.environ.get(REGEN_VAR) == "1":
        path.write_text(text)
    assert path.is_file(), f"no golden file {name}; create it with {REGEN_VAR}=1"
    assert text == path.read_text(), f"{name} changed; rerun with {REGEN_VAR}=1 and review"
