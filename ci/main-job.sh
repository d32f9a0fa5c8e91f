#!/usr/bin/env bash
# The main job, end to end, on the embedded default upstream (Debian's source
# packages; no git access or GitHub account needed):
#   1. install what is needed (apt-get, .venv),
#   2. import every upstream version apt offers into the local mirrors,
#   3. carry the Linux patch series onto the newest Linux tag and report,
#   4. check that tag: build the classic and the UKL kernel, boot both in
#      QEMU, report (out/check-<tag>/report.md, .json and all logs),
#   5. write the results dashboard of every recorded check (out/dashboard/).
# The rebase is a dry run: the report goes to stdout and out/, the versioned
# series in patchsets/ is left as it is (`patchbot rebase TAG` rewrites it).
# Exit status: 0 all good, 2 a failed result (conflict, build or boot failure;
# see the report), 1 error.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
.venv/bin/patchbot upstream sync --needed
tag="$(.venv/bin/patchbot tags linux --newest)"
mkdir -p out
.venv/bin/patchbot rebase "$tag" --component linux --dry-run --json "out/rebase-linux-$tag.json"
# The check is recorded in the results history (<cache>/history.sqlite unless
# PATCHBOT_HISTORY_URL says otherwise); the dashboard is written whatever its verdict.
rc=0
.venv/bin/patchbot check "$tag" --out "out/check-$tag" --json "out/check-$tag.json" || rc=$?
.venv/bin/patchbot dashboard --out out/dashboard
echo "results dashboard: $PWD/out/dashboard/index.html"
exit "$rc"
