"""Real clients against a tiny asyncio server built only on ``coordinator.mysqlproto``.

The server below authenticates ``root``/``secret`` with mysql_native_password (switching
clients that ask for another plugin), answers a few canned queries, echoes prepared
statement parameters back as binary rows, and records every command it received. It is
driven by the Debian ``mariadb`` CLI (batch and interactive), ``mariadb-admin``, asyncmy
(text protocol and its server-side prepared statements) and Connector/C (libmariadb, the
library sysbench links) through ctypes. Each client test is skipped when its client is
missing; each runs in well under 10 s and closes the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import datetime
import os
import platform
import pty
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import asyncmy
import asyncmy.errors
import pytest

from coordinator.mysqlproto import binary, commands, handshake, results
from coordinator.mysqlproto import constants as c
from coordinator.mysqlproto.columns import ColumnDefinition, column
from coordinator.mysqlproto.framing import PacketReader, PacketWriter
from coordinator.mysqlproto.values import Value

USER = "root"
PASSWORD = "secret"
STORED = handshake.native_hash(PASSWORD)
VERSION_COMMENT = "coordinator test server"

TYPED_COLUMNS = [
    column("id", c.MYSQL_TYPE_LONG, unsigned=True, nullable=False, table="t"),
    column("name", c.MYSQL_TYPE_VAR_STRING, table="t"),
    column("price", c.MYSQL_TYPE_NEWDECIMAL, decimals=2, table="t"),
    column("at", c.MYSQL_TYPE_DATETIME, decimals=6, table="t"),
    column("day", c.MYSQL_TYPE_DATE, table="t"),
    column("dur", c.MYSQL_TYPE_TIME, table="t"),
    column("ratio", c.MYSQL_TYPE_DOUBLE, table="t"),
    column("data", c.MYSQL_TYPE_BLOB, table="t"),
]
TYPED_ROWS: list[list[Value]] = [
    [1, "héllo", Decimal("-15.50"), datetime.datetime(2024, 2, 29, 13, 14, 15, 123), datetime.date(2001, 1, 2),
     datetime.timedelta(hours=-838, minutes=-59, seconds=-59), 0.1, b"\x00\xff"],
    [2, None, None, None, None, None, None, None],
]
SBTEST_C = column("c", c.MYSQL_TYPE_STRING, length=480, nullable=False, table="sbtest1")


@dataclass
class Statement:
    sql: str
    columns: list[ColumnDefinition]
    params: binary.StatementParams


@dataclass
class ServerState:
    """Shared by every connection of one server; tests read it."""

    capabilities: int = c.DEFAULT_SERVER_CAPABILITIES
    commands: list[tuple[int, bytes]] = field(default_factory=list)
    executed: list[binary.StmtExecute] = field(default_factory=list)
    handshakes: list[handshake.HandshakeResponse] = field(default_factory=list)
    connections: list[FakeMySQL] = field(default_factory=list)
    next_connection_id: int = 1


class FakeMySQL(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.reader = PacketReader()
        self.scramble = handshake.make_scramble(secrets.token_bytes(20))
        self.phase = "auth"
        self.caps = state.capabilities
        self.status = c.SERVER_STATUS_AUTOCOMMIT
        self.encoding = "utf-8"
        self.user = ""
        self.database: str | None = None
        self.statements: dict[int, Statement] = {}
        self.next_stmt = 1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.state.connections.append(self)
        conn_id = self.state.next_connection_id
        self.state.next_connection_id += 1
        hello = handshake.build_handshake(conn_id, self.scramble, capabilities=self.caps, status_flags=self.status)
        transport.write(PacketWriter(0).frame(hello))

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        for seq, payload in self.reader:
            if self.transport is None or self.transport.is_closing():
                return
            out = PacketWriter(seq + 1)
            answer = self.handle(payload)
            if answer:
                self.transport.write(out.frame_all(answer))
            if self.phase == "closed":
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    # --- connection phase --------------------------------------------------------------
    def handle(self, payload: bytes) -> list[bytes]:
        if self.phase == "auth":
            if handshake.is_ssl_request(payload):
                self.phase = "closed"
                return [results.err_packet(c.ER_HANDSHAKE_ERROR, "SSL is not supported")]
            resp = handshake.parse_handshake_response(payload, self.caps)
            self.state.handshakes.append(resp)
            self.caps = resp.effective_capabilities
            self.user = resp.user
            self.database = resp.database
            self.encoding = c.python_encoding(resp.charset) or "utf-8"
            if handshake.needs_auth_switch(resp):
                self.phase = "switch"
                return [handshake.auth_switch_request(self.scramble)]
            return self.finish_auth(resp.auth_response)
        if self.phase == "switch":
            return self.finish_auth(handshake.parse_auth_switch_response(payload))
        return self.command(payload)

    def finish_auth(self, auth: bytes) -> list[bytes]:
        if self.user == USER and handshake.verify_native(self.scramble, auth, STORED):
            if self.database == "nosuchdb":
                self.phase = "closed"
                return [results.err_packet(c.ER_BAD_DB_ERROR, "Unknown database 'nosuchdb'")]
            self.phase = "command"
            return [results.ok_packet(status=self.status)]
        self.phase = "closed"
        using = "YES" if auth else "NO"
        msg = f"Access denied for user '{self.user}'@'127.0.0.1' (using password: {using})"
        return [results.err_packet(c.ER_ACCESS_DENIED_ERROR, msg)]

    # --- command phase -----------------------------------------------------------------
    def ok(self, affected: int = 0, last_id: int = 0, info: str = "") -> list[bytes]:
        return [results.ok_packet(affected, last_id, self.status, 0, info)]

    def command(self, payload: bytes) -> list[bytes]:
        cmd = commands.command_of(payload)
        self.state.commands.append((cmd, payload))
        if cmd == c.COM_QUIT:
            self.phase = "closed"
            return []
        if cmd == c.COM_PING or cmd == c.COM_RESET_CONNECTION:
            return self.ok()
        if cmd == c.COM_INIT_DB:
            if commands.parse_init_db(payload, self.encoding) == "nosuchdb":
                return [results.err_packet(c.ER_BAD_DB_ERROR, "Unknown database 'nosuchdb'")]
            return self.ok()
        if cmd == c.COM_FIELD_LIST:
            table, _ = commands.parse_field_list(payload, self.encoding)
            return results.field_list_response(TYPED_COLUMNS, capabilities=self.caps, status=self.status,
                                               defaults=[b"0"] + [None] * 7)
        if cmd == c.COM_SET_OPTION:
            commands.parse_set_option(payload)
            return [results.end_of_rows(self.status, self.caps)]
        if cmd == c.COM_QUERY:
            return self.query(commands.parse_query(payload, self.encoding))
        if cmd == c.COM_STMT_PREPARE:
            return self.prepare(commands.parse_stmt_prepare(payload, self.encoding))
        if cmd == c.COM_STMT_EXECUTE:
            return self.execute(payload)
        if cmd == c.COM_STMT_SEND_LONG_DATA:
            chunk = binary.parse_send_long_data(payload)
            if chunk.statement_id in self.statements:
                self.statements[chunk.statement_id].params.add_long_data(chunk)
            return []
        if cmd == c.COM_STMT_RESET:
            stmt_id = binary.parse_stmt_reset(payload)
            if stmt_id not in self.statements:
                return [results.err_packet(c.ER_UNKNOWN_STMT_HANDLER, f"Unknown prepared statement handler ({stmt_id})")]
            self.statements[stmt_id].params.reset()
            return self.ok()
        if cmd == c.COM_STMT_CLOSE:
            self.statements.pop(binary.parse_stmt_close(payload), None)
            return []
        return [results.err_packet(c.ER_UNKNOWN_COM_ERROR, "Unknown command")]

    def query(self, sql: str) -> list[bytes]:
        parts = [p.strip() for p in sql.split(";") if p.strip()] or [""]
        if len(parts) > 1 and not self.caps & c.CLIENT_MULTI_STATEMENTS:
            return [results.err_packet(c.ER_PARSE_ERROR, "You have an error in your SQL syntax")]
        packets: list[bytes] = []
        for i, part in enumerate(parts):
            more = i < len(parts) - 1
            answer = self.statement(part, more)
            packets += answer
            if answer[-1][0] == results.ERR_HEADER:
                break
        return packets

    def statement(self, sql: str, more: bool) -> list[bytes]:
        low = " ".join(sql.lower().split())
        status = self.status | (c.SERVER_MORE_RESULTS_EXISTS if more else 0)

        def rs(cols: list[ColumnDefinition], rows: list[list[Value]]) -> list[bytes]:
            return results.text_resultset(cols, rows, capabilities=self.caps, status=self.status,
                                          more_results=more, encoding=self.encoding)

        if low == "select @@version_comment limit 1":
            return rs([column("@@version_comment", c.MYSQL_TYPE_VAR_STRING)], [[VERSION_COMMENT]])
        if low.startswith("select 1"):
            return rs([column("1", c.MYSQL_TYPE_LONG, nullable=False, length=1)], [[1]])
        if low == "select 2":
            return rs([column("2", c.MYSQL_TYPE_LONG, nullable=False, length=1)], [[2]])
        if low == "select * from t":
            return rs(TYPED_COLUMNS, TYPED_ROWS)
        if low in ("show tables", "show databases"):
            return rs([column("Tables_in_t" if "tables" in low else "Database", c.MYSQL_TYPE_VAR_STRING)], [["t"]])
        if low.startswith("insert"):
            return [results.ok_packet(3, 42, status, 0, "Records: 3  Duplicates: 0  Warnings: 0")]
        if low.startswith("update"):
            return [results.ok_packet(1, 0, status, 0, "Rows matched: 1  Changed: 1  Warnings: 0")]
        if low.startswith("set "):
            return [results.ok_packet(0, 0, status)]
        return [results.err_packet(c.ER_PARSE_ERROR, "You have an error in your SQL syntax; check the manual that "
                                   f"corresponds to your MariaDB server version for the right syntax to use near "
                                   f"'{sql[:80]}' at line 1")]

    def prepare(self, sql: str) -> list[bytes]:
        low = " ".join(sql.lower().split())
        n = sql.count("?")
        if low.startswith("select ?"):
            cols = [binary.PARAM_DEFINITION] * n
        elif low.startswith("select c from sbtest1"):
            cols = [SBTEST_C]
        elif low.split(" ")[0] in ("insert", "update", "delete", "begin", "commit"):
            cols = []
        else:
            return [results.err_packet(c.ER_UNSUPPORTED_PS, "This command is not supported in the prepared "
                                       "statement protocol yet")]
        stmt_id = self.next_stmt
        self.next_stmt += 1
        self.statements[stmt_id] = Statement(sql, cols, binary.StatementParams(n))
        return binary.prepare_ok(stmt_id, cols, n, capabilities=self.caps, status=self.status,
                                 encoding=self.encoding)

    def execute(self, payload: bytes) -> list[bytes]:
        stmt_id = binary.peek_statement_id(payload)
        stmt = self.statements.get(stmt_id)
        if stmt is None:
            msg = f"Unknown prepared statement handler ({stmt_id}) given to mysqld_stmt_execute"
            return [results.err_packet(c.ER_UNKNOWN_STMT_HANDLER, msg)]
        ex = stmt.params.parse_execute(payload, self.encoding)
        self.state.executed.append(ex)
        low = stmt.sql.lower()
        if low.startswith("select ?"):
            cols = [echo_column(f"p{i}", t, v) for i, (t, v) in enumerate(zip(ex.types, ex.values, strict=True))]
            return binary.binary_resultset(cols, [list(ex.values)], capabilities=self.caps, status=self.status,
                                           encoding=self.encoding)
        if low.startswith("select c from sbtest1"):
            return binary.binary_resultset(stmt.columns, [[f"c-{ex.values[0]!s}"]], capabilities=self.caps,
                                           status=self.status, encoding=self.encoding)
        if low.startswith("insert"):
            return self.ok(1, 42)
        return self.ok(1 if low.startswith(("update", "delete")) else 0)


def echo_column(name: str, ptype: binary.ParamType, value: object) -> ColumnDefinition:
    """A result column that sends ``value`` back in the parameter's own type."""
    if ptype.type in c.TEXT_TYPES and isinstance(value, bytes):
        return column(name, c.MYSQL_TYPE_BLOB)
    if ptype.type in c.TEXT_TYPES or ptype.type in c.BLOB_TYPES:
        return column(name, ptype.type, charset=c.CHARSET_UTF8MB4_GENERAL_CI if isinstance(value, str) else None)
    dec = 6 if ptype.type in c.DATETIME_TYPES | c.TIME_TYPES else None
    return column(name, ptype.type, unsigned=ptype.unsigned, decimals=dec)


