"""What a session's statements do inside a transaction (BEGIN … COMMIT, or autocommit=0).

The handler (``handler.py``) sends here every statement of a session that has a
transaction open or runs with autocommit off; the transaction's connection and its
bookkeeping live in ``txn.py``. MySQL's rules, as clients rely on them:

- ``BEGIN`` / ``START TRANSACTION`` inside a transaction, ``SET autocommit=1`` and DDL commit
  the open transaction first (implicit commit); DDL then runs on its own, replicated.
- A write runs on the transaction's pinned leader connection and answers with the server's
  own OK (affected rows, insert id, IN_TRANS); a failing statement fails alone and the
  transaction stays open — except a deadlock (1213), after which InnoDB rolled it all back.
- A locking read (``FOR UPDATE``, ``LOCK IN SHARE MODE``) pins too; once pinned, every read
  runs there (reading the transaction's own writes under its locks).
- ``SAVEPOINT`` / ``ROLLBACK TO`` / ``RELEASE SAVEPOINT`` run on the pinned connection and
  the recorded writes follow them.
- ``INSERT … RETURNING`` (SQLAlchemy's ORM flushes several rows with it) answers with its
  rows; its generated ids are in no OK packet, so the connection's ``LAST_INSERT_ID()`` is
  cleared before it and read after it: the first generated id, recorded for the replay.
- Refused inside a transaction with a clear error: writes that call ``RAND()`` (the replay
  could not give the same values after the transaction's other statements).
"""

from __future__ import annotations

import re
from typing import Any

from ..batchsql import has_returning
from ..core.sqlrules import Kind
from ..errors import ReplicaDown
from ..mysqlproto import constants as c
from . import errors as E
from .errors import Answered, Failed
from .relay import BinarySink, TextSink
from .statements import Local, Sql
from .txn import LOCKING_READ, Txn

_RAND_CALL = re.compile(r"\bRAND\s*\(", re.I)  # a call, not "brands" or 'Grand' (batchsql.uses_rand only adds seeds)
ER_READ_ONLY_TRANSACTION = 1792


def active(h: Any) -> bool:
    """Statements of this session go through a transaction (open, or autocommit off)."""
    return h.s.txn is not None or not h.s.autocommit


# --- transaction control --------------------------------------------------------------------


async def control(h: Any, st: Local, text: str, more: bool) -> None:
    s, T = h.s, h.f.transactions
    what = st.what
    if what == "begin":
        await implicit_commit(h)
        T.begin(s, st.read_only)
    elif what == "commit":
        await implicit_commit(h)
    elif what == "rollback":
        if s.txn is not None:
            await T.rollback(s, s.txn)
    elif what == "autocommit":
        assert isinstance(st.value, bool)
        if st.value and not s.autocommit:  # only a change to 1 commits (BEGIN … SET autocommit=1 with 1 does not)
            await implicit_commit(h)
        s.autocommit = st.value
    else:  # savepoint, rollback_to, release
        await _savepoint(h, st, text, more)
        return
    h._ok(more=more)


async def implicit_commit(h: Any) -> None:
    """Commit the open transaction, if any (COMMIT, and MySQL's implicit commits)."""
    s = h.s
    if s.txn is None:
        return
    out = await h.f.transactions.commit(s, s.txn)
    if out is not None:
        s.last_write_ts = out.ts


async def _savepoint(h: Any, st: Local, text: str, more: bool) -> None:
    s, T = h.s, h.f.transactions
    name = str(st.value)
    if s.txn is None:
        if st.what == "savepoint" and s.autocommit:
            h._ok(more=more)  # MySQL: a savepoint outside a transaction is gone at once
            return
        if st.what != "savepoint":
            raise Failed(1305, "42000", f"SAVEPOINT {name} does not exist")
        T.begin(s)
    txn = s.txn
    if await _on_pinned(h, txn, text, more, None):
        if st.what == "savepoint":
            T.savepoint(txn, name)
        elif st.what == "rollback_to":
            T.rolled_back_to(txn, name)
        else:
            T.released(txn, name)


# --- statements ---------------------------------------------------------------------------------


