"""The MySQL wire-protocol front end: the listener on port 6033 and what its sessions share.

Same process, same object graph as the HTTP gateway: writes go to the same replicator
(one log, one quorum, one leader), reads are routed by the same ``ReadRouter``, a
failover is the same failover. ``MysqlFront`` owns the listening socket, the registry of
connections (connection limit, admin list and kill), their counters, the raw backend
connections used to relay reads and the cache of prepared-statement metadata.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter, OrderedDict
from typing import Any

import structlog

from ..config import Config
from ..errors import ReplicaDown
from ..mysqlproto.handshake import hash_from_mysql_string, native_hash
from .backend import BackendPool, Prepared, ServerError
from .connection import Connection
from .errors import Failed
from .relay import with_status
from .session import Session
from .statements import ParseCache
from .txn import Transactions

log = structlog.get_logger("coordinator.mysqlfront")

METADATA_CACHE = 4096
DEFAULT_VERSION = "10.11.0-MariaDB"
LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn


def load_users(cfg: Config) -> dict[str, bytes | None]:
    """name -> SHA1(SHA1(password)), or None for no password."""
    out: dict[str, bytes | None] = {}
    for u in cfg.mysql_users:
        if u.password_env:
            pw = os.environ.get(u.password_env, "")
            out[u.name] = native_hash(pw) if pw else None
        else:
            out[u.name] = hash_from_mysql_string(u.password_hash) if u.password_hash else None
    return out


class MysqlFront:
    def __init__(self, cfg: Config, replicator: Any, reads: Any, events: Any) -> None:
        self.cfg = cfg
        self.replicator = replicator
        self.reads = reads
        self.events = events
        self.users = load_users(cfg)
        m = cfg.mysql
        init = f"SET SESSION tx_read_only=1, SESSION max_statement_time={m.max_statement_time_s:g}"
        self.backends = BackendPool(replicator.endpoint, cfg.coordinator.database,
                                    cfg.mysql_front.backend_pool_size, init)
        self.connections: dict[int, Connection] = {}
        self.counters: Counter[str] = Counter()
        self.started = time.monotonic()
        self.transactions = Transactions(self)
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._warm: asyncio.Task[None] | None = None
        self._meta: OrderedDict[tuple[str, bool], Prepared] = OrderedDict()
        self.statements = ParseCache(cfg.coordinator.internal_schema)

    # --- lifecycle ---

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # MySQL servers speak first: a connection dropped from a full accept queue leaves the client
        # waiting for a greeting forever (seen with mariadb-slap opening 256 at once while the loop
        # was busy), so the queue holds every connection we would admit.
        backlog = max(LISTEN_BACKLOG, self.cfg.mysql_front.max_connections)
        self._server = await loop.create_server(lambda: Connection(self, next(self._ids)),
                                                self.cfg.coordinator.host, self.cfg.ports.mysql, reuse_address=True,
                                                backlog=backlog)
        self._warm = asyncio.create_task(self._learn_version(), name="mysql-version")
        self.transactions.start()

    async def _learn_version(self) -> None:
        """The leader's server version, for the handshake banner (best effort, a few tries)."""
        for _ in range(30):
            try:
                b = await self.backends.acquire(self.replicator.leader_id, True, self.cfg.mysql.connect_timeout_s)
                self.backends.release(b)
                return
            except ReplicaDown:
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        """Stop listening; every open session gets ERR 1053 "server shutdown" and is closed."""
        if self._server is not None:
            self._server.close()
        if self._warm is not None:
            self._warm.cancel()
        for conn in list(self.connections.values()):
            conn.end(1053, "Server shutdown in progress")
        self.transactions.stop()
        if self._server is not None:
            await self._server.wait_closed()
        self.backends.close()

    # --- connections ---

    def admit(self, conn: Connection) -> bool:
        if len(self.connections) >= self.cfg.mysql_front.max_connections:
            self.count("refused_connections")
            log.warning("mysql_too_many_connections", peer=conn.peer, limit=self.cfg.mysql_front.max_connections)
            return False
        self.connections[conn.id] = conn
        self.count("connections")
        return True

    def forget(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        if conn.session is not None:
            self.transactions.dropped(conn.session)

    def auth_failed(self, conn: Connection, user: str, with_password: bool) -> None:
        self.count("auth_failures")
        self.events.emit("mysql_auth_failed", f"MySQL login refused for user '{user}' from {conn.peer}",
                         user=user, peer=conn.peer, password=with_password)

    def count(self, what: str) -> None:
        self.counters[what] += 1

    def server_version(self) -> str:
        version = self.backends.versions.get(self.replicator.leader_id) or next(
            iter(self.backends.versions.values()), DEFAULT_VERSION)
        version = version.removeprefix("5.5.5-")
        return f"5.5.5-{version}-{self.cfg.mysql_front.version_suffix}"

    def sessions(self) -> list[dict[str, Any]]:
        return [conn.session.info() for conn in self.connections.values() if conn.session is not None]

    def kill(self, conn_id: int) -> bool:
        conn = self.connections.get(conn_id)
        if conn is None:
            return False
        conn.end(1927, "Connection was killed")
        self.events.emit("mysql_session_killed", f"MySQL session {conn_id} killed by an operator", session=conn_id)
        return True

    def statistics(self) -> str:
        """COM_STATISTICS (`mariadb-admin status`, the CLI's `\\s`): the front end's own figures in
        the server's format; slow queries and table opens are the servers' business (0 here)."""
        up = max(1, int(time.monotonic() - self.started))
        questions = self.counters["commands"]
        return (f"Uptime: {up}  Threads: {len(self.connections)}  Questions: {questions}  Slow queries: 0  "
                f"Opens: 0  Open tables: 0  Queries per second avg: {questions / up:.3f}")

    def stats(self) -> dict[str, Any]:
        return {"port": self.cfg.ports.mysql, "connections": len(self.connections),
                "open_transactions": len(self.transactions.open), "pinned_connections": self.transactions.pinned,
                **dict(self.counters)}

    # --- what handlers need of the servers ---

    async def metadata(self, text: str, deprecate_eof: bool, write: bool) -> Prepared:
        """The leader server's parameter and column definitions for a statement (cached)."""
        key = (text, deprecate_eof)
        hit = self._meta.get(key)
        if hit is not None:
            self._meta.move_to_end(key)
            return hit
        leader = self.replicator.leader_id
        m = self.cfg.mysql
        try:
            b = await self.backends.acquire(leader, deprecate_eof, m.connect_timeout_s)
        except ReplicaDown as exc:
            raise Failed(1105, "HY000", f"cannot prepare the statement now: {exc}") from None
        try:
            meta = await b.prepare(text.encode("utf-8", "surrogateescape"), m.query_timeout_s, write)
        except ServerError as exc:
            raise Failed(exc.errno, exc.sqlstate, exc.message) from None
        except ReplicaDown as exc:
            raise Failed(1105, "HY000", f"cannot prepare the statement now: {exc}") from None
        finally:
            self.backends.release(b)
        self._meta[key] = meta
        if len(self._meta) > METADATA_CACHE:
            self._meta.popitem(last=False)
        return meta

    async def relay_command(self, rid: str, payload: bytes, send: Any, session: Session) -> None:
        """A command answered by definitions and an EOF (COM_FIELD_LIST), relayed from ``rid``."""
        status = session.status()

        def sink(pkt: bytes, last: bool) -> None:
            send(with_status(pkt, status) if last and pkt[0] != 0xFF else pkt)

        b = await self.backends.acquire(rid, session.deprecate_eof, self.cfg.mysql.connect_timeout_s)
        try:
            await b.relay_until_eof(payload, sink, self.cfg.mysql.query_timeout_s)
        finally:
            self.backends.release(b)
