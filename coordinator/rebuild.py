"""Copying a replica from a source at a consistent point (the I/O of ``core.rebuild``'s plan).

``begin`` opens the source and starts a consistent snapshot that also reads the source's
applied position, so the copy and the position agree exactly; the core then checks that
position against the log. ``copy`` marks the target "rebuild in progress" (applied_epoch
-1: an interrupted copy can never pass as a valid position), replaces its user database
with the snapshot's tables and views, and sets its state to the source's position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import batchsql, mysqlio, schema
from .core.messages import Snapshot
from .errors import ReplicaDown, StatementError

ROWS_PER_INSERT = 500


class SourceFailed(Exception):
    """The source failed mid-copy (not the replica being rebuilt)."""


async def begin(ep: mysqlio.Endpoint, db: str, internal: str, timeout_s: float) -> tuple[Any, Snapshot]:
    src = await mysqlio.connect(ep, db)
    try:
        await mysqlio.run(src, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;"
                               "START TRANSACTION WITH CONSISTENT SNAPSHOT", timeout_s)
        snap = await schema.read_state(src, internal, timeout_s)
    except BaseException:
        mysqlio.drop(src)
        raise
    return src, snap


async def _src(src: Any, sql: str, timeout_s: float) -> list[tuple[Any, ...]]:
    try:
        _, rows = await mysqlio.fetch(src, sql, timeout_s)
    except (ReplicaDown, StatementError) as exc:
        raise SourceFailed(str(exc)) from None
    return rows


async def copy(src: Any, conn: Any, db: str, internal: str, timeout_s: float, epoch: int, applied_ts: int,
               applied_epoch: int, progress: Callable[[float], None]) -> int:
    """Replace ``conn``'s user database by the snapshot held on ``src``; the rows copied."""
    rows = await _src(src, "SHOW FULL TABLES", timeout_s)
    tables = [t for t, kind in rows if kind == "BASE TABLE"]
    views = [t for t, kind in rows if kind == "VIEW"]
    counts = {t: int((await _src(src, f"SELECT COUNT(*) FROM `{t}`", timeout_s))[0][0]) for t in tables}
    total = max(1, sum(counts.values()))
    await mysqlio.run(conn, f"UPDATE `{internal}`.state SET applied_epoch=-1 WHERE id=1", timeout_s)
    await mysqlio.run(conn, f"SET FOREIGN_KEY_CHECKS=0; DROP DATABASE IF EXISTS `{db}`; "
                            f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4; USE `{db}`", timeout_s + 30)
    copied = 0
    for t in tables:
        ddl = await _src(src, f"SHOW CREATE TABLE `{t}`", timeout_s)
        await mysqlio.run(conn, ddl[0][1], timeout_s)
        offset = 0
        while offset < counts[t]:
            chunk = await _src(src, f"SELECT * FROM `{t}` LIMIT {ROWS_PER_INSERT} OFFSET {offset}", timeout_s)
            if not chunk:
                break
            values = ",".join("(" + ",".join(batchsql.literal(v) for v in row) + ")" for row in chunk)
            await mysqlio.run(conn, f"INSERT INTO `{t}` VALUES {values}", timeout_s)
            offset += len(chunk)
            copied += len(chunk)
            progress(100.0 * copied / total)
    for v in views:
        ddl = await _src(src, f"SHOW CREATE VIEW `{v}`", timeout_s)
        await mysqlio.run(conn, ddl[0][1], timeout_s)
    await mysqlio.run(conn, ";".join([
        "SET FOREIGN_KEY_CHECKS=1", "START TRANSACTION", f"DELETE FROM `{internal}`.log",
        f"UPDATE `{internal}`.state SET applied_ts={applied_ts}, applied_epoch={applied_epoch}, "
        f"log_floor={applied_ts + 1}, ddl_pending=0, epoch=GREATEST(epoch, {epoch}), epoch_seen={epoch} WHERE id=1",
        "COMMIT"]), timeout_s)
    try:
        await mysqlio.run(src, "COMMIT", timeout_s)
    except (ReplicaDown, StatementError):
        pass  # the snapshot was only read; the copy is complete
    return copied
