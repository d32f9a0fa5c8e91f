#!/usr/bin/env bash
# Proof that the UKL delta works, from a clean machine: import the upstream
# trees, then for the series' base tag and the newest Linux tag build the
# UKL glibc, the probe for both variants and both kernels, boot both in QEMU
# (TCG unless KVM really works) and show what the probe printed on the
# serial console. `patchbot check` runs exactly these steps (the bot and the
# weekly job call the same pipeline). Exit 0 only if every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
.venv/bin/patchbot upstream sync --needed
base="$(sed -n 's/^base = "\(.*\)"/\1/p' patchsets/linux/6.1/patchset.toml)"
newest="$(.venv/bin/patchbot tags linux --newest)"
status=0
for tag in $(printf '%s\n' "$base" "$newest" | sort -u); do
  rc=0
  .venv/bin/patchbot check "$tag" --out "out/proof-$tag" --json "out/proof-$tag.json" >/dev/null || rc=$?
  echo "== $tag: patchbot check exit $rc (report: out/proof-$tag/report.md)"
  for log in out/proof-"$tag"/boot-*.log; do
    [ -e "$log" ] || continue
    echo "-- $(basename "$log")"
    grep -a "ukl-probe:" "$log" || echo "   (no probe line)"
  done
  [ "$rc" -eq 0 ] || status=$rc
done
exit "$status"