@contextlib.asynccontextmanager
async def fake_server(capabilities: int = c.DEFAULT_SERVER_CAPABILITIES) -> AsyncIterator[tuple[int, ServerState]]:
    """Serve on 127.0.0.1, port 0 (the OS picks a free one); yields (port, state)."""
    state = ServerState(capabilities)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeMySQL(state), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], state
    finally:
        server.close()
        for conn in state.connections:
            if conn.transport is not None:
                conn.transport.close()
        await asyncio.wait_for(server.wait_closed(), 5)


# ============================================================================ the tests


def _cli(port: int, *args: str, password: str = PASSWORD) -> list[str]:
    return ["mariadb", "--no-defaults", "--protocol=tcp", "-h127.0.0.1", f"-P{port}", f"-u{USER}",
            f"-p{password}", *args]


async def _run(argv: list[str], timeout: float = 8.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _sent(state: ServerState, command: int) -> list[bytes]:
    return [payload for cmd, payload in state.commands if cmd == command]


needs_cli = pytest.mark.skipif(shutil.which("mariadb") is None, reason="the mariadb client is not installed")
BOTH_EOF_MODES = pytest.mark.parametrize(
    "caps", [c.DEFAULT_SERVER_CAPABILITIES, c.DEFAULT_SERVER_CAPABILITIES & ~c.CLIENT_DEPRECATE_EOF],
    ids=["deprecate_eof", "eof_packets"])


@needs_cli
@BOTH_EOF_MODES
async def test_cli_select_and_insert(caps: int) -> None:
    async with fake_server(caps) as (port, state):
        rc, out, err = await _run(_cli(port, "-e", "SELECT 1"))
        assert (rc, out, err) == (0, "1\n1\n", "")
        rc, out, err = await _run(_cli(port, "--batch", "-e", "select @@version_comment limit 1"))
        assert (rc, out) == (0, f"@@version_comment\n{VERSION_COMMENT}\n"), err
        rc, out, err = await _run(_cli(port, "-vv", "-e", "INSERT INTO t VALUES (1),(2),(3)"))
        assert rc == 0, err
        assert "Query OK, 3 rows affected" in out and "Records: 3  Duplicates: 0  Warnings: 0" in out
        rc, out, err = await _run(_cli(port, "--batch", "-e", "use t; SELECT * FROM t"))
        assert rc == 0, err
        assert out.splitlines() == [
            "id\tname\tprice\tat\tday\tdur\tratio\tdata",
            "1\théllo\t-15.50\t2024-02-29 13:14:15.000123\t2001-01-02\t-838:59:59\t0.1\t\\0\ufffd",
            "2\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL",
        ]
        assert _sent(state, c.COM_INIT_DB) == [b"\x02t"]
        resp = state.handshakes[0]
        assert resp.user == "root" and resp.auth_plugin == c.NATIVE_PASSWORD_PLUGIN
        assert resp.attributes["_client_name"] == "libmariadb"


@needs_cli
async def test_cli_errors() -> None:
    async with fake_server() as (port, state):
        rc, out, err = await _run(_cli(port, "-e", "SELECT nonsense"))
        assert rc == 1 and "\nERROR 1064 (42000) at line 1: You have an error in your SQL syntax" in err
        rc, out, err = await _run(_cli(port, "-e", "SELECT 1", password="wrong"))
        assert rc == 1
        assert err.strip() == "ERROR 1045 (28000): Access denied for user 'root'@'127.0.0.1' (using password: YES)"
        rc, out, err = await _run(_cli(port, "nosuchdb", "-e", "SELECT 1"))
        assert rc == 1 and "ERROR 1049 (42000)" in err


@needs_cli
async def test_cli_switched_from_caching_sha2() -> None:
    """A client opening with caching_sha2_password (MySQL 8 default) is switched to native."""
    async with fake_server() as (port, state):
        rc, out, err = await _run(_cli(port, "--default-auth=caching_sha2_password", "-e", "SELECT 1"))
        assert (rc, out, err) == (0, "1\n1\n", "")
        assert state.handshakes[0].auth_plugin == "caching_sha2_password"


@needs_cli
async def test_cli_interactive_session() -> None:
    """Interactive mode: banner from version_comment, auto-rehash (COM_FIELD_LIST), USE, quit."""
    async with fake_server() as (port, state):
        master, slave = pty.openpty()
        proc = await asyncio.create_subprocess_exec(*_cli(port, "t"), stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        loop = asyncio.get_running_loop()
        output = bytearray()

        async def read_until(marker: bytes) -> None:
            while marker not in output:
                chunk = await asyncio.wait_for(loop.run_in_executor(None, os.read, master, 4096), 5)
                if not chunk:
                    raise EOFError(bytes(output))
                output.extend(chunk)

        try:
            await read_until(b"]>")
            os.write(master, b"SELECT 1;\r")
            await read_until(b"1 row in set")
            os.write(master, b"quit\r")
            await asyncio.wait_for(proc.wait(), 5)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            os.close(master)
        text = output.decode("utf-8", "replace")
        assert "Server version: 10.11.19-MariaDB-coordinator " + VERSION_COMMENT in text
        assert "Welcome to the MariaDB monitor" in text
        queries = [p[1:] for p in _sent(state, c.COM_QUERY)]
        assert b"select @@version_comment limit 1" in queries
        assert _sent(state, c.COM_FIELD_LIST) == [b"\x04t\x00"]
        assert _sent(state, c.COM_QUIT)


@needs_cli
async def test_mariadb_admin_ping() -> None:
    if shutil.which("mariadb-admin") is None:
        pytest.skip("mariadb-admin is not installed")
    async with fake_server() as (port, state):
        rc, out, err = await _run(["mariadb-admin", "--no-defaults", "--protocol=tcp", "-h127.0.0.1", f"-P{port}",
                                   "-uroot", f"-p{PASSWORD}", "ping"])
        assert (rc, out.strip()) == (0, "mysqld is alive"), err
        assert _sent(state, c.COM_PING)


@needs_cli
async def test_mariadb_slap() -> None:
    if shutil.which("mariadb-slap") is None:
        pytest.skip("mariadb-slap is not installed")
    async with fake_server() as (port, state):
        rc, out, err = await _run(["mariadb-slap", "--no-defaults", "--protocol=tcp", "-h127.0.0.1", f"-P{port}",
                                   "-uroot", f"-p{PASSWORD}", "--create-schema=t", "--no-drop", "--query=SELECT 1",
                                   "--concurrency=2", "--iterations=2"])
        assert rc == 0, err
        assert "Number of clients running queries: 2" in out
        assert _sent(state, c.COM_QUERY) == [b"\x03SELECT 1"] * 4
        assert any(h.database == "t" for h in state.handshakes)


@BOTH_EOF_MODES
async def test_asyncmy_text_protocol(caps: int) -> None:
    async with fake_server(caps) as (port, state):
        conn = await asyncmy.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, db="t")
        try:
            async with conn.cursor() as cur:
                await cur.execute("SELECT 1")
                assert await cur.fetchall() == ((1,),)
                await cur.execute("select @@version_comment limit 1")
                assert await cur.fetchall() == ((VERSION_COMMENT,),)
                await cur.execute("INSERT INTO t VALUES (1),(2),(3)")
                assert (cur.rowcount, cur.lastrowid) == (3, 42)
                await cur.execute("UPDATE t SET name = 'x' WHERE id = 1")
                assert cur.rowcount == 1
                await cur.execute("SELECT * FROM t")
                assert [list(r) for r in await cur.fetchall()] == TYPED_ROWS
                assert [d[0] for d in cur.description] == [col.name for col in TYPED_COLUMNS]
                await cur.execute("SELECT 1; SELECT 2")
                assert await cur.fetchall() == ((1,),)
                assert await cur.nextset()
                assert await cur.fetchall() == ((2,),)
                assert not await cur.nextset()
                with pytest.raises(asyncmy.errors.ProgrammingError) as info:
                    await cur.execute("BOGUS")
                assert info.value.args[0] == 1064
                await cur.execute("SELECT 1")
                assert await cur.fetchall() == ((1,),)
            await conn.ping(reconnect=False)
            await conn.select_db("t")
        finally:
            conn.close()
        resp = state.handshakes[0]
        assert resp.database == "t" and resp.user == "root"
        assert bool(resp.effective_capabilities & c.CLIENT_DEPRECATE_EOF) == bool(caps & c.CLIENT_DEPRECATE_EOF)
        assert b"\x03SET AUTOCOMMIT = 0" in [p for _, p in state.commands]
        assert _sent(state, c.COM_PING) and _sent(state, c.COM_INIT_DB)


async def test_asyncmy_wrong_password() -> None:
    async with fake_server() as (port, _):
        with pytest.raises(asyncmy.errors.OperationalError) as info:
            await asyncmy.connect(host="127.0.0.1", port=port, user=USER, password="nope")
        assert info.value.args[0] == 1045


ECHO_VALUES: list[object] = [
    None, -1, 2**64 - 1, 0, 2.5, "héllo ☃", "", b"\x00\xff\x01", Decimal("-15.50"),
    datetime.datetime(2020, 1, 2, 3, 4, 5, 6), datetime.datetime(2020, 1, 2, 3, 4, 5), datetime.date(1999, 12, 31),
    datetime.timedelta(days=-1, seconds=5), datetime.timedelta(hours=838, minutes=59, seconds=59), True,
]


@BOTH_EOF_MODES
async def test_asyncmy_prepared_statements(caps: int) -> None:
    """asyncmy's own binary encoder -> our decoder -> our binary rows -> asyncmy's decoder."""
    async with fake_server(caps) as (port, state):
        conn = await asyncmy.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, db="t")
        try:
            stmt = await conn.prepare("SELECT " + ", ".join("?" * len(ECHO_VALUES)))
            assert stmt.parameter_count == len(ECHO_VALUES)
            result = await stmt.execute(tuple(ECHO_VALUES))
            expected = [1 if v is True else v for v in ECHO_VALUES]
            assert list(result.rows[0]) == expected
            again = await stmt.execute(tuple(ECHO_VALUES))
            assert list(again.rows[0]) == expected
            await stmt.close()
            point = await conn.prepare("SELECT c FROM sbtest1 WHERE id=?")
            assert (await point.execute((7,))).rows == (("c-7",),)
            ins = await conn.prepare("INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)")
            res = await ins.execute((0, 1, "c", "pad"))
            assert (res.affected_rows, res.insert_id) == (1, 42)
            with pytest.raises(asyncmy.errors.Error) as info:
                await conn.prepare("LOCK TABLES t WRITE")
            assert info.value.args[0] == c.ER_UNSUPPORTED_PS
        finally:
            conn.close()
        assert _sent(state, c.COM_STMT_CLOSE)


