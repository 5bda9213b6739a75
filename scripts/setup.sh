#!/usr/bin/env bash
# Installs what the project needs and is missing: Debian packages (mariadb-server,
# python3-venv, wrk) via apt-get, and the Python virtualenv in .venv.
# Sourced by scripts/start.sh and scripts/test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have mariadbd || need_apt+=(mariadb-server)
have mariadb || need_apt+=(mariadb-client)
have wrk || need_apt+=(wrk)
have python3 || need_apt+=(python3)
# the test command also needs Debian's chromium (dashboard and CORS browser tests), sysbench and
# node's mysql2 (MySQL front-end tests with real clients)
if [ "${NEED_BROWSER:-0}" = 1 ]; then
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  have sysbench || need_apt+=(sysbench)
  have node || need_apt+=(nodejs)
  have npm || need_apt+=(npm)
fi
if have python3 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_apt+=(python3-venv); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need_apt[*]} — run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "==> apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Python >= 3.11 is required (found $(python3 --version))" >&2; exit 1; }

if [ "${NEED_BROWSER:-0}" = 1 ] && [ ! -d tests/node/node_modules/mysql2 ]; then
  echo "==> npm ci (tests/node: mysql2)"
  (cd tests/node && npm ci --no-audit --no-fund --silent)
fi

stamp=.venv/.installed
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> creating .venv and installing the project"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
