#!/usr/bin/env bash
# From a fresh Debian machine (root) to a running system: installs what is missing,
# starts the local four-node MariaDB cluster (scripts/cluster.py), then runs the
# coordinator in the foreground (Ctrl-C stops it; the cluster keeps running —
# `.venv/bin/python scripts/cluster.py down` stops that too).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
.venv/bin/python scripts/cluster.py up
cat <<'MSG'

  Coordinator starting:
    dashboard / gateway  http://localhost:8000/        (POST /query, /transaction, GET /status)
    timestamps           http://localhost:8001/timestamp  http://localhost:8002/timestamp
    metrics              http://localhost:8003/metrics
    cabinet              http://localhost:8004/select-quorum
    SEER                 http://localhost:8005/elect-leader
    MySQL protocol       mariadb -h127.0.0.1 -P6033 -uroot testdb

MSG
exec .venv/bin/python -m coordinator --config config.toml