# --- Connector/C (libmariadb, what sysbench links) through ctypes ----------------------------

class MYSQL_TIME(ctypes.Structure):
    _fields_ = [("year", ctypes.c_uint), ("month", ctypes.c_uint), ("day", ctypes.c_uint),
                ("hour", ctypes.c_uint), ("minute", ctypes.c_uint), ("second", ctypes.c_uint),
                ("second_part", ctypes.c_ulong), ("neg", ctypes.c_char), ("time_type", ctypes.c_int)]


class MYSQL_BIND(ctypes.Structure):
    """Connector/C 3.x ``MYSQL_BIND`` (mariadb_stmt.h), x86-64 layout."""

    _fields_ = [("length", ctypes.POINTER(ctypes.c_ulong)), ("is_null", ctypes.POINTER(ctypes.c_char)),
                ("buffer", ctypes.c_void_p), ("error", ctypes.POINTER(ctypes.c_char)), ("u", ctypes.c_void_p),
                ("store_param_func", ctypes.c_void_p), ("fetch_result", ctypes.c_void_p),
                ("skip_result", ctypes.c_void_p), ("buffer_length", ctypes.c_ulong), ("offset", ctypes.c_ulong),
                ("length_value", ctypes.c_ulong), ("flags", ctypes.c_uint), ("pack_length", ctypes.c_uint),
                ("buffer_type", ctypes.c_int), ("error_value", ctypes.c_char), ("is_unsigned", ctypes.c_char),
                ("long_data_used", ctypes.c_char), ("is_null_value", ctypes.c_char), ("extension", ctypes.c_void_p)]


