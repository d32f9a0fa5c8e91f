"""The state of a rebase stopped on a conflict, so `patchbot rebase --continue` can go on.

One JSON file per series in the cache (``<cache>/rebase/<component>-<line>.json``),
written atomically. The state machine is small and checked on every move, the
way cherry-picker keeps its Enum state::

    (none) --start--> APPLYING --conflict--> STOPPED --continue--> APPLYING
    APPLYING --all patches in--> (none)       STOPPED|APPLYING --abort--> (none)

APPLYING on disk with no patchbot running means a run was killed: only
``--abort`` (or ``--status``) is allowed then.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ukl_patchbot.core import fsutil
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import UserError
from ukl_patchbot.rebase.report import PatchStatus


class RebaseState(StrEnum):
    APPLYING = "applying"  # patchbot is applying patches
    STOPPED = "stopped"  # a patch conflicted; the maintainer resolves it in the worktree


@dataclass(frozen=True)
class DonePatch:
    """A patch of the series already carried: its commit ('' when dropped) and status."""

    name: str
    subject: str
    status: PatchStatus
    commit: str = ""


@dataclass(frozen=True)
class PendingRebase:
    state: RebaseState
    component: str
    line: str
    tag: str
    new_sha: str
    old_base: str
    old_sha: str | None
    old_head: str | None  # the series on its old base, for the range-diff
    source_dir: str  # the series carried
    target_dir: str  # where it is written at the end
    series_digest: str
    worktree: str
    done: tuple[DonePatch, ...]  # carried so far, in series order
    current: str | None  # the patch stopped on
    notes: tuple[str, ...] = ()

    def to(self, state: RebaseState, **changes: Any) -> PendingRebase:
        """The next state; refuses a move the machine does not have."""
        allowed = {RebaseState.APPLYING: {RebaseState.STOPPED},
                   RebaseState.STOPPED: {RebaseState.APPLYING}}
        if state not in allowed[self.state]:
            raise UserError(f"rebase of {self.component} {self.line}: cannot go from "
                            f"{self.state} to {state}")
        return replace(self, state=state, **changes)


def state_path(cfg: Config, component: str, line: str) -> Path:
    return cfg.cache_dir / "rebase" / f"{component}-{line or 'all'}.json"


def save(cfg: Config, pending: PendingRebase) -> None:
    data = asdict(pending)
    fsutil.atomic_write(state_path(cfg, pending.component, pending.line),
                        json.dumps(data, indent=2, sort_keys=True) + "\n")


def load(path: Path) -> PendingRebase:
    try:
        data = json.loads(path.read_text())
        done = tuple(DonePatch(d["name"], d["subject"], PatchStatus(d["status"]), d["commit"])
                     for d in data.pop("done"))
        return PendingRebase(state=RebaseState(data.pop("state")), done=done,
                             notes=tuple(data.pop("notes", ())), **data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{path}: unreadable rebase state ({exc})",
            hint=f"remove {path} and the worktree it names, then rerun the rebase",
        ) from None


def clear(cfg: Config, pending: PendingRebase) -> None:
    state_path(cfg, pending.component, pending.line).unlink(missing_ok=True)


def pending_all(cfg: Config) -> list[PendingRebase]:
    d = cfg.cache_dir / "rebase"
    return [load(p) for p in sorted(d.glob("*.json"))] if d.is_dir() else []


def find(cfg: Config, component: str | None = None, line: str | None = None) -> PendingRebase:
    """The one rebase in progress matching the filters; a UserError if none or several."""
    found = [p for p in pending_all(cfg)
             if (component is None or p.component == component)
             and (line is None or p.line == line)]
    if not found:
        raise UserError("no rebase in progress" + (f" for {component}" if component else ""),
                        hint="start one with `patchbot rebase TAG`")
    if len(found) > 1:
        names = ", ".join(f"{p.component} {p.tag}" for p in found)
        raise UserError(f"several rebases in progress: {names}",
                        hint="name one: `patchbot rebase --continue TAG`")
    return found[0]
