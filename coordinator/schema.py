"""The coordinator's own tables on every replica, and reading them back.

``state`` holds one row: the epoch (fencing), the replica's applied position
(timestamp and the epoch of that entry), the persisted timestamp mark, a DDL
marker and the leader id. ``log`` holds the entries this replica applied, written
in the same transaction as their effects. Both live in a schema clients can
never reach through the API.
"""

from __future__ import annotations

from typing import Any

from . import mysqlio
from .batchsql import entry_from_row, state_update
from .core.messages import Cause, Snapshot
from .core.replog import Entry
from .errors import ReplicaDown

DEMO_TABLES = (
    "CREATE TABLE IF NOT EXISTS users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, "
    "email VARCHAR(255) NOT NULL UNIQUE, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, timestamp BIGINT) "
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS products (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, "
    "price DECIMAL(10,2) NOT NULL, stock INT DEFAULT 0, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
    "timestamp BIGINT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
)


def internal_ddl(schema: str, database: str) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4",
        f"CREATE DATABASE IF NOT EXISTS `{schema}` CHARACTER SET utf8mb4",
        f"CREATE TABLE IF NOT EXISTS `{schema}`.state ("
        " id TINYINT PRIMARY KEY, epoch BIGINT NOT NULL, epoch_seen BIGINT NOT NULL,"
        " applied_ts BIGINT NOT NULL, applied_epoch BIGINT NOT NULL, ts_mark BIGINT NOT NULL,"
         " ddl_pending BIGINT NOT NULL DEFAULT 0, leader_id VARCHAR(64) NOT NULL DEFAULT '',"
        " log_floor BIGINT NOT NULL DEFAULT 0,"
        " CONSTRAINT coordinator_epoch_fence CHECK (epoch_seen = epoch)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        f"INSERT IGNORE INTO `{schema}`.state (id, epoch, epoch_seen, applied_ts, applied_epoch, ts_mark)"
        " VALUES (1, 0, 0, 0, 0, 0)",
        f"CREATE TABLE IF NOT EXISTS `{schema}`.log ("
        " ts BIGINT PRIMARY KEY, epoch BIGINT NOT NULL, kind TINYINT NOT NULL, time_us BIGINT NOT NULL,"
        " seed1 BIGINT NOT NULL, seed2 BIGINT NOT NULL, mark BIGINT NOT NULL DEFAULT 0,"
        " request_id VARCHAR(191) NULL, leader VARCHAR(64) NOT NULL DEFAULT '', body LONGTEXT NOT NULL,"
        " KEY by_request (request_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ]


async def ensure(conn: Any, schema: str, database: str, timeout_s: float) -> None:
    """The internal schema exists, and the server runs with the settings the write path relies on:
    ``innodb_rollback_on_timeout`` OFF (MariaDB's default) — a lock wait that runs out (1205)
    rolls back that statement only, as the leader's batch and the pinned transactions assume."""
    await mysqlio.run(conn, ";".join(internal_ddl(schema, database)), timeout_s)
    _, rows = await mysqlio.fetch(conn, "SELECT @@innodb_rollback_on_timeout", timeout_s)
    if rows and int(rows[0][0]):
        raise ReplicaDown("this server runs with innodb_rollback_on_timeout=ON: a lock wait timeout would roll back "
                          "a whole batch the coordinator keeps; set it OFF (the default) and restart the server",
                          Cause.INTERNAL)


async def read_state(conn: Any, schema: str, timeout_s: float) -> Snapshot:
    _, rows = await mysqlio.fetch(
        conn,
        f"SELECT epoch, applied_ts, applied_epoch, ts_mark, ddl_pending, leader_id, log_floor "
        f"FROM `{schema}`.state WHERE id=1",
        timeout_s,
    )
    e, a, ae, m, d, lid, floor = rows[0]
    return Snapshot(int(e), int(a), int(ae), int(m), int(d), str(lid), int(floor))


LOG_COLUMNS = "ts, epoch, kind, time_us, seed1, seed2, mark, request_id, leader, body"


def log_query(schema: str, where: str, limit: int = 1) -> str:
    """SELECT of log rows in the order entry_from_row reads them."""
    return f"SELECT {LOG_COLUMNS} FROM `{schema}`.log WHERE {where} ORDER BY ts LIMIT {int(limit)}"


async def read_log(conn: Any, schema: str, after_ts: int, limit: int, timeout_s: float) -> list[Entry]:
    _, rows = await mysqlio.fetch(conn, log_query(schema, f"ts > {int(after_ts)}", limit), timeout_s)
    return [entry_from_row(r) for r in rows]


async def log_entry(conn: Any, schema: str, ts: int, timeout_s: float) -> Entry | None:
    _, rows = await mysqlio.fetch(conn, log_query(schema, f"ts = {int(ts)}"), timeout_s)
    return entry_from_row(rows[0]) if rows else None


async def present(conn: Any, schema: str, ts: tuple[int, ...], timeout_s: float) -> frozenset[int]:
    """Which of the log entries ``ts`` this replica's log holds (an in-doubt commit's answer)."""
    if not ts:
        return frozenset()
    listed = ",".join(str(int(t)) for t in ts)
    _, rows = await mysqlio.fetch(conn, f"SELECT ts FROM `{schema}`.log WHERE ts IN ({listed})", timeout_s)
    return frozenset(int(r[0]) for r in rows)


async def bump_epoch(conn: Any, schema: str, epoch: int, leader: str, timeout_s: float,
                     expect_at_most: int) -> bool:
    """Raise the stored epoch to ``epoch`` if it is still at most ``expect_at_most``
    (compare-and-set). True when this replica now holds ``epoch``.

    An epoch is used for entries only after it is stored on at least n−t replicas,
    so any later coordinator (which reads n−t) sees it and picks a higher one; two
    coordinators racing for the same epoch cannot both win n−t compare-and-sets."""
    await mysqlio.run(
        conn,
        f"UPDATE `{schema}`.state SET epoch={epoch}, epoch_seen={epoch}, "
        f"leader_id='{leader}' WHERE id=1 AND epoch <= {expect_at_most}",
        timeout_s,
    )
    _, rows = await mysqlio.fetch(conn, f"SELECT epoch FROM `{schema}`.state WHERE id=1", timeout_s)
    return bool(rows) and int(rows[0][0]) == epoch


__all__ = ["DEMO_TABLES", "LOG_COLUMNS", "Snapshot", "bump_epoch", "ensure", "internal_ddl", "log_entry",
           "log_query", "read_log", "read_state", "state_update"]