def _libmariadb() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("mariadb") or "libmariadb.so.3"
    if platform.machine() != "x86_64":
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    V, S, U, L, N = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_ulong, ctypes.c_int
    signatures = {
        "mysql_init": (V, [V]), "mysql_real_connect": (V, [V, S, S, S, S, U, S, L]), "mysql_error": (S, [V]),
        "mysql_errno": (U, [V]), "mysql_close": (None, [V]), "mysql_query": (N, [V, S]),
        "mysql_store_result": (V, [V]), "mysql_free_result": (None, [V]), "mysql_next_result": (N, [V]),
        "mysql_num_rows": (ctypes.c_ulonglong, [V]), "mysql_affected_rows": (ctypes.c_ulonglong, [V]),
        "mysql_insert_id": (ctypes.c_ulonglong, [V]), "mysql_info": (S, [V]), "mysql_ping": (N, [V]),
        "mysql_select_db": (N, [V, S]), "mysql_reset_connection": (N, [V]), "mysql_list_fields": (V, [V, S, S]),
        "mysql_num_fields": (U, [V]), "mysql_stmt_init": (V, [V]), "mysql_stmt_prepare": (N, [V, S, L]),
        "mysql_stmt_param_count": (L, [V]), "mysql_stmt_field_count": (U, [V]),
        "mysql_stmt_bind_param": (ctypes.c_char, [V, V]), "mysql_stmt_bind_result": (ctypes.c_char, [V, V]),
        "mysql_stmt_execute": (N, [V]), "mysql_stmt_store_result": (N, [V]), "mysql_stmt_fetch": (N, [V]),
        "mysql_stmt_affected_rows": (ctypes.c_ulonglong, [V]), "mysql_stmt_insert_id": (ctypes.c_ulonglong, [V]),
        "mysql_stmt_send_long_data": (ctypes.c_char, [V, U, S, L]), "mysql_stmt_reset": (ctypes.c_char, [V]),
        "mysql_stmt_close": (ctypes.c_char, [V]), "mysql_stmt_errno": (U, [V]), "mysql_stmt_error": (S, [V]),
        "mysql_get_server_info": (S, [V]),
    }
    for fname, (restype, argtypes) in signatures.items():
        func = getattr(lib, fname)
        func.restype, func.argtypes = restype, argtypes
    return lib


