#!/usr/bin/env bash
# The whole test suite, fast and slow (real Debian upstream trees, real QEMU).
# Usage: bash ci/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
exec .venv/bin/python -m pytest -ra --durations=15 "$@"
