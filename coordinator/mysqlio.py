"""The asyncmy adapter: connections that never lie.

Every round trip has a timeout. A connection whose round trip timed out, was
cancelled or broke is closed and never reused (its state is in doubt). asyncmy
errors are translated here, once, into ReplicaDown / StatementError / Fenced.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, NoReturn

import asyncmy
from asyncmy.constants import CLIENT
from asyncmy.errors import MySQLError

from . import multiresult
from .deadline import Budget
from .errors import Cause, Fenced, ReplicaDown, StatementError

# Server errors that mean "this server is going away", not "your SQL is wrong".
# asyncmy logs every server warning (e.g. "table already exists" notes); ours are expected.
logging.getLogger("asyncmy").setLevel(logging.ERROR)

_SERVER_GONE = {1053, 1927, 1152, 1154, 1156, 1158, 1159, 1160, 1161, 2002, 2003, 2006, 2013, 2055}
FENCE_ERRNO = 4025  # CHECK constraint on the coordinator's state row
# The constraint's own name and table, so a client table's CHECK never reads as fencing.
_FENCE = re.compile(r"CONSTRAINT `coordinator_epoch_fence` failed for `[^`]+`\.`state`")


def is_fence(message: str) -> bool:
    """The server's refusal names our epoch check (a newer coordinator's epoch is stored)."""
    return _FENCE.search(message) is not None


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str
    password: str
    connect_timeout_s: float
    query_timeout_s: float


def _errno(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _message(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return str(args[1]) if len(args) > 1 else str(exc)


_GONE = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, EOFError, asyncio.IncompleteReadError)


def cause_of(exc: BaseException) -> Cause:
    """How a server failed, from the exception and what it was raised from: a timeout (hung
    or slow), the process gone (refused, reset, the connection closed on us), or other I/O."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, TimeoutError):
            return Cause.TIMEOUT
        if isinstance(seen, _GONE) or (isinstance(seen, MySQLError) and _errno(seen) in (2006, 2013)):
            return Cause.REFUSED
        seen = seen.__cause__ or seen.__context__
    return Cause.IO


def _down(exc: BaseException, text: str) -> ReplicaDown:
    return ReplicaDown(text, cause_of(exc))


async def connect(ep: Endpoint, db: str | None = None, init: list[str] | None = None) -> Any:
    """Open one autocommit connection with multi-statements enabled."""
    try:
        async with asyncio.timeout(ep.connect_timeout_s):
            conn = await asyncmy.connect(
                host=ep.host, port=ep.port, user=ep.user, password=ep.password, db=db,
                autocommit=True, charset="utf8mb4", connect_timeout=ep.connect_timeout_s,
                client_flag=CLIENT.MULTI_STATEMENTS | CLIENT.MULTI_RESULTS,
            )
    except (TimeoutError, OSError, MySQLError) as exc:
        raise _down(exc, f"cannot connect to {ep.host}:{ep.port}: {_message(exc) or type(exc).__name__}") from None
    if init:
        await run(conn, ";".join(init), ep.query_timeout_s)
    return conn


def drop(conn: Any) -> None:
    """Close without a goodbye round trip: the connection is in doubt."""
    if conn is None:
        return
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a broken socket may fail in many ways
        pass


async def run(conn: Any, sql: str, timeout_s: float) -> list[tuple[Any, ...]]:
    """Run a (multi-)statement round trip; per result (rows affected, insert id, rows
    matched, warnings, returned rows — ``INSERT … RETURNING`` — or None).

    Raises StatementError with the failing result's position (the server stops
    there; an open transaction stays open), Fenced when the epoch check trips,
    ReplicaDown (connection dropped) on timeouts, cancellation and I/O errors."""
    try:
        async with asyncio.timeout(timeout_s):
            return await multiresult.run(conn, sql)
    except multiresult.ServerError as exc:
        _statement_failed(conn, exc, exc.errno, exc.message, exc.position, exc.results)
    except MySQLError as exc:  # the connection broke (asyncmy's own errors)
        _statement_failed(conn, exc, _errno(exc), _message(exc), 0, [])
    except (TimeoutError, OSError, EOFError, asyncio.IncompleteReadError, AttributeError) as exc:
        drop(conn)
        raise _down(exc, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    except BaseException:
        drop(conn)  # cancelled mid round trip: the protocol state is unknown
        raise


def _statement_failed(conn: Any, exc: BaseException, errno: int, message: str, position: int,
                      results: list[tuple[Any, ...]]) -> NoReturn:
    if errno == FENCE_ERRNO and _FENCE.search(message):
        raise Fenced(message) from None
    if errno in _SERVER_GONE or 2000 <= errno < 3000 or errno == 0:
        drop(conn)
        raise _down(exc, message) from None
    raise StatementError(errno, message, position, results) from None


async def fetch(conn: Any, sql: str, timeout_s: float) -> tuple[list[str], list[tuple[Any, ...]]]:
    """One query returning rows (column names, rows)."""
    try:
        async with asyncio.timeout(timeout_s):
            cur = conn.cursor()
            await cur.execute(sql)
            rows = await cur.fetchall()
            cols = [d[0] for d in cur.description] if cur.description else []
            while await cur.nextset():
                pass
            return cols, list(rows)
    except MySQLError as exc:
        errno = _errno(exc)
        if errno in _SERVER_GONE or 2000 <= errno < 3000 or errno == 0:
            drop(conn)
            raise _down(exc, _message(exc)) from None
        raise StatementError(errno, _message(exc), 0) from None
    except (TimeoutError, OSError, EOFError, asyncio.IncompleteReadError, AttributeError) as exc:
        drop(conn)
        raise _down(exc, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    except BaseException:
        drop(conn)
        raise


ER_NO_SUCH_THREAD = 1094


async def kill_quietly(conn: Any, thread_id: int, timeout_s: float) -> None:
    """End a server connection of ours if it still exists, and wait (bounded) until it
    is gone: KILL only flags the thread, and a transaction it was committing must be
    finished, one way or the other, before anyone reads the state it touched."""
    budget = Budget(timeout_s)
    try:
        await run(conn, f"KILL CONNECTION {int(thread_id)}", timeout_s)
    except StatementError as exc:
        if exc.errno == ER_NO_SUCH_THREAD:
            return  # already gone
        raise  # not ended (e.g. 1095, not ours): the caller must not read the state it touched

    async def gone() -> bool:
        _, rows = await fetch(conn, f"SELECT COUNT(*) FROM information_schema.processlist WHERE id={int(thread_id)}",
                              max(0.05, budget.left()))
        return not rows or not rows[0][0]

    while not budget.expired:
        if await gone():
            return
        await asyncio.sleep(0.01)
    drop(conn)
    raise ReplicaDown(f"our previous connection {thread_id} is still finishing on the server; retrying later",
                      Cause.TIMEOUT)
