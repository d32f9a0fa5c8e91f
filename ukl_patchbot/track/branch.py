"""The weekly job's branch: the series refreshed onto a tag, committed and pushed.

The commit is made in a throwaway worktree of the checkout's HEAD (the
user's ``patchsets/`` is never touched) and is deterministic: its dates are
the base commit's, so the same inputs give the same commit and a second push
changes nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ukl_patchbot.core.config import CONFIG_NAME, Config
from ukl_patchbot.track import render as track_render
from ukl_patchbot.upstream import gitops


def refresh_commit(cfg: Config, component: str, tag: str) -> tuple[str | None, str, str]:
    """Rebase the series onto ``tag`` in a worktree of this checkout's HEAD and commit it.

    Returns (commit, the series directory's tree id, rebase report in
    Markdown); commit None and tree '' when the series does not apply. The
    author and committer are the bot unless the environment names them.
    """
    from ukl_patchbot.core import config as config_mod
    from ukl_patchbot.rebase import engine as rebase
    from ukl_patchbot.rebase import report as rebase_report

    top = Path(gitops.out(cfg.root, "rev-parse", "--show-toplevel"))
    rel = cfg.root.resolve().relative_to(top.resolve())
    base_date = gitops.out(cfg.root, "log", "-1", "--format=%cI", "HEAD")
    env = gitops.bot_identity(("AUTHOR", "COMMITTER")) | {"GIT_AUTHOR_DATE": base_date,
                                                          "GIT_COMMITTER_DATE": base_date}
    with gitops.temp_worktree(top, "HEAD", work_root=cfg.work_dir / "track",
                              name=f"track-{component}") as wt:
        wt_cfg = dataclasses.replace(config_mod.load(wt / rel / CONFIG_NAME),
                                     cache_dir=cfg.cache_dir).for_tag(component, tag)
        rep = rebase.rebase_series(wt_cfg, component, tag, write=True, force=True)
        md = rebase_report.render_markdown(rep)
        if not rep.ok:
            return None, "", md
        series_dir = str(wt_cfg.component(component).series_dir)
        gitops.git(wt, "add", "-A", "--", series_dir)
        msg = track_render.commit_message(component, tag, rebase_report.summary_line(rep))
        gitops.git(wt, "commit", "-q", "--no-verify", "--no-gpg-sign", "-m", msg,
                   extra_env=env)
        tree = gitops.out(wt, "rev-parse", f"HEAD:{Path(series_dir).relative_to(wt.resolve())}")
        return gitops.out(wt, "rev-parse", "HEAD"), tree, md


def push_branch(cfg: Config, remote: str, commit: str, branch: str) -> bool:
    """Force-push ``commit`` as ``branch``; False when the remote already has exactly that."""
    res = gitops.git(cfg.root, "ls-remote", remote, f"refs/heads/{branch}",
                     timeout=300)
    if res.stdout.split("\t", 1)[0].strip() == commit:
        return False
    gitops.git(cfg.root, "push", "--quiet", "--force", remote, f"{commit}:refs/heads/{branch}",
               timeout=600)
    return True


def current_branch(cfg: Config) -> str:
    res = gitops.git(cfg.root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return res.stdout.strip() if res.ok and res.stdout.strip() else "main"
