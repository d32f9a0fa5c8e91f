"""Reading a pull request: its head, the paths it changes, and files of its tree.

Only the download is here; what may be read from an untrusted commit and how
it is checked out is the policy of `ukl_patchbot.dispatch.prsource`, which calls
`Trees.read_tree_files` with its limits.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from ukl_patchbot.core.errors import UserError
from ukl_patchbot.github.auth import Session
from ukl_patchbot.github.transport import ReportError, bind


@dataclass(frozen=True)
class TreeLimits:
    """Bounds on what `Trees.read_tree_files` downloads from an untrusted commit."""

    max_files: int = 400
    max_file_bytes: int = 2 * 1024 * 1024
    max_total_bytes: int = 16 * 1024 * 1024


# Git tree entry modes: regular and executable files are read; a symlink (120000) or a
# submodule (160000) could point anywhere, so meeting one on the way is refused.
_FILE_MODES = frozenset({"100644", "100755"})
_DIR_MODE = "040000"


def git_blob_sha(data: bytes) -> str:
    """The git object id of a blob holding ``data`` (to check a download against the tree)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _select(entries: Any, prefixes: tuple[str, ...], limits: TreeLimits) -> list[tuple[str, str, int]]:
    """The (path, blob sha, size) of plain files under ``prefixes``; refuses anything else."""
    wanted: list[tuple[str, str, int]] = []
    total = 0
    for e in entries:
        path = e.path
        # An entry in place of a prefix's directory (e.g. ``patchsets`` as a symlink) counts too.
        under = any(path.startswith(p) for p in prefixes)
        above = any(p.startswith(path + "/") for p in prefixes)
        if not (under or above) or (e.type == "tree" and e.mode == _DIR_MODE):
            continue
        if e.type != "blob" or e.mode not in _FILE_MODES or not under:
            what = {"120000": "a symlink", "160000": "a submodule"}.get(e.mode)
            what = what or (f"mode {e.mode}" if under else "a file in place of a directory")
            raise UserError(f"{path}: {what} is not allowed here; only plain files are read")
        size = int(e.size or 0)
        if size > limits.max_file_bytes:
            raise UserError(f"{path}: {size} bytes, more than {limits.max_file_bytes} allowed")
        total += size
        wanted.append((path, e.sha, size))
        if len(wanted) > limits.max_files:
            raise UserError(f"{path}: more than {limits.max_files} files under {', '.join(prefixes)}")
        if total > limits.max_total_bytes:
            raise UserError(
                f"{path}: the files under {', '.join(prefixes)} exceed"
                f" {limits.max_total_bytes} bytes in total"
            )
    return wanted


class Trees(Session):
    """Lookups the worker and the PR source make of a pull request."""

    def pr_head(self, repo: str, pr: int) -> str:
        r = self._repo(repo)
        return self._call(f"read {repo}#{pr}", lambda: r.get_pull(pr).head.sha)

    def pr_files(self, repo: str, pr: int) -> list[str]:
        """Paths the pull request changes (GitHub lists at most 3000)."""
        r = self._repo(repo)
        return self._call(
            f"list files of {repo}#{pr}", lambda: [f.filename for f in r.get_pull(pr).get_files()]
        )

    def read_tree_files(
        self, repo: str, sha: str, prefixes: tuple[str, ...], limits: TreeLimits = TreeLimits()
    ) -> dict[str, bytes]:
        """The files under ``prefixes`` (e.g. ``"kconfigs/"``) of commit ``sha``: path → bytes.

        One recursive tree listing, then one blob per distinct file. The commit is
        untrusted: a symlink or submodule under (or in place of) a prefix, a listing
        GitHub truncated, or more files or bytes than ``limits`` allow is a `UserError`
        naming the path; nothing is downloaded past a limit.
        """
        r = self._repo(repo)
        tree = self._call(
            f"list the tree of {repo}@{sha[:12]}", lambda: r.get_git_tree(sha, recursive=True)
        )
        if tree.truncated:
            raise UserError(
                f"{repo}@{sha[:12]}: GitHub truncated the tree listing (too many files)"
            )
        blobs: dict[str, bytes] = {}
        out: dict[str, bytes] = {}
        for path, blob_sha, size in _select(tree.tree, prefixes, limits):
            if blob_sha not in blobs:
                blob = self._call(
                    f"read {path} of {repo}@{sha[:12]}", bind(r.get_git_blob, blob_sha)
                )
                data = (
                    base64.b64decode(blob.content)
                    if blob.encoding == "base64"
                    else blob.content.encode()
                )
                if len(data) != size or git_blob_sha(data) != blob_sha:
                    raise ReportError(
                        f"GitHub: {path} of {repo}@{sha[:12]} does not match its tree entry"
                    )
                blobs[blob_sha] = data
            out[path] = blobs[blob_sha]
        return out