LIB = _libmariadb()
needs_libmariadb = pytest.mark.skipif(LIB is None, reason="libmariadb (Connector/C 3) is not available")


class Binds:
    """An array of MYSQL_BIND plus the buffers it points into (kept alive here)."""

    def __init__(self, n: int) -> None:
        self.array = (MYSQL_BIND * n)()
        self.keep: list[object] = []

    def set(self, i: int, type_: int, buf: ctypes._CData | None, length: int | None = None,
            unsigned: bool = False) -> None:
        b = self.array[i]
        b.buffer_type = type_
        b.is_unsigned = b"\x01" if unsigned else b"\x00"
        if buf is None:
            flag = ctypes.c_char(b"\x01")
            self.keep.append(flag)
            b.is_null = ctypes.pointer(flag)
            return
        self.keep.append(buf)
        b.buffer = ctypes.cast(ctypes.pointer(buf), ctypes.c_void_p)
        if length is not None:
            size = ctypes.c_ulong(length)
            self.keep.append(size)
            b.buffer_length = length
            b.length = ctypes.pointer(size)


def _connector_c_session(port: int) -> dict[str, object]:
    """Runs in a thread: a Connector/C session covering what sysbench and the CLI do."""
    assert LIB is not None
    lib = LIB
    seen: dict[str, object] = {}
    m = lib.mysql_init(None)
    multi_statements, found_rows = 1 << 16, 2
    try:
        if not lib.mysql_real_connect(m, b"127.0.0.1", USER.encode(), PASSWORD.encode(), b"t", port, None,
                                      multi_statements | found_rows):
            raise AssertionError(lib.mysql_error(m))
        seen["server_info"] = lib.mysql_get_server_info(m)
        # multi-statement text query: SELECT, UPDATE, SELECT
        assert lib.mysql_query(m, b"SELECT 1; UPDATE t SET name='x' WHERE id=1; SELECT 2") == 0
        multi: list[object] = []
        while True:
            res = lib.mysql_store_result(m)
            if res:
                multi.append(("rows", lib.mysql_num_rows(res)))
                lib.mysql_free_result(res)
            else:
                multi.append(("ok", lib.mysql_affected_rows(m), lib.mysql_info(m)))
            status = lib.mysql_next_result(m)
            if status != 0:
                assert status == -1, lib.mysql_error(m)
                break
        seen["multi"] = multi
        assert lib.mysql_query(m, b"INSERT INTO t VALUES (1),(2),(3)") == 0
        seen["insert"] = (lib.mysql_affected_rows(m), lib.mysql_insert_id(m), lib.mysql_info(m))
        fields = lib.mysql_list_fields(m, b"t", None)
        assert fields, lib.mysql_error(m)
        seen["field_list"] = lib.mysql_num_fields(fields)
        lib.mysql_free_result(fields)
        assert lib.mysql_ping(m) == 0 and lib.mysql_select_db(m, b"t") == 0
        assert lib.mysql_reset_connection(m) == 0
        seen["echo"] = _connector_c_echo(lib, m)
        seen["point_select"], seen["write"], seen["unsupported"] = _connector_c_sysbench(lib, m)
    finally:
        lib.mysql_close(m)
    return seen


