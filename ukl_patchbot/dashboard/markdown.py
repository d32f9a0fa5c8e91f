"""The check report's Markdown as HTML, with everything in it escaped.

Raw HTML in the Markdown is never passed through (markdown-it with ``html``
off escapes it): the report quotes patch names, logs and range-diffs that a
pull request controls. The only HTML our own renderer writes, the
``<details><summary>..</summary>`` folds around long blocks, is recognised
line by line outside code fences and rebuilt here with its summary escaped.
"""

from __future__ import annotations

import functools
import re

from markupsafe import Markup, escape

_OPEN = re.compile(r"^<details><summary>(.*)</summary>$")
_CLOSE = "</details>"


@functools.lru_cache(maxsize=1)
def _md():  # type: ignore[no-untyped-def]
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_report(text: str) -> Markup:
    """Safe HTML for the report Markdown ``text``."""
    out: list[str] = []
    chunk: list[str] = []
    in_fence = False
    depth = 0

    def flush() -> None:
        if chunk:
            out.append(_md().render("\n".join(chunk) + "\n"))
            chunk.clear()

    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        m = _OPEN.match(line) if not in_fence else None
        if m:
            flush()
            out.append(f"<details><summary>{escape(m.group(1))}</summary>")
            depth += 1
        elif not in_fence and line == _CLOSE and depth:
            flush()
            out.append("</details>")
            depth -= 1
        else:
            chunk.append(line)
    flush()
    out.extend("</details>" for _ in range(depth))
    return Markup("\n".join(out))
