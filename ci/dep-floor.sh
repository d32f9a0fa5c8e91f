#!/usr/bin/env bash
# Prove pyproject's PyGithub floor: the GitHub client's tests with exactly that version.
# Uses the project's .venv for everything else (run ci/install-deps.sh first); the
# floor goes into a throwaway overlay directory put first on PYTHONPATH. Network: only
# pip's package index, for that one version. ci/test.sh runs it after the static checks.
set -euo pipefail
cd "$(dirname "$0")/.."
floor=$(sed -n 's/^ *"PyGithub>=\([0-9.]*\)".*/\1/p' pyproject.toml)
[ -n "$floor" ] || { echo "no PyGithub floor in pyproject.toml" >&2; exit 1; }
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
.venv/bin/pip install -q --no-deps --target "$overlay" "PyGithub==$floor"
# The overlay must win over the .venv's newer PyGithub, or the tests below prove nothing.
PYTHONPATH="$overlay" .venv/bin/python -c '
import importlib.metadata as m, sys
import github
def release(v):  # "2.9" and "2.9.0" are one version
    parts = [int(x) for x in v.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return parts
have = m.version("PyGithub")
print("PyGithub", have, "from", github.__file__, file=sys.stderr)
if release(have) != release(sys.argv[1]):
    sys.exit(f"dep-floor: imported PyGithub {have}, not the floor {sys.argv[1]}")
' "$floor"
PYTHONPATH="$overlay" .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_github.py tests/test_github_behaviour.py tests/test_prsource.py -m "not slow"