def _connector_c_echo(lib: ctypes.CDLL, m: int) -> list[list[bytes | None]]:
    """Typed parameters echoed back and fetched as strings by the library's own converters."""
    st = lib.mysql_stmt_init(m)
    q = b"SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
    assert lib.mysql_stmt_prepare(st, q, len(q)) == 0, lib.mysql_stmt_error(st)
    assert (lib.mysql_stmt_param_count(st), lib.mysql_stmt_field_count(st)) == (10, 10)
    p = Binds(10)
    p.set(0, c.MYSQL_TYPE_LONGLONG, ctypes.c_longlong(-5))
    p.set(1, c.MYSQL_TYPE_LONG, ctypes.c_uint(4000000000), unsigned=True)
    p.set(2, c.MYSQL_TYPE_DOUBLE, ctypes.c_double(2.5))
    text = "héllo".encode()
    p.set(3, c.MYSQL_TYPE_STRING, ctypes.create_string_buffer(text), len(text))
    p.set(4, c.MYSQL_TYPE_BLOB, ctypes.create_string_buffer(b"\x00\xff\x01", 3), 3)
    p.set(5, c.MYSQL_TYPE_DATETIME, MYSQL_TIME(2024, 2, 29, 13, 14, 15, 123, b"\x00", 1))
    p.set(6, c.MYSQL_TYPE_TIME, MYSQL_TIME(0, 0, 1, 10, 59, 58, 0, b"\x01", 2))
    p.set(7, c.MYSQL_TYPE_DATE, MYSQL_TIME(2001, 1, 2, 0, 0, 0, 0, b"\x00", 0))
    p.set(8, c.MYSQL_TYPE_LONG, None)
    p.set(9, c.MYSQL_TYPE_NEWDECIMAL, ctypes.create_string_buffer(b"-15.50"), 6)
    assert lib.mysql_stmt_bind_param(st, p.array) == b"\x00", lib.mysql_stmt_error(st)
    rows = []
    for _ in range(2):  # the second execution reuses the bound types (new-params-bound = 0)
        assert lib.mysql_stmt_execute(st) == 0, lib.mysql_stmt_error(st)
        rows += _fetch_strings(lib, st, 10)
    assert lib.mysql_stmt_close(st) == b"\x00"
    return rows


