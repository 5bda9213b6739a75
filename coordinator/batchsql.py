"""SQL text of replicated batches: what the leader sends, what followers replay.

Pure functions from log entries to SQL strings plus the map from each result of
a multi-statement round trip back to the entry that produced it. Followers
replay a statement with the leader's context (``SET timestamp``, ``insert_id``,
``rand_seed1/2``), as MySQL's statement-based replication does, so
AUTO_INCREMENT, ``NOW()`` and ``RAND()`` give the leader's values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from asyncmy.converters import escape_item, escape_string

from .core.replog import Entry, EntryKind, Statement

CHARSET = "utf8mb4"


class BindError(ValueError):
    """Parameters do not fit the statement's placeholders."""


def literal(value: Any) -> str:
    """One SQL literal for a value read back from the server (rebuild copies rows)."""
    out = escape_item(value, CHARSET)
    return out.decode() if isinstance(out, bytes) else out


def _literal(value: Any) -> str:
    """One bound parameter as an SQL literal, with the driver's escaping (HTTP ``params`` and
    the MySQL front end's prepared statements share it)."""
    if isinstance(value, dict):
        raise BindError("a parameter cannot be an object")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        raise BindError(f"the integer parameter {str(value)[:30]} is outside the 64-bit range")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise BindError("a parameter cannot be NaN or infinite")
    if isinstance(value, list):
        if any(isinstance(v, (dict, list)) for v in value):
            raise BindError("a list parameter may only hold scalar values")
        return "(" + ",".join(_literal(v) for v in value) + ")" if value else "(NULL)"
    out = escape_item(value, CHARSET)
    return out.decode() if isinstance(out, bytes) else out


