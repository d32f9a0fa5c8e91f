#!/usr/bin/env bash
# Prove pyproject's PyGithub floor: the GitHub client's tests with exactly that version.
# Uses the project's .venv for everything else (run ci/install-deps.sh first); the
# floor goes into a throwaway overlay directory put first on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
floor=$(sed -n 's/^ *"PyGithub>=\([0-9.]*\)".*/\1/p' pyproject.toml)
[ -n "$floor" ] || { echo "no PyGithub floor in pyproject.toml" >&2; exit 1; }
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
.venv/bin/pip install -q --no-deps --target "$overlay" "PyGithub==$floor"
PYTHONPATH="$overlay" .venv/bin/python -c \
    "import github, importlib.metadata as m, sys; print('PyGithub', m.version('PyGithub'), 'from', github.__file__, file=sys.stderr)"
PYTHONPATH="$overlay" .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_github.py tests/test_github_behaviour.py tests/test_prsource.py -m "not slow"
