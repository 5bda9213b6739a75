"""One client connection of the MySQL front end: framing, the login, and the command loop.

An ``asyncio.Protocol`` (no streams): ``data_received`` feeds the incremental packet
reader; the login (HandshakeV10 → HandshakeResponse41, an auth switch when the client
asked for another plugin, mysql_native_password against the configured users) is
decided synchronously; commands are queued and run one at a time by the connection's
command task, which owns the session. Garbage, an oversized or truncated packet, or a
protocol error closes the connection after an ERR where one can still be sent; nothing
a client sends can crash the process or leak a task.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections import deque
from typing import Any, cast

import structlog

from ..mysqlproto import constants as c
from ..mysqlproto.binary import parse_send_long_data
from ..mysqlproto.errors import OutOfOrder, PacketTooLarge, ProtocolError
from ..mysqlproto.framing import PacketReader, PacketWriter
from ..mysqlproto.handshake import (
    HandshakeResponse,
    auth_switch_request,
    build_handshake,
    is_ssl_request,
    make_scramble,
    needs_auth_switch,
    parse_auth_switch_response,
    parse_handshake_response,
    verify_native,
)
from ..mysqlproto.results import err_packet, ok_packet
from .errors import Answered, Failed
from .handler import Handler
from .session import Session

log = structlog.get_logger("coordinator.mysqlfront")

SERVER_CAPS = c.DEFAULT_SERVER_CAPABILITIES & ~c.CLIENT_SSL
COMMANDS = {c.COM_QUERY: "Query", c.COM_STMT_PREPARE: "Prepare", c.COM_STMT_EXECUTE: "Execute",
            c.COM_STMT_CLOSE: "Close stmt", c.COM_STMT_RESET: "Reset stmt", c.COM_STMT_SEND_LONG_DATA: "Long data",
            c.COM_PING: "Ping", c.COM_QUIT: "Quit", c.COM_INIT_DB: "Init DB", c.COM_FIELD_LIST: "Field List",
            c.COM_RESET_CONNECTION: "Reset connection", c.COM_SET_OPTION: "Set option",
            c.COM_STATISTICS: "Statistics"}


class Connection(asyncio.Protocol):
    def __init__(self, front: Any, conn_id: int) -> None:
        self.f = front
        self.id = conn_id
        self.transport: asyncio.Transport | None = None
        self.reader = PacketReader(front.cfg.mysql_front.max_packet_bytes)
        self.writer = PacketWriter()
        self.scramble = make_scramble(os.urandom(20))
        self.phase = "auth"  # auth | switch | command | closed
        self.response: HandshakeResponse | None = None
        self.session: Session | None = None
        self.handler: Handler | None = None
        self.queue: deque[tuple[int, bytes]] = deque()  # (sequence id, payload) of commands not yet run
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.login_timer: asyncio.TimerHandle | None = None
        self.peer = "?"

    # --- transport ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "?"
        if not self.f.admit(self):
            self.send(err_packet(c.ER_CON_COUNT_ERROR, "Too many connections"))
            self.close()
            return
        self.send(build_handshake(self.id, self.scramble, server_version=self.f.server_version(),
                                  capabilities=SERVER_CAPS, status_flags=c.SERVER_STATUS_AUTOCOMMIT))
        self.reader.expect = self.writer.sequence_id  # the login answers the greeting
        # as MariaDB's connect_timeout: a client that never finishes its login must not hold a slot
        self.login_timer = asyncio.get_running_loop().call_later(
            self.f.cfg.mysql_front.login_timeout_s, self._login_timed_out)

    def _login_timed_out(self) -> None:
        if self.phase in ("auth", "switch"):
            self.f.count("login_timeouts")
            log.info("mysql_login_timeout", conn=self.id, peer=self.peer,
                     timeout_s=self.f.cfg.mysql_front.login_timeout_s)
            self.close()  # MariaDB hangs up without a packet too

    def data_received(self, data: bytes) -> None:
        if self.phase == "closed":
            return
        try:
            self.reader.feed(data)
            for packet in self.reader:
                self._packet(packet.sequence_id, packet.payload)
                if self.phase == "closed":
                    return
        except PacketTooLarge:
            self.fail(c.ER_NET_PACKET_TOO_LARGE, "Got a packet bigger than 'max_allowed_packet' bytes")
        except OutOfOrder as exc:
            self.fail(c.ER_NET_PACKETS_OUT_OF_ORDER, f"Got packets out of order ({exc})")
        except ProtocolError as exc:
            self.fail(c.ER_MALFORMED_PACKET, f"Malformed communication packet: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = "closed"
        if self.login_timer is not None:
            self.login_timer.cancel()
        if self.task is not None:
            self.task.cancel()
        self.f.forget(self)

    def send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.writer.frame(payload))

    def close(self) -> None:
        self.phase = "closed"
        if self.transport is not None:
            self.transport.close()

    def end(self, errno: int, message: str) -> None:
        """Close the session from our side (an operator's kill, shutdown) with an ERR. To an idle
        client the ERR is unsolicited, so it goes with sequence id 0, as MariaDB's shutdown ERR:
        drivers read that as a lost connection (PyMySQL: 2013) rather than a protocol error."""
        if self.session is None or self.session.command == "Sleep":
            self.writer.reset(0)
        self.send(err_packet(errno, message))
        self.close()

    def fail(self, errno: int, message: str) -> None:
        self.send(err_packet(errno, message))
        log.info("mysql_protocol_error", conn=self.id, peer=self.peer, error=message)
        self.close()

    # --- login ---

    def _packet(self, seq: int, payload: bytes) -> None:
        if self.phase == "command":  # the answer's sequence ids are set when the command runs
            self.queue.append((seq, payload))
            self.wake.set()
            return
        self.writer.reset(seq + 1)
        if self.phase == "auth":
            self._login(payload)
        elif self.phase == "switch":
            assert self.response is not None
            self._check(self.response, parse_auth_switch_response(payload))

    def _login(self, payload: bytes) -> None:
        if is_ssl_request(payload):
            self.fail(c.ER_HANDSHAKE_ERROR, "SSL is not supported by the coordinator's MySQL port")
            return
        resp = parse_handshake_response(payload, SERVER_CAPS)
        self.response = resp
        if needs_auth_switch(resp):
            self.phase = "switch"
            self.send(auth_switch_request(self.scramble))
            self.reader.expect = self.writer.sequence_id
            return
        self._check(resp, resp.auth_response)

    def _check(self, resp: HandshakeResponse, auth: bytes) -> None:
        stored = self.f.users.get(resp.user, False)
        if stored is False or not (verify_native(self.scramble, auth, stored) if stored else auth == b""):
            self.f.auth_failed(self, resp.user, bool(auth))
            self.fail(c.ER_ACCESS_DENIED_ERROR, f"Access denied for user '{resp.user}'@'{self.peer}' (using "
                      f"password: {'YES' if auth else 'NO'})")
            return
        db = resp.database or ""
        if db and db != self.f.cfg.coordinator.database:
            self.fail(c.ER_BAD_DB_ERROR, f"Unknown database '{db}': the coordinator replicates only "
                      f"'{self.f.cfg.coordinator.database}'")
            return
        front = self.f.cfg
        self.session = Session(self.id, resp.user, self.peer, db or front.coordinator.database,
                               resp.capabilities & SERVER_CAPS, resp.charset, front.mysql_front.default_consistency)
        self.handler = Handler(self.f, self.session, self.send)
        self.phase = "command"
        self.reader.expect = 0  # every command starts a new conversation
        if self.login_timer is not None:
            self.login_timer.cancel()
        self.send(ok_packet(0, 0, self.session.status()))
        self.task = asyncio.create_task(self._commands(), name=f"mysql-{self.id}")
        log.debug("mysql_connected", conn=self.id, user=resp.user, peer=self.peer)

    # --- commands ---

    async def _commands(self) -> None:
        try:
            while self.phase == "command":
                if not self.queue:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                seq, payload = self.queue.popleft()
                self.writer.reset(seq + 1)
                await self._command(payload)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: tell the client, keep the process
            log.exception("mysql_command_crashed", conn=self.id)
            self.fail(c.ER_UNKNOWN_ERROR, "internal error in the coordinator's MySQL front end; see its log")

    async def _command(self, payload: bytes) -> None:
        h, s = self.handler, self.session
        assert h is not None and s is not None
        if not payload:
            self.fail(c.ER_MALFORMED_PACKET, "empty command packet")
            return
        cmd = payload[0]
        s.command = COMMANDS.get(cmd, f"0x{cmd:02x}")
        s.last_active = time.time()
        self.f.count("commands")
        try:
            if cmd == c.COM_QUERY:
                await h.query(payload[1:].decode("utf-8", "surrogateescape"))
            elif cmd == c.COM_STMT_EXECUTE:
                self.f.count("stmt_executes")
                await h.execute(payload)
            elif cmd == c.COM_STMT_PREPARE:
                await h.prepare(payload[1:].decode("utf-8", "surrogateescape"))
            elif cmd == c.COM_STMT_CLOSE:
                h.close_statement(struct.unpack_from("<I", payload, 1)[0])
            elif cmd == c.COM_STMT_SEND_LONG_DATA:
                self._long_data(payload)
            elif cmd == c.COM_STMT_RESET:
                h.reset_statement(struct.unpack_from("<I", payload, 1)[0])
            elif cmd == c.COM_PING:
                self.send(ok_packet(0, 0, s.status()))
            elif cmd == c.COM_QUIT:
                self.close()
            elif cmd == c.COM_INIT_DB:
                h.use(payload[1:].decode("utf-8", "replace"))
                self.send(ok_packet(0, 0, s.status()))
            elif cmd == c.COM_RESET_CONNECTION:
                self.f.transactions.dropped(s)  # an open transaction is rolled back
                s.reset(self.f.cfg.mysql_front.default_consistency)
                self.send(ok_packet(0, 0, s.status()))
            elif cmd == c.COM_SET_OPTION:
                on = struct.unpack_from("<H", payload, 1)[0] == 0  # MYSQL_OPTION_MULTI_STATEMENTS_ON
                s.capabilities = (s.capabilities | c.CLIENT_MULTI_STATEMENTS) if on else \
                    (s.capabilities & ~c.CLIENT_MULTI_STATEMENTS)
                self.send(ok_packet(0, 0, s.status()))  # MySQL answers EOF here; clients accept OK too
            elif cmd == c.COM_FIELD_LIST:
                await h.field_list(payload)
            elif cmd == c.COM_STATISTICS:
                self.send(self.f.statistics().encode())  # a bare string packet, by protocol
            else:
                self.f.count("errors")
                self.send(err_packet(c.ER_UNKNOWN_COM_ERROR, f"Unknown command 0x{cmd:02x}"))
        except Failed as exc:
            self.f.count("errors")
            self.send(err_packet(exc.errno, exc.message, exc.sqlstate))
        except Answered:
            pass  # the server's ERR was relayed already
        except (struct.error, IndexError, ProtocolError) as exc:
            self.fail(c.ER_MALFORMED_PACKET, f"Malformed communication packet: {exc}")
        finally:
            s.command = "Sleep"

    def _long_data(self, payload: bytes) -> None:
        chunk = parse_send_long_data(payload)
        assert self.session is not None
        ps = self.session.prepared.get(chunk.statement_id)
        if ps is not None:
            ps.state.add_long_data(chunk)  # no answer to SEND_LONG_DATA, by protocol
