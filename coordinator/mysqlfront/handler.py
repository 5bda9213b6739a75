"""What each MySQL command does, for one session: the front end's decisions about a
client's commands live here; the connection only frames packets and runs auth.

- COM_QUERY: split into statements (CLIENT_MULTI_STATEMENTS), each its own result
  (MORE_RESULTS_EXISTS on all but the last; the first error stops the rest, as MySQL does).
  Session statements are answered here; reads are relayed to the replica the read
  consistency chooses; writes and DDL go through the replicated, batched path and are
  answered only after the quorum — the leader's real affected rows (matched rows under
  FOUND_ROWS), last insert id and warnings.
- COM_STMT_PREPARE / EXECUTE / CLOSE / RESET / SEND_LONG_DATA: the server's own metadata
  (prepared once on the leader); parameters bound with the HTTP API's escaping; results
  re-encoded as binary rows.
- COM_INIT_DB, COM_PING, COM_FIELD_LIST (relayed), COM_RESET_CONNECTION, COM_SET_OPTION.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import structlog

from ..batchsql import BindError, bind_qmarks
from ..core.outcomes import ApiError, WriteOutcome
from ..core.replog import EntryKind
from ..core.sqlrules import Kind
from ..core.sqlscan import SqlRejected, qmark_positions
from ..errors import ReplicaDown
from ..mysqlproto import constants as c
from ..mysqlproto.binary import StatementParams, prepare_ok
from ..mysqlproto.columns import column
from ..mysqlproto.commands import parse_field_list
from ..mysqlproto.errors import ProtocolError
from ..mysqlproto.results import err_packet, ok_packet, text_resultset
from . import errors as E
from . import txnflow
from .backend import ServerError
from .errors import Answered, Failed
from .relay import BinarySink, TextSink
from .session import PreparedStatement, Session
from .statements import Local, Refused, Sql, parse

log = structlog.get_logger("coordinator.mysqlfront")

Send = Callable[[bytes], None]
_KIND = {Kind.WRITE: EntryKind.WRITE, Kind.DDL: EntryKind.DDL}
TXN_CONTROL = frozenset({"begin", "commit", "rollback", "autocommit", "savepoint", "rollback_to", "release"})
VERSION_COMMENT = "quorum coordinator (Cabinet quorum replication over MariaDB)"


class Handler:
    """Runs one session's commands (one at a time: its connection's command task)."""

    def __init__(self, front: Any, session: Session, send: Send) -> None:
        self.f = front  # the MysqlFront: replicator, reads, backends, config, counters
        self.s = session
        self.send = send

    # --- helpers ---

    def _err(self, errno: int, sqlstate: str, message: str) -> None:
        self.f.count("errors")
        self.send(err_packet(errno, message, sqlstate))

    def _ok(self, affected: int = 0, insert_id: int = 0, warnings: int = 0, info: str = "",
            more: bool = False) -> None:
        self.send(ok_packet(affected, insert_id, self.s.status(more), warnings, info))

    def _rows(self, names: list[str], rows: list[list[Any]], more: bool = False) -> None:
        cols = [column(n, c.MYSQL_TYPE_VAR_STRING) if not rows or not isinstance(rows[0][i], int) else
                column(n, c.MYSQL_TYPE_LONGLONG) for i, n in enumerate(names)]
        for p in text_resultset(cols, rows, capabilities=self.s.capabilities, status=self.s.status(more)):
            self.send(p)

    # --- COM_QUERY ---

    async def query(self, text: str) -> None:
        self.s.queries += 1
        statements = self.f.statements.split(text) if self.s.multi_statements else [text.strip()]
        if not statements:
            self._err(c.ER_EMPTY_QUERY, "42000", "Query was empty")
            return
        for i, stmt in enumerate(statements):
            more = i < len(statements) - 1
            try:
                await self.statement(stmt, more)
            except Failed as exc:
                self._err(exc.errno, exc.sqlstate, exc.message)
                return
            except Answered:
                return

    async def statement(self, text: str, more: bool) -> None:
        try:
            parsed, text = self.f.statements.parse(text)
        except SqlRejected as exc:
            raise Failed(*E.of_rejection(exc)) from None
        except Refused as exc:
            raise Failed(exc.errno, E.sqlstate(exc.errno), exc.message) from None
        if isinstance(parsed, Local):
            self.f.count("local")
            if parsed.what in TXN_CONTROL:
                await txnflow.control(self, parsed, text, more)
            else:
                self.local(parsed, more)
            return
        await self.sql(parsed, text, more, binary=None)

    def local(self, st: Local, more: bool) -> None:
        s = self.s
        what = st.what
        name = st.value if isinstance(st.value, str) else None  # a local read's column alias
        if what in ("set_names", "noop"):
            self._ok(more=more)
        elif what == "consistency":
            s.consistency = str(st.value)
            self._ok(more=more)
        elif what == "use":
            self.use(str(st.value))
            self._ok(more=more)
        elif what == "version_comment":
            self._rows([name or "@@version_comment"], [[VERSION_COMMENT]], more)
        elif what == "database":
            self._rows([name or "DATABASE()"], [[s.database or None]], more)
        elif what == "last_insert_id":
            self._rows([name or "LAST_INSERT_ID()"], [[s.last_insert_id]], more)
        elif what == "warnings":
            self._rows(["Level", "Code", "Message"], [list(w) for w in s.warnings], more)
        elif what == "warning_count":
            self._rows([name or "@@session.warning_count"], [[len(s.warnings)]], more)
        elif what == "database_user":
            self._rows(["DATABASE()", "USER()"], [[s.database or None, f"{s.user}@{s.host}"]], more)
        elif what == "user":
            self._rows([name or "USER()"], [[f"{s.user}@{s.host}"]], more)
        elif what == "databases":
            self._rows(["Database"], [[self.f.cfg.coordinator.database]], more)
        else:  # pragma: no cover - parse() returns only the kinds above
            raise Failed(E.ER_NOT_SUPPORTED_YET, "42000", f"unsupported session statement {what}")
        if what not in ("warnings", "warning_count"):
            s.warnings = []

    def use(self, db: str) -> None:
        want = self.f.cfg.coordinator.database
        if db != want:
            raise Failed(c.ER_DBACCESS_DENIED_ERROR, "42000",
                         f"Access denied for user '{self.s.user}'@'{self.s.host}' to database '{db}': the "
                         f"coordinator replicates only the database '{want}'")
        self.s.database = db

    # --- SQL: reads and writes ---

    async def sql(self, st: Sql, text: str, more: bool, binary: Any) -> None:
        kind = st.stmt.kind
        if txnflow.active(self) and await txnflow.statement(self, st, text, more, binary):
            return
        if kind is Kind.READ:
            self.f.count("reads")
            await self.read(st, text, more, binary)
            return
        self.f.count("writes" if kind is Kind.WRITE else "ddl")
        try:
            out: WriteOutcome = await self.f.replicator.submit(_KIND[kind], (st.stmt.sql,))
        except ApiError as exc:
            raise Failed(*E.of_api_error(exc)) from None
        self.written(out, more)

    def written(self, out: WriteOutcome, more: bool) -> None:
        s = self.s
        res = out.results[0] if out.results else (0, 0)
        rows, insert_id = max(res[0], 0), res[1]
        matched = res[2] if len(res) > 2 else -1
        warnings = res[3] if len(res) > 3 else 0
        info = ""
        affected = rows
        if matched >= 0:
            info = f"Rows matched: {matched}  Changed: {rows}  Warnings: {warnings}"
            if s.found_rows:
                affected = matched
        s.last_write_ts = out.ts
        if insert_id:
            s.last_insert_id = insert_id
        s.warnings = [("Warning", 1000, "a warning on the leader (details are not kept)")] * min(warnings, 1) \
            if warnings else []
        data = res[4] if len(res) > 4 else None
        if data is not None:  # INSERT … RETURNING: its rows
            names, values = data
            self._rows(list(names), [list(r) for r in values], more)
            return
        self._ok(affected, insert_id, warnings, info, more)

    async def read(self, st: Sql, text: str, more: bool, binary: Any) -> None:
        s = self.s
        consistency = st.consistency or s.consistency
        try:
            target = await self.f.reads.target(consistency, s.last_write_ts if consistency == "session" else 0)
        except ApiError as exc:
            raise Failed(*E.of_api_error(exc)) from None
        sink = (BinarySink if binary else TextSink)(self.send, s.status(more), s.deprecate_eof)
        command = bytes([c.COM_QUERY]) + text.encode("utf-8", "surrogateescape")
        for attempt in (0, 1):
            try:
                b = await self.f.backends.acquire(target, s.deprecate_eof, self.f.cfg.mysql.connect_timeout_s)
            except ReplicaDown as exc:
                if attempt == 0 and target != self.f.replicator.leader_id:
                    target = self.f.replicator.leader_id
                    continue
                raise Failed(c.ER_UNKNOWN_ERROR, "HY000", f"{target} could not serve the read: {exc}") from None
            started = False

            def forward(payload: bytes, last: bool) -> None:
                nonlocal started
                started = True
                sink(payload, last)

            try:
                m = self.f.cfg.mysql
                res = await b.relay(command, forward, m.query_timeout_s + m.max_statement_time_s)
            except ReplicaDown as exc:
                if not started and attempt == 0:  # nothing sent to the client yet: once more, on the leader
                    target = self.f.replicator.leader_id
                    continue
                raise Failed(c.ER_UNKNOWN_ERROR, "HY000", f"{target} failed during the read: {exc}") from None
            finally:
                self.f.backends.release(b)
            s.warnings = ([("Warning", 1000, f"{sink.warnings} warning(s) on {target} (details are not kept)")]
                          if sink.warnings else [])
            if res.kind == "err":  # the server's ERR went to the client: the query stops here
                self.f.count("errors")
                raise Answered()
            return

    # --- prepared statements ---

    async def prepare(self, text: str) -> None:
        s = self.s
        try:
            parsed, text = parse(text, self.f.cfg.coordinator.internal_schema)
        except SqlRejected as exc:
            raise Failed(*E.of_rejection(exc)) from None
        except Refused as exc:
            raise Failed(exc.errno, E.sqlstate(exc.errno), exc.message) from None
        params: list[Any] = []
        cols: list[Any] = []
        qmarks = qmark_positions(text)
        if isinstance(parsed, Sql):
            meta = await self.f.metadata(text, s.deprecate_eof, parsed.stmt.kind is not Kind.READ)
            params, cols = meta.params, meta.columns
        elif qmarks:
            raise Failed(c.ER_UNSUPPORTED_PS, "HY000", "This command is not supported in the prepared statement "
                         "protocol yet")
        stmt_id = s.next_statement_id
        s.next_statement_id += 1
        s.prepared[stmt_id] = PreparedStatement(stmt_id, text, parsed, params, cols, qmarks,
                                                StatementParams(len(params)))
        for p in prepare_ok(stmt_id, cols, params, capabilities=s.capabilities):
            self.send(p)

    async def execute(self, payload: bytes) -> None:
        s = self.s
        stmt_id = struct.unpack_from("<I", payload, 1)[0]
        ps = s.prepared.get(stmt_id)
        if ps is None:
            raise Failed(c.ER_UNKNOWN_STMT_HANDLER, "HY000", f"Unknown prepared statement handler ({stmt_id}) given "
                         "to mysqld_stmt_execute")
        s.queries += 1
        try:
            ex = ps.state.parse_execute(payload)
        except (ProtocolError, ValueError) as exc:
            raise Failed(c.ER_MALFORMED_PACKET, "HY000", f"malformed COM_STMT_EXECUTE: {exc}") from None
        if isinstance(ps.parsed, Local):
            if ps.parsed.what in TXN_CONTROL:  # sysbench prepares BEGIN and COMMIT
                await txnflow.control(self, ps.parsed, ps.sql, False)
            else:
                self.local(ps.parsed, False)
            return
        try:
            text = bind_qmarks(ps.sql, ps.qmarks, list(ex.values)) if ps.qmarks else ps.sql
        except BindError as exc:
            raise Failed(c.ER_WRONG_ARGUMENTS, "HY000", str(exc)) from None
        st = ps.parsed
        if st.stmt.kind is not Kind.READ:
            st = Sql(type(st.stmt)(st.stmt.kind, st.stmt.verb, text), st.consistency)
        await self.sql(st, text, False, binary=ps.columns)

    def close_statement(self, stmt_id: int) -> None:
        self.s.prepared.pop(stmt_id, None)

    def reset_statement(self, stmt_id: int) -> None:
        ps = self.s.prepared.get(stmt_id)
        if ps is None:
            raise Failed(c.ER_UNKNOWN_STMT_HANDLER, "HY000", f"Unknown prepared statement handler ({stmt_id}) given "
                         "to mysqld_stmt_reset")
        ps.state.reset()
        self._ok()

    # --- other commands ---

    async def field_list(self, payload: bytes) -> None:
        table, _wild = parse_field_list(payload)
        if "`" in table or not table:
            raise Failed(c.ER_NO_SUCH_TABLE, "42S02", f"Table '{table}' doesn't exist")
        try:
            await self.f.relay_command(self.f.replicator.leader_id, payload, self.send, self.s)
        except ReplicaDown as exc:
            raise Failed(c.ER_UNKNOWN_ERROR, "HY000", f"the leader could not list the fields: {exc}") from None
        except ServerError as exc:
            raise Failed(exc.errno, exc.sqlstate, exc.message) from None
