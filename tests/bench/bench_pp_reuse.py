"""How many objects could ccache's preprocessor mode reuse across a stable step? (no full build)

    nice -n 10 .venv/bin/python tests/bench/bench_pp_reuse.py --out BUILD_A --src-a SRC_A \\
        --src-b SRC_B --mirror MIRROR --from A --to B [--sample N]

BUILD_A is a kernel build directory of tag A (``make O=``; a partial build is
enough), SRC_A its source tree (the path its commands name), SRC_B the tree of
B. For every compiled object the kernel's ``.<obj>.cmd`` file holds the compile
command and every file the object depends on. Objects none of whose files
changed from A to B hit in any ccache mode. For the others (a sample of N),
the compile command is run with ``-E`` on both trees: an object whose
preprocessed text is the same would hit in ccache's preprocessor (or direct)
mode and miss in depend mode; all others must be compiled again in any mode.
The generated headers are A's for both runs, so a change of the version
header alone is not counted (objects that include it are listed apart).

With ``--deps-only`` (``--src-b`` not needed) it only counts the objects a
file of the step touches: the lower bound of what any exact cache recompiles
when the step's headers change the preprocessed text (as they did on every
step measured so far).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path

CMD_RE = re.compile(r"^cmd_\S+ := (.*)$", re.M)
DEPS_RE = re.compile(r"^deps_\S+ := \\\n(.*?)\n\n", re.S | re.M)


def deps_of(text: str, prefixes: tuple[str, ...]) -> set[str]:
    """Files an object depends on, relative to the source tree (ccache may relativize them)."""
    m = DEPS_RE.search(text)
    if not m:
        return set()
    out = set()
    for line in m.group(1).splitlines():
        if "$(wildcard" in line:
            continue
        for word in line.strip().rstrip("\\").split():
            rel = word
            for prefix in prefixes:
                rel = rel.removeprefix(prefix + "/")
            out.add(rel)
    return out


def preprocessed(cmd: str, src_a: str, src: str, out: Path) -> str | None:
    """Hash of the -E output of compile command ``cmd`` with ``src_a`` swapped for ``src``."""
    c = re.sub(r"-Wp,-MMD,\S+", "", cmd.replace(src_a, src))
    c = re.sub(r" -c -o \S+", " -E -o -", c, count=1)
    res = subprocess.run(["sh", "-c", c], cwd=out, capture_output=True, check=False)
    if res.returncode:
        return None
    return hashlib.sha256(res.stdout.replace(src.encode(), b"@SRC@")).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--src-a", type=Path, required=True)
    ap.add_argument("--src-b", type=Path)
    ap.add_argument("--deps-only", action="store_true",
                    help="count the objects a changed file touches, preprocess nothing")
    ap.add_argument("--mirror", type=Path, required=True)
    ap.add_argument("--from", dest="a", required=True)
    ap.add_argument("--to", dest="b", required=True)
    ap.add_argument("--sample", type=int, default=0, help="0 = every object with a changed file")
    args = ap.parse_args()
    changed = set(subprocess.run(
        ["git", "--git-dir", str(args.mirror), "diff", "--name-only", args.a, args.b],
        capture_output=True, text=True, check=True).stdout.split())
    if args.src_b is None and not args.deps_only:
        ap.error("--src-b is needed unless --deps-only")
    src_a = str(args.src_a.resolve())
    src_b = str(args.src_b.resolve()) if args.src_b else src_a
    prefixes = (src_a, os.path.relpath(src_a, args.out.resolve()))
    objects = untouched = 0
    touched: list[str] = []
    for cmdfile in sorted(args.out.resolve().rglob(".*.o.cmd")):
        text = cmdfile.read_text(errors="replace")
        m = CMD_RE.search(text)
        if not m or " -c -o " not in m.group(1) or " -E " in m.group(1):
            continue
        objects += 1
        if deps_of(text, prefixes) & changed:
            touched.append(m.group(1))
        else:
            untouched += 1
    if args.deps_only:
        print(f"{args.a} -> {args.b}: {len(changed)} files changed; {objects} compiled objects in "
              f"{args.out}; a changed file touches {len(touched)} ({len(touched) / objects:.0%})")
        return 0
    random.seed(0)
    sample = random.sample(touched, min(args.sample, len(touched))) if args.sample else touched
    same = differ = failed = 0
    for cmd in sample:
        a = preprocessed(cmd, src_a, src_a, args.out)
        b = preprocessed(cmd, src_a, src_b, args.out)
        if a is None or b is None:
            failed += 1
        elif a == b:
            same += 1
        else:
            differ += 1
    print(f"{args.a} -> {args.b}: {objects} compiled objects in {args.out}")
    print(f"  no file changed (hit in every mode, or not rebuilt at all): {untouched}")
    print(f"  a file changed: {len(touched)}; preprocessed {len(sample)}: same text {same} "
          f"(preprocessor mode would hit), different {differ}, cpp failed {failed}")
    if same + differ:
        print(f"  => preprocessor mode saves {same / (same + differ):.0%} of the recompiles "
              f"depend mode does; {shlex.join(sys.argv[1:])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
