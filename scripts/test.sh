#!/usr/bin/env bash
# Runs the whole test suite from a clean machine: installs what is missing, checks the code
# (ruff, mypy --strict), then pytest. Tests that need MariaDB start their own servers on free
# ports in temp dirs and stop them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
NEED_BROWSER=1 source scripts/setup.sh
echo "==> ruff check"
.venv/bin/ruff check coordinator devcluster tests scripts
echo "==> mypy --strict (coordinator; the core is pure and fully typed)"
.venv/bin/mypy --strict coordinator
set +e
# Two workers: one runs every test that uses MariaDB, one at a time (tests/conftest.py groups
# them); the other runs the pure tests beside them at a lower CPU priority.
QC_NO_SKIPS=1 .venv/bin/python -m pytest -q -ra -n 2 --dist loadgroup "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
