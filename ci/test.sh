#!/usr/bin/env bash
# The whole test suite, fast and slow (real Debian upstream trees, real QEMU),
# after the static checks (ruff, mypy, the import layering contract) and the check of
# pyproject's PyGithub floor (ci/dep-floor.sh).
# Usage: bash ci/test.sh [--fast] [pytest args]
#   --fast  only the fast tests (no real trees, no QEMU): pytest -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
# conftest.py prints the wall time from here (install + checks + tests) in pytest's summary.
PATCHBOT_SUITE_START="$(date +%s)"
export PATCHBOT_SUITE_START
args=()
if [ "${1:-}" = "--fast" ]; then
  shift
  args=(-m "not slow")
fi
bash ci/install-deps.sh
# Static checks first (seconds), on both paths: lint, types, the layering contract.
.venv/bin/ruff check ukl_patchbot tests
.venv/bin/mypy ukl_patchbot
.venv/bin/lint-imports
# Then, on both paths too, the GitHub client's tests on exactly pyproject's PyGithub floor
# (pip fetches that one version from the package index; the rest is the .venv's). Its
# pytest must not print the suite's wall time, which conftest.py does when this is set.
env -u PATCHBOT_SUITE_START bash ci/dep-floor.sh
exec .venv/bin/python -m pytest -ra --durations=15 "${args[@]}" "$@"
