"""The one rule for a path named by outside input (a patch, a pull request, a change).

Such a path must be a plain relative path inside a repository: no NUL, no
backslash, not absolute, no empty, ``.`` or ``..`` component (so it is
already normalized and cannot leave the tree), and nothing under a ``.git``
directory in any letter case. The series parser, the pull-request reader and
the GitHub publisher all ask this one function and phrase the refusal in
their own terms.
"""

from __future__ import annotations


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a plain relative path inside a tree, or None if it is."""
    if not path or "\0" in path:
        return "is empty or holds a NUL byte"
    if path.startswith("/"):
        return "is an absolute path (escapes the tree)"
    if "\\" in path:
        return "holds a backslash (not a relative POSIX path)"
    parts = path.split("/")
    if ".." in parts:
        return "escapes the tree ('..')"
    if any(p in ("", ".") for p in parts):
        return "is not a plain relative path (empty or '.' component)"
    if any(p.lower() == ".git" for p in parts):
        return "reaches into .git/"
    return None
