"""Small UKL-like series made on the fly on the real Linux tree (the series base -> the newest
6.1 tag from Debian's packages), on files that changed (or not) between the two tags."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import realtrees
from ukl_patchbot.upstream import gitops

OLD, NEW = realtrees.linux_base_tag(), realtrees.linux_new_tag()
OLD_SUB, NEW_SUB = OLD.rsplit(".", 1)[1], NEW.rsplit(".", 1)[1]

# (subject, path, old text, new text): each edit replaces one exact snippet of the base.
LDS = ("x86: keep the application's TLS sections in vmlinux", "arch/x86/kernel/vmlinux.lds.S",
       "\tSTABS_DEBUG\n", "\tSTABS_DEBUG\n\t/* UKL: application TLS template */\n")
MAKEFILE = ("kbuild: link the UKL application archive", "Makefile",
            "# Default kernel image to build when no specific target is given.\n",
            "# UKL: the application archive is linked into vmlinux.\n"
            "# Default kernel image to build when no specific target is given.\n")
SYS_CONTEXT = ("prctl: note the auxv size check", "kernel/sys.c",
               "\tBUILD_BUG_ON(sizeof(user_auxv) != sizeof(mm->saved_auxv));\n\n\ttask_lock",
               "\tBUILD_BUG_ON(sizeof(user_auxv) != sizeof(mm->saved_auxv)); /* UKL */\n\n"
               "\ttask_lock")
SYS_UPSTREAM = ("prctl: copy the whole auxv", "kernel/sys.c",
                "\tmemcpy(mm->saved_auxv, user_auxv, len);\n",
                "\tmemcpy(mm->saved_auxv, user_auxv, sizeof(user_auxv));\n")
MAKEFILE_CONFLICT = ("kbuild: mark UKL kernels", "Makefile",
                     f"SUBLEVEL = {OLD_SUB}\nEXTRAVERSION =\n",
                     f"SUBLEVEL = {OLD_SUB}\nEXTRAVERSION = -ukl\n")


def make_real_series(mirror: Path, dest: Path, edits: list[tuple[str, str, str, str]],
                     base: str = OLD) -> Path:
    """Commit ``edits`` one by one on ``base`` and write them as a series into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = sorted({e[1] for e in edits})
    env = {"GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}
    with gitops.temp_worktree(mirror, base, sparse_paths=paths, work_root=dest.parent / "wt",
                              name="make-series") as wt:
        for subject, path, old, new in edits:
            text = (wt / path).read_text()
            assert text.count(old) == 1, f"{path}: snippet not unique in {base}"
            (wt / path).write_text(text.replace(old, new))
            gitops.git(wt, "commit", "-q", "-a", "-m",
                       f"{subject}\n\nFor the UKL test series.\n\nSigned-off-by: T <t@example.org>",
                       extra_env=env)
        names = gitops.out(wt, "format-patch", "-o", str(dest), f"{base}..HEAD").splitlines()
    (dest / "series").write_text("".join(Path(n).name + "\n" for n in names))
    (dest / "patchset.toml").write_text(f'base = "{base}"\n')
    return dest