def _fetch_strings(lib: ctypes.CDLL, st: int, n: int) -> list[list[bytes | None]]:
    r = (MYSQL_BIND * n)()
    bufs = [ctypes.create_string_buffer(64) for _ in range(n)]
    lens = [ctypes.c_ulong(0) for _ in range(n)]
    nulls = [ctypes.c_char(b"\x00") for _ in range(n)]
    for i in range(n):
        r[i].buffer_type = c.MYSQL_TYPE_STRING
        r[i].buffer = ctypes.cast(bufs[i], ctypes.c_void_p)
        r[i].buffer_length = 64
        r[i].length = ctypes.pointer(lens[i])
        r[i].is_null = ctypes.pointer(nulls[i])
    assert lib.mysql_stmt_bind_result(st, r) == b"\x00", lib.mysql_stmt_error(st)
    assert lib.mysql_stmt_store_result(st) == 0, lib.mysql_stmt_error(st)
    rows = []
    while (rc := lib.mysql_stmt_fetch(st)) == 0:
        rows.append([None if nulls[i].value == b"\x01" else bufs[i].raw[:lens[i].value] for i in range(n)])
    assert rc == 100, (rc, lib.mysql_stmt_error(st))  # MYSQL_NO_DATA
    return rows


def _connector_c_sysbench(lib: ctypes.CDLL, m: int) -> tuple[object, object, object]:
    """sysbench's pattern: point select (1 column = read), a write with long data, ERR 1295."""
    st = lib.mysql_stmt_init(m)
    q = b"SELECT c FROM sbtest1 WHERE id=?"
    assert lib.mysql_stmt_prepare(st, q, len(q)) == 0, lib.mysql_stmt_error(st)
    columns = lib.mysql_stmt_field_count(st)
    p = Binds(1)
    p.set(0, c.MYSQL_TYPE_LONG, ctypes.c_int(7))
    assert lib.mysql_stmt_bind_param(st, p.array) == b"\x00"
    assert lib.mysql_stmt_execute(st) == 0, lib.mysql_stmt_error(st)
    point = (columns, _fetch_strings(lib, st, 1))
    lib.mysql_stmt_close(st)

    st = lib.mysql_stmt_init(m)
    q = b"INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)"
    assert lib.mysql_stmt_prepare(st, q, len(q)) == 0, lib.mysql_stmt_error(st)
    p = Binds(4)
    p.set(0, c.MYSQL_TYPE_LONG, ctypes.c_int(0))
    p.set(1, c.MYSQL_TYPE_LONG, ctypes.c_int(5))
    p.set(2, c.MYSQL_TYPE_STRING, ctypes.create_string_buffer(b"ccc"), 3)
    p.set(3, c.MYSQL_TYPE_STRING, ctypes.create_string_buffer(b"pad"), 3)
    assert lib.mysql_stmt_bind_param(st, p.array) == b"\x00"
    assert lib.mysql_stmt_send_long_data(st, 2, b"long ", 5) == b"\x00"
    assert lib.mysql_stmt_send_long_data(st, 2, b"data", 4) == b"\x00"
    assert lib.mysql_stmt_execute(st) == 0, lib.mysql_stmt_error(st)
    write = [(lib.mysql_stmt_affected_rows(st), lib.mysql_stmt_insert_id(st))]
    assert lib.mysql_stmt_reset(st) == b"\x00", lib.mysql_stmt_error(st)
    assert lib.mysql_stmt_execute(st) == 0, lib.mysql_stmt_error(st)
    write.append((lib.mysql_stmt_affected_rows(st), lib.mysql_stmt_insert_id(st)))
    lib.mysql_stmt_close(st)

    st = lib.mysql_stmt_init(m)
    q = b"LOCK TABLES t WRITE"
    unsupported = (lib.mysql_stmt_prepare(st, q, len(q)), lib.mysql_stmt_errno(st))
    lib.mysql_stmt_close(st)
    return point, write, unsupported


