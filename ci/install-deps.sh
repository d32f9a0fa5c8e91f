#!/usr/bin/env bash
# Install what ukl-patchbot needs on a fresh Debian 12 machine, then make a
# virtualenv in .venv with the package and its test dependencies.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(
  git python3 python3-venv python3-pip
  build-essential gcc make flex bison bc gawk texinfo cpio rsync
  libelf-dev libssl-dev ccache xz-utils zstd
  qemu-system-x86 dpkg-dev binutils
  redis-server
  # the results history's PostgreSQL backend is tested against a real server;
  # the dashboard's pages are tested in a real browser (chromium via chromium-driver)
  postgresql chromium chromium-driver
  bubblewrap
)
# The test oracles come from npm; a machine with a node of its own keeps it.
command -v npm >/dev/null 2>&1 || DEBS+=(nodejs npm)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The embedded upstream is Debian's source packages (`apt-get download`): apt's
# package lists must know them (images often ship without lists).
if [ -z "$(apt-cache madison linux-source-6.1 2>/dev/null)" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# GitHub's published webhook examples and REST/webhook descriptions (test oracles),
# pinned by tests/npm/package-lock.json.
if [ ! -f tests/npm/node_modules/.package-lock.json ] || \
   ! cmp -s tests/npm/package-lock.json tests/npm/.installed-lock.json; then
  (cd tests/npm && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json .installed-lock.json)
fi