def bind(sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> str:
    """Bind ``%s`` / ``%(name)s`` parameters with the driver's escaping (DB-API style)."""
    if params is None:
        return sql
    try:
        if isinstance(params, Mapping):
            if "%(" not in sql:
                raise BindError("an object of parameters needs %(name)s placeholders")
            return sql % {k: _literal(v) for k, v in params.items()}
        return sql % tuple(_literal(v) for v in params)
    except (TypeError, ValueError, KeyError) as exc:
        raise BindError(f"parameters do not match the query's placeholders: {exc}") from None


def bind_qmarks(sql: str, positions: Sequence[int], values: Sequence[Any]) -> str:
    """Put ``values`` in place of the ``?`` placeholders at ``positions`` (found by
    ``core.sqlscan.qmark_positions``), each escaped as ``bind`` does."""
    if len(positions) != len(values):
        raise BindError(f"the statement has {len(positions)} placeholders but {len(values)} values were given")
    out, prev = [], 0
    for pos, v in zip(positions, values):
        out.append(sql[prev:pos])
        out.append(_literal(v))
        prev = pos + 1
    out.append(sql[prev:])
    return "".join(out)


def sql_time(time_us: int) -> str:
    return f"{time_us // 1_000_000}.{time_us % 1_000_000:06d}"


def uses_rand(sql: str) -> bool:
    """Conservative: any mention of rand gets seeds (same answer on every replica)."""
    return "rand" in sql.lower()


def context_set(entry_time_us: int | None, seeds: tuple[int, int] | None, insert_id: int) -> str | None:
    parts = []
    if entry_time_us is not None:
        parts.append(f"timestamp={sql_time(entry_time_us)}")
    if seeds is not None:
        parts.append(f"rand_seed1={seeds[0]}, rand_seed2={seeds[1]}")
    if insert_id:
        parts.append(f"insert_id={insert_id}")
    return "SET " + ", ".join(parts) if parts else None


# --- the coordinator's own tables -------------------------------------------------


def _cache(entry: Entry, name: str, text: str) -> str:
    """Remember a rendering on the entry (its ``replay`` / ``row`` slots exist for this: the
    leader renders an entry once and every follower's batch reuses the text)."""
    object.__setattr__(entry, name, text)
    return text


def _sql_cell(sql: str) -> str | dict[str, str]:
    """A statement's text as the log's JSON body holds it. MySQL clients may send bytes that are not
    UTF-8 inside a literal (asyncmy and mysqlclient put raw blob bytes between quotes); the front end
    keeps them as surrogate escapes, which neither JSON nor the utf8mb4 log column can carry, so
    such a statement is stored as the hex of its exact bytes."""
    try:
        sql.encode("utf-8")
        return sql
    except UnicodeEncodeError:
        return {"hex": sql.encode("utf-8", "surrogateescape").hex()}


def _sql_of(cell: str | dict[str, str]) -> str:
    if isinstance(cell, str):
        return cell
    return bytes.fromhex(cell["hex"]).decode("utf-8", "surrogateescape")


def log_values(entry: Entry) -> str:
    if entry.row:
        return entry.row
    body = orjson.dumps([[_sql_cell(s.sql), s.insert_id, s.rows] for s in entry.statements]).decode()
    rid = f"'{escape_string(entry.request_id)}'" if entry.request_id else "NULL"
    return _cache(entry, "row", (
        f"({entry.ts},{entry.epoch},{int(entry.kind)},{entry.time_us},{entry.seed1},{entry.seed2},"
        f"{entry.mark},{rid},'{escape_string(entry.leader)}','{escape_string(body)}')"
    ))


def log_insert(schema: str, entries: Sequence[Entry]) -> str:
    rows = ",".join(log_values(e) for e in entries)
    return (f"INSERT INTO `{schema}`.log (ts, epoch, kind, time_us, seed1, seed2, mark, request_id, leader, body) "
            f"VALUES {rows}")


def entry_from_row(row: Sequence[Any]) -> Entry:
    ts, epoch, kind, time_us, seed1, seed2, mark, request_id, leader, body = row
    stmts = tuple(Statement(_sql_of(st[0]), int(st[1]), int(st[2]) if len(st) > 2 else 0) for st in orjson.loads(body))
    return make_entry(int(ts), int(epoch), EntryKind(int(kind)), stmts, int(time_us), int(seed1), int(seed2),
                      int(mark), request_id or "", leader or "")


def make_entry(ts: int, epoch: int, kind: EntryKind, stmts: tuple[Statement, ...], time_us: int, seed1: int,
               seed2: int, mark: int = 0, request_id: str = "", leader: str = "") -> Entry:
    """An Entry with its replay text and log row rendered once, for every follower."""
    plain = Entry(ts, epoch, kind, stmts, time_us, seed1, seed2, mark, request_id, leader)
    return Entry(ts, epoch, kind, stmts, time_us, seed1, seed2, mark, request_id, leader,
                 replay=replay_fragment(plain), row=log_values(plain))


def replay_fragment(e: Entry) -> str:
    """The entry's statements with the leader's context, except the clock (set per batch)."""
    if e.replay:
        return e.replay
    parts = []
    seeds = (e.seed1, e.seed2) if uses_rand_entry(e) else None
    for st in e.statements:
        s = context_set(None, seeds, st.insert_id)
        if s:
            parts.append(s)
        seeds = None
        parts.append(st.sql)
    return _cache(e, "replay", ";\n".join(parts))


def state_update(schema: str, epoch: int, applied: Entry | None = None, mark: int | None = None,
                 ddl_pending: int | None = None, leader: str | None = None) -> str:
    """Update of the replica's state row. The table's CHECK (epoch_seen = epoch)
    trips when the stored epoch is newer than ours (another coordinator started):
    a stale coordinator's batch fails there and rolls back (fencing, invariant I5).
    ``GREATEST`` lets our own epoch bumps (failovers) travel with ordinary batches.

    The applied position only ever rises: on the leader, the batch and interactive
    transactions commit on different connections and their COMMITs may land out of
    timestamp order (``core.sequencer``). ``applied_epoch`` is assigned first because
    MySQL evaluates SET assignments left to right (it must compare the old applied_ts)."""
    sets = [f"epoch=GREATEST(epoch, {epoch}), epoch_seen={epoch}"]
    if applied is not None:
        sets.append(f"applied_epoch=IF({applied.ts} > applied_ts, {applied.epoch}, applied_epoch), "
                    f"applied_ts=GREATEST(applied_ts, {applied.ts})")
    if mark is not None:
        sets.append(f"ts_mark={mark}")
    if ddl_pending is not None:
        sets.append(f"ddl_pending={ddl_pending}")
    if leader is not None:
        sets.append(f"leader_id='{escape_string(leader)}'")
    return f"UPDATE `{schema}`.state SET {', '.join(sets)} WHERE id=1"


# --- follower replay ----------------------------------------------------------------


def follower_batch(schema: str, epoch: int, entries: Sequence[Entry], trim_below: int = 0) -> str:
    """One transaction applying ``entries`` (none of which must be applied alone),
    recording them in the replica's log and advancing its applied timestamp.

    The whole transaction — START TRANSACTION, the replayed statements, the log rows,
    the state row, COMMIT — is one anonymous compound statement (``BEGIN NOT ATOMIC …
    END``), so the batch answers with one result instead of one per statement: a
    follower needs no per-statement results, and reading each (a wake-up of the
    event loop apiece) was most of the coordinator's cost per follower. A failing
    statement aborts the block with its error before the COMMIT; the transaction
    stays open and the caller rolls it back."""
    parts = ["START TRANSACTION"]
    last_time = None
    for e in entries:
        if not e.statements:
            continue
        if e.time_us != last_time:
            parts.append(f"SET timestamp={sql_time(e.time_us)}")
            last_time = e.time_us
        parts.append(replay_fragment(e))
    parts.append(log_insert(schema, entries))
    parts.append(state_update(schema, epoch, entries[-1], latest_mark(entries)))
    if trim_below:
        parts.append(log_trim(schema, trim_below))
    parts.append("COMMIT")
    return "BEGIN NOT ATOMIC\n" + ";\n".join(parts) + ";\nEND"


def latest_mark(entries: Sequence[Entry]) -> int | None:
    """The timestamp mark to persist: the newest entry's that carries one (a clean
    stop may lower the mark to the last value used)."""
    for e in reversed(entries):
        if e.mark:
            return e.mark
    return None


def log_trim(schema: str, below: int) -> str:
    """Forget entries every replica has applied (bounded per batch so a big trim
    never stalls an applier)."""
    return (f"DELETE FROM `{schema}`.log WHERE ts < {below} ORDER BY ts LIMIT 5000;\n"
            f"UPDATE `{schema}`.state SET log_floor=GREATEST(log_floor, {below}) WHERE id=1")


def uses_rand_entry(e: Entry) -> bool:
    return any(uses_rand(s.sql) for s in e.statements)


# --- leader execution ---------------------------------------------------------------

Owner = tuple[int, int] | None  # (request index, statement index) or None for our own statements


# An owner's statement index meaning "this result is the insert id of the statement before".
INSERT_ID_OF_PREVIOUS = -2
_RETURNING = re.compile(r"\bRETURNING\b", re.I)


def has_returning(sql: str) -> bool:
    """Whether the statement mentions ``RETURNING`` as a word (it may answer with rows). The
    substring test first: the case-blind regex costs ~10 µs on a 200-character INSERT, most
    of what the leader spends rendering it."""
    return "returning" in sql.lower() and _RETURNING.search(sql) is not None


def leader_execute(items: Sequence[tuple[Sequence[str], tuple[int, int]]], time_us: int | None,
                   begin: bool, max_statement_s: float = 0.0) -> tuple[str, list[Owner]]:
    """First round trip of a leader batch: the clients' statements inside an open
    transaction, without COMMIT, so the leader's per-statement results (rows
    affected, insert id, errors) are known before anything is logged.

    ``items`` are (statements, seeds) per request. A multi-statement request (a
    transaction) is wrapped in a savepoint so that a failure inside it can be
    rolled back alone. Never waits for a row lock: one held by an interactive transaction
    would stall the whole batch (every other client's writes) for the lock wait; 1205 comes
    back at once and the core runs that write alone on a lane of its own (core.lanes.park)."""
    parts: list[str] = []
    owners: list[Owner] = []
    if begin:
        parts.append("BEGIN")
        owners.append(None)
    if time_us is not None:
        parts.append(f"SET timestamp={sql_time(time_us)}")
        owners.append(None)
    for i, (stmts, seeds) in enumerate(items):
        _client_statements(parts, owners, i, stmts, seeds, 0, max_statement_s, savepoint=len(stmts) > 1)
    return ";\n".join(parts), owners


def parked_run(statements: Sequence[str], seeds: tuple[int, int], time_us: int, lock_wait_s: int,
               max_statement_s: float = 0.0) -> tuple[str, list[Owner]]:
    """A parked write on its own leader connection: BEGIN, its clock, its statements (waiting up
    to ``lock_wait_s`` for each row lock); the transaction stays open for its commit. Owners
    as ``leader_execute``'s, for one request."""
    parts = ["BEGIN", f"SET timestamp={sql_time(time_us)}"]
    owners: list[Owner] = [None, None]
    _client_statements(parts, owners, 0, statements, seeds, lock_wait_s, max_statement_s, savepoint=False)
    return ";\n".join(parts), owners


def _client_statements(parts: list[str], owners: list[Owner], i: int, stmts: Sequence[str], seeds: tuple[int, int],
                       lock_wait_s: int, max_statement_s: float, savepoint: bool) -> None:
    """Request ``i``'s statements as the leader runs them: its RAND() seeds, a savepoint, each
    statement with its lock wait and time limit, and the insert id of an ``INSERT … RETURNING``
    read back (a result set carries none: its first generated id, for the replay)."""
    if any(uses_rand(s) for s in stmts):
        parts.append(f"SET rand_seed1={seeds[0]}, rand_seed2={seeds[1]}")
        owners.append(None)
    if savepoint:
        parts.append(f"SAVEPOINT r{i}")
        owners.append((i, -1))
    limit = f"SET STATEMENT innodb_lock_wait_timeout={int(lock_wait_s)}" + (
        f", max_statement_time={max_statement_s:g} FOR " if max_statement_s else " FOR ")
    for j, s in enumerate(stmts):
        returning = has_returning(s)
        if returning:
            parts.append("SELECT LAST_INSERT_ID(0)")
            owners.append(None)
        parts.append(limit + s)
        owners.append((i, j))
        if returning:
            parts.append("SELECT LAST_INSERT_ID()")
            owners.append((i, INSERT_ID_OF_PREVIOUS))


def per_request(owners: Sequence[Owner], results: Sequence[tuple[Any, ...]], n: int) -> list[list[tuple[Any, ...]]]:
    """The round trip's results (``mysqlio.run``'s, up to where it stopped) per request: each
    client statement's (rows affected, insert id, …), an ``INSERT … RETURNING``'s insert id
    taken from the read-back after it."""
    per: list[list[tuple[Any, ...]]] = [[] for _ in range(n)]
    for owner, res in zip(owners, results):
        if owner is None:
            continue
        if owner[1] >= 0:
            per[owner[0]].append(res)
        elif owner[1] == INSERT_ID_OF_PREVIOUS and per[owner[0]] and res[4]:
            prev = per[owner[0]][-1]
            per[owner[0]][-1] = (prev[0], int(res[4][1][0][0] or 0)) + tuple(prev[2:])
    return per


def txn_commit(schema: str, epoch: int, entry: Entry) -> str:
    """An interactive transaction's COMMIT on its pinned leader connection: its log row and the
    leader's applied position (raised, never lowered) with the epoch check, then COMMIT."""
    return ";\n".join([log_insert(schema, [entry]), state_update(schema, epoch, entry), "COMMIT"])


def leader_commit(schema: str, epoch: int, entries: Sequence[Entry], trim_below: int = 0) -> tuple[str, int]:
    """The leader batch's COMMIT round trip, and how many results it returns (a log trim is
    two statements); a pipelined next batch's statements follow those results."""
    parts = []
    if entries:
        parts.append(log_insert(schema, entries))
        parts.append(state_update(schema, epoch, entries[-1], latest_mark(entries)))
    if trim_below:
        parts.append(log_trim(schema, trim_below))
    parts.append("COMMIT")
    sql = ";\n".join(parts)
    return sql, len(parts) + (1 if trim_below else 0)