@needs_libmariadb
@BOTH_EOF_MODES
async def test_connector_c(caps: int) -> None:
    async with fake_server(caps) as (port, state):
        seen = await asyncio.wait_for(asyncio.to_thread(_connector_c_session, port), 10)
    assert seen["server_info"] == b"10.11.19-MariaDB-coordinator"  # Connector/C strips the 5.5.5- prefix
    assert seen["multi"] == [("rows", 1), ("ok", 1, b"Rows matched: 1  Changed: 1  Warnings: 0"), ("rows", 1)]
    assert seen["insert"] == (3, 42, b"Records: 3  Duplicates: 0  Warnings: 0")
    assert seen["field_list"] == len(TYPED_COLUMNS)
    row = [b"-5", b"4000000000", b"2.5", "héllo".encode(), b"\x00\xff\x01", b"2024-02-29 13:14:15.000123",
           b"-34:59:58.000000", b"2001-01-02", None, b"-15.50"]  # TIME column has decimals=6
    assert seen["echo"] == [row, row]
    assert seen["point_select"] == (1, [[b"c-7"]])
    assert seen["write"] == [(1, 42), (1, 42)]
    assert seen["unsupported"] == (1, c.ER_UNSUPPORTED_PS)
    executes = _sent(state, c.COM_STMT_EXECUTE)
    assert executes[0][12] == 1 and executes[1][12] == 0  # the second run does not resend types
    long_data = _sent(state, c.COM_STMT_SEND_LONG_DATA)
    assert [p[7:] for p in long_data] == [b"long ", b"data"]
    assert _sent(state, c.COM_STMT_RESET) and _sent(state, c.COM_RESET_CONNECTION)
    inserts = [ex.values for ex in state.executed if len(ex.values) == 4]
    assert inserts == [(0, 5, "long data", "pad"), (0, 5, "ccc", "pad")]