async def statement(h: Any, st: Sql, text: str, more: bool, binary: Any) -> bool:
    """Run ``st`` as part of the session's transaction; False: not for the transaction (a read
    served as usual, or DDL after the implicit commit)."""
    s, T = h.s, h.f.transactions
    if s.txn is not None and s.txn.doomed:  # rolled back under the client: no statement runs as if it were open
        raise T.doomed(s, s.txn)
    kind = st.stmt.kind
    if kind is Kind.DDL:
        await implicit_commit(h)
        return False
    if kind is Kind.READ:
        txn = s.txn
        locking = LOCKING_READ.search(text) is not None
        if txn is None and locking:
            txn = T.begin(s)
        if txn is None or (txn.pinned is None and not locking):
            return False
        h.f.count("reads")
        await _on_pinned(h, txn, text, more, binary)
        return True
    txn = s.txn or T.begin(s)
    if txn.read_only:
        raise Failed(ER_READ_ONLY_TRANSACTION, "25006", "Cannot execute statement in a READ ONLY transaction")
    if _RAND_CALL.search(text):
        raise Failed(*E.not_supported("RAND() in a write inside a transaction is not supported by this coordinator: "
                                      "its values could not be replayed exactly; compute the value in the "
                                      "application, or write it outside the transaction"))
    returning = has_returning(text)
    if returning:
        await _pinned_number(h, txn, "SELECT LAST_INSERT_ID(0)")
    h.f.count("writes")
    res = await _on_pinned(h, txn, text, more, binary)
    if res is not None:
        insert_id = await _pinned_number(h, txn, "SELECT LAST_INSERT_ID()") if returning else res.insert_id
        txn.writes.append((text, insert_id, res.affected))
        if insert_id:
            s.last_insert_id = insert_id
    return True


async def _pinned_number(h: Any, txn: Txn, sql: str) -> int:
    """A one-number query of our own on the transaction's connection (``SELECT LAST_INSERT_ID()``);
    a lost connection or a failure loses the transaction."""
    s, T = h.s, h.f.transactions
    b = await T.pin(s, txn)
    packets: list[bytes] = []
    try:
        res = await b.relay(bytes([c.COM_QUERY]) + sql.encode(), lambda p, _last: packets.append(p),
                            h.f.cfg.mysql.query_timeout_s)
    except ReplicaDown as exc:
        if txn.doomed:
            raise T.doomed(s, txn) from None
        raise T.abort(s, txn, f"the connection to the leader failed ({exc})", "connection_lost") from None
    if res.kind != "rows" or len(packets) < 3 or not 0 < packets[-2][0] < 251:
        raise T.abort(s, txn, f"the leader answered {sql!r} unexpectedly", "connection_lost")
    row = packets[-2]  # the one text row before the result's end: a length byte, then the digits
    return int(row[1:1 + row[0]])


async def _on_pinned(h: Any, txn: Txn, text: str, more: bool, binary: Any) -> Any:
    """The statement on the transaction's connection, its answer relayed; returns how it ended
    (``Relayed``) when it succeeded. A server error was relayed already: raises Answered."""
    s, T = h.s, h.f.transactions
    sink = (BinarySink if binary else TextSink)(h.send, s.status(more), s.deprecate_eof)
    last: list[bytes] = []

    def forward(payload: bytes, end: bool) -> None:
        if end:
            last.append(payload)
        sink(payload, end)

    res = await T.run(s, txn, text, forward)
    s.warnings = ([("Warning", 1000, f"{sink.warnings} warning(s) on the leader (details are not kept)")]
                  if sink.warnings else [])
    if res.kind != "err":
        return res
    errno = int.from_bytes(last[0][1:3], "little") if last else 0
    h.f.count("errors")
    if errno == 1213:  # InnoDB rolled the whole transaction back
        T.abort(s, txn, "InnoDB chose it as a deadlock victim", "deadlock")
    elif txn.pinned is not None:
        try:
            still_open = await _pinned_number(h, txn, "SELECT @@in_transaction")
        except Failed:  # the connection went: the transaction ended with it (the error is answered)
            still_open = 1
        if not still_open:
            # the server ended the whole transaction on this error (1206, a lock wait under
            # innodb_rollback_on_timeout, …): its writes are gone; so is the transaction
            T.abort(s, txn, f"the leader rolled the transaction back on error {errno}", "server_rollback")
    raise Answered()
