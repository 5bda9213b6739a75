"""Bringing a replica back: errant-history check, catch-up from a peer's log, full rebuild.

Order of preference (DESIGN §5): the coordinator's in-memory log tail (the normal
applier path), else a healthy peer's persisted log, else a full rebuild: copy
``testdb`` from a healthy replica inside a consistent snapshot that also reads
that replica's applied position, then catch up from the log. A replica whose
(epoch, timestamp) history disagrees with the log holds entries that were never
committed (errant) and is rebuilt — never silently kept.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog

from . import batchsql, mysqlio, schema
from .errors import Fenced, ReplicaDown, StatementError

if TYPE_CHECKING:
    from .replication import ReplicaState, Replicator

log = structlog.get_logger("coordinator.catchup")

ROWS_PER_INSERT = 500


class CatchUp:
    def __init__(self, replicator: "Replicator") -> None:
        self.r = replicator

    @property
    def _t(self) -> float:
        return self.r.cfg.mysql.query_timeout_s

    def _peers(self, rs: "ReplicaState") -> list["ReplicaState"]:
        peers = [p for p in self.r.replicas.values() if p.id != rs.id and p.available]
        # prefer followers (spare the leader), then the most advanced
        return sorted(peers, key=lambda p: (p.id == self.r.leader_id, -p.applied_ts))

    async def _peer_conn(self, peer: "ReplicaState") -> Any:
        return await mysqlio.connect(self.r.endpoint(peer.id))

    # --- errant history -----------------------------------------------------------------

    async def errant(self, rs: "ReplicaState", ts: int, epoch: int) -> str | None:
        """Why the position (ts, epoch) read from this replica is not a point of the log
        (so the replica holds entries that were never committed), or None."""
        lg = self.r.log
        if epoch < 0:
            return "a rebuild of it was interrupted (its data is partial)"
        if ts == 0:
            return None
        if ts > lg.last_ts:
            return f"its applied timestamp {ts} is beyond the log's last entry {lg.last_ts}"
        if ts > lg.floor_ts:
            entry = lg.get(ts)
            if entry is None:
                return f"timestamp {ts} is not an entry of the log"
            if entry.epoch != epoch:
                return f"entry {ts} was written in epoch {entry.epoch}, the replica has it from epoch {epoch}"
            return None
        if ts == lg.floor_ts and lg.floor_epoch is not None:
            if lg.floor_epoch != epoch:
                return f"entry {ts} was written in epoch {lg.floor_epoch}, the replica has it from epoch {epoch}"
            return None
        others = sorted((p for p in self.r.replicas.values() if p.id != rs.id), key=lambda p: not p.available)
        for peer in others:
            conn = None
            try:
                conn = await self._peer_conn(peer)
                entry = await schema.log_entry(conn, self.r.schema, ts, self._t)
            except (ReplicaDown, StatementError):
                continue
            finally:
                mysqlio.drop(conn)
            if entry is not None:
                if entry.epoch != epoch:
                    return f"entry {ts} was written in epoch {entry.epoch}, the replica has it from epoch {epoch}"
                return None
        return f"entry {ts} can no longer be verified against any log"

    # --- catch-up from a peer's persisted log ---------------------------------------------

    async def from_peer(self, conn: Any, rs: "ReplicaState") -> bool:
        """Replay entries from a peer's log until the in-memory tail covers the replica.
        False when no peer holds the entries it needs."""
        for peer in self._peers(rs):
            if peer.applied_ts <= rs.applied_ts:
                continue
            pconn = None
            try:
                pconn = await self._peer_conn(peer)
                snap = await schema.read_state(pconn, self.r.schema, self._t)
                if snap.log_floor > rs.applied_ts + 1:
                    continue  # the peer trimmed what we need
                self.r.events.emit("catchup_peer", f"{rs.cfg.name} catches up from {peer.cfg.name}'s log "
                                   f"(applied {rs.applied_ts}, in-memory log starts after {self.r.log.floor_ts})",
                                   replica=rs.id, peer=peer.id, applied_ts=rs.applied_ts)
                while rs.applied_ts < self.r.log.floor_ts:
                    entries = await schema.read_log(pconn, self.r.schema, rs.applied_ts,
                                                    self.r.cfg.replication.max_batch_entries, self._t)
                    # Only what precedes the in-memory tail: past it the coordinator's own
                    # log is the truth (a peer may hold an unlogged, in-doubt batch).
                    entries = [e for e in entries if e.ts <= self.r.log.floor_ts]
                    if not entries:
                        break
                    await self._apply(conn, rs, entries)
            except (ReplicaDown, StatementError) as exc:
                if isinstance(exc, ReplicaDown) and conn is not None and not self.r._conns.get(rs.id):
                    raise
                log.warning("peer_catchup_failed", replica=rs.id, peer=peer.id, error=str(exc))
                continue
            finally:
                mysqlio.drop(pconn)
            if rs.applied_ts >= self.r.log.floor_ts:
                return True
        return False

    async def _apply(self, conn: Any, rs: "ReplicaState", entries: list[Any]) -> None:
        i = 0
        while i < len(entries):
            if entries[i].alone:
                await self.r._apply_alone(conn, rs, entries[i])
                i += 1
                continue
            j = i
            while j < len(entries) and not entries[j].alone:
                j += 1
            await self.r._apply_batch(conn, rs, entries[i:j])
            i = j

    # --- full rebuild ------------------------------------------------------------------------

    def _source(self, rs: "ReplicaState") -> "ReplicaState | None":
        for p in self._peers(rs):  # followers first: the leader may hold a batch in doubt
            if self.r.log.floor_ts <= p.applied_ts <= self.r.log.last_ts:
                return p
        return None

    async def rebuild(self, conn: Any, rs: "ReplicaState") -> bool:
        """Copy the user database from a healthy replica at a consistent point, then
        let the applier catch up from the log. Runs in the replica's own worker, so
        nothing else touches the replica meanwhile. False if no source is available."""
        src_rs = self._source(rs)
        if src_rs is None:
            return False
        r = self.r
        db = r.cfg.coordinator.database
        started = time.monotonic()
        epoch_used = r.epoch
        rs.rebuilding, rs.rebuild_progress = True, 0.0
        why = "diverged" if rs.diverged else "errant or too far behind"
        r.events.emit("rebuild_started", f"rebuilding {rs.cfg.name} ({why}) from {src_rs.cfg.name}",
                      replica=rs.id, source=src_rs.id)
        src = None
        try:
            src = await mysqlio.connect(r.endpoint(src_rs.id), db)
            await mysqlio.run(src, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;"
                                   "START TRANSACTION WITH CONSISTENT SNAPSHOT", self._t)
            snap = await schema.read_state(src, r.schema, self._t)
            bad = await self.errant(src_rs, snap.applied_ts, snap.applied_epoch)
            if bad:  # e.g. the leader with a batch still in doubt: never copy unlogged entries
                raise StatementError(0, f"source {src_rs.cfg.name} is not at a point of the log ({bad})", 0)
            _, rows = await mysqlio.fetch(src, "SHOW FULL TABLES", self._t)
            tables = [t for t, kind in rows if kind == "BASE TABLE"]
            views = [t for t, kind in rows if kind == "VIEW"]
            counts = {}
            for t in tables:
                _, c = await mysqlio.fetch(src, f"SELECT COUNT(*) FROM `{t}`", self._t)
                counts[t] = int(c[0][0])
            total = max(1, sum(counts.values()))
            # Persist "rebuild in progress" first: a crash from here on leaves a replica
            # whose position can never pass as a point of the log (epoch -1).
            await mysqlio.run(conn, f"UPDATE `{r.schema}`.state SET applied_epoch=-1 WHERE id=1", self._t)
            await mysqlio.run(conn, f"SET FOREIGN_KEY_CHECKS=0; DROP DATABASE IF EXISTS `{db}`; "
                                    f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4; USE `{db}`", self._t + 30)
            copied = 0
            next_report = 25
            for t in tables:
                _, ddl = await mysqlio.fetch(src, f"SHOW CREATE TABLE `{t}`", self._t)
                await mysqlio.run(conn, ddl[0][1], self._t)
                offset = 0
                while offset < counts[t]:
                    _, chunk = await mysqlio.fetch(
                        src, f"SELECT * FROM `{t}` LIMIT {ROWS_PER_INSERT} OFFSET {offset}", self._t)
                    if not chunk:
                        break
                    values = ",".join("(" + ",".join(batchsql.literal(v) for v in row) + ")" for row in chunk)
                    await mysqlio.run(conn, f"INSERT INTO `{t}` VALUES {values}", self._t)
                    offset += len(chunk)
                    copied += len(chunk)
                    rs.rebuild_progress = round(100.0 * copied / total, 1)
                    if rs.rebuild_progress >= next_report and rs.rebuild_progress < 100:
                        r.events.emit("rebuild_progress", f"rebuilding {rs.cfg.name}: {rs.rebuild_progress:.0f}%",
                                      replica=rs.id, percent=rs.rebuild_progress)
                        next_report += 25
            for v in views:
                _, ddl = await mysqlio.fetch(src, f"SHOW CREATE VIEW `{v}`", self._t)
                await mysqlio.run(conn, ddl[0][1], self._t)
            await mysqlio.run(conn, ";".join([
                "SET FOREIGN_KEY_CHECKS=1", "START TRANSACTION", f"DELETE FROM `{r.schema}`.log",
                f"UPDATE `{r.schema}`.state SET applied_ts={snap.applied_ts}, applied_epoch={snap.applied_epoch}, "
                f"log_floor={snap.applied_ts + 1}, ddl_pending=0, epoch=GREATEST(epoch, {epoch_used}), "
                f"epoch_seen={epoch_used} WHERE id=1",
                "COMMIT"]), self._t)
            await mysqlio.run(src, "COMMIT", self._t)
        except (ReplicaDown, StatementError, Fenced) as exc:
            rs.rebuilding, rs.rebuild_progress = False, None
            rs.needs_rebuild = True
            r.events.emit("rebuild_failed", f"rebuild of {rs.cfg.name} failed: {exc or type(exc).__name__}; "
                          "will retry", replica=rs.id, error=str(exc))
            if isinstance(exc, Fenced):
                r._check_own_epoch(epoch_used)  # our own failover moved the epoch: retry
            if isinstance(exc, StatementError):
                return False
            raise
        finally:
            mysqlio.drop(src)
        rs.applied_ts, rs.applied_epoch = snap.applied_ts, snap.applied_epoch
        rs.trimmed_below = 0
        rs.diverged = rs.needs_rebuild = rs.rebuilding = False
        rs.rebuild_progress = None
        rs.last_error = ""
        r.events.emit("rebuild_done", f"rebuilt {rs.cfg.name} from {src_rs.cfg.name} at timestamp "
                      f"{snap.applied_ts} ({copied} rows in {time.monotonic() - started:.1f}s); catching up",
                      replica=rs.id, source=src_rs.id, applied_ts=snap.applied_ts, rows=copied,
                      seconds=round(time.monotonic() - started, 2))
        r._rerank()
        return True
