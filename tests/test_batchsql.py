"""batchsql.py: parameter binding that no value escapes, follower replay batches, leader
batches with their owner map, and the log row encoding."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.batchsql import (
    BindError,
    bind,
    entry_from_row,
    follower_batch,
    latest_mark,
    leader_commit,
    leader_execute,
    log_values,
    parked_run,
    per_request,
    sql_time,
)
from coordinator.core.replog import Entry, EntryKind, Statement

SCHEMA = "_coordinator"

# --- a small MySQL literal parser (default sql_mode: backslash escapes on) -------------------

_UNESCAPE = {"0": "\0", "'": "'", '"': '"', "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a",
             "\\": "\\", "%": "\\%", "_": "\\_"}


def parse_string(text: str, pos: int) -> tuple[str, int]:
    """A quoted MySQL string literal starting at ``pos``: (its value, index after it)."""
    quote = text[pos]
    assert quote in "'\"", f"expected a string literal at {pos}: {text[pos:pos + 20]!r}"
    out = []
    i = pos + 1
    while True:
        if i >= len(text):
            raise AssertionError(f"unterminated literal starting at {pos} in {text!r}")
        c = text[i]
        if c == "\\":
            nxt = text[i + 1]
            out.append(_UNESCAPE.get(nxt, nxt))
            i += 2
        elif c == quote:
            if i + 1 < len(text) and text[i + 1] == quote:  # doubled quote
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(c)
            i += 1


_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def parse_literal(text: str, pos: int) -> tuple[Any, int]:
    """One bound value: string, number, NULL or a parenthesised list of them."""
    c = text[pos]
    if c in "'\"":
        return parse_string(text, pos)
    if text.startswith("NULL", pos):
        return None, pos + 4
    if c == "(":
        items: list[Any] = []
        pos += 1
        if text[pos] == ")":
            return items, pos + 1
        while True:
            v, pos = parse_literal(text, pos)
            items.append(v)
            if text[pos] == ")":
                return items, pos + 1
            assert text[pos] == ",", text[pos:]
            pos += 1
    m = _NUMBER.match(text, pos)
    assert m, f"no literal at {pos}: {text[pos:pos + 20]!r}"
    s = m.group(0)
    return (int(s) if m.group(1) is None and m.group(2) is None else float(s)), m.end()


def split_bound(template: str, bound: str) -> list[Any]:
    """Check that ``bound`` is ``template`` with exactly one literal per ``%s`` and nothing
    else changed; return the literals' values."""
    pieces = template.split("%s")
    assert bound.startswith(pieces[0]), (template, bound)
    pos = len(pieces[0])
    values = []
    for piece in pieces[1:]:
        v, pos = parse_literal(bound, pos)
        values.append(v)
        assert bound.startswith(piece, pos), f"text after literal {len(values)} changed: {bound[pos:]!r}"
        pos += len(piece)
    assert pos == len(bound), f"trailing text: {bound[pos:]!r}"
    return values


def expected(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (list, tuple)):
        return [expected(x) for x in v]
    return v


HOSTILE = [
    "'); DROP TABLE x; --",
    "x' OR '1'='1",
    "\\'; DROP TABLE users; #",
    "\\",
    "\\\\'",
    "'",
    "''",
    '"',
    '\\"',
    "a\0b",
    "\x1a",
    "line1\nline2\r\n\t",
    "%s %(name)s %%",
    "/* comment */ -- x",
    "`; DROP TABLE `users",
    "é ünïcödé 漢字 😀 \u2028",
    "\\%_",
    "",
]


# --- bind ---------------------------------------------------------------------------------------


def test_bind_none_leaves_sql_alone() -> None:
    assert bind("SELECT 1", None) == "SELECT 1"
    assert bind("SELECT '%s'", None) == "SELECT '%s'"


def test_bind_list_params() -> None:
    t = "INSERT INTO t (a, b, c, d, e) VALUES (%s, %s, %s, %s, %s)"
    bound = bind(t, ["it's", 42, -1.5, None, True])
    assert split_bound(t, bound) == ["it's", 42, -1.5, None, 1]


def test_bind_dict_params() -> None:
    t = "UPDATE t SET name = %(name)s WHERE id = %(id)s AND name <> %(name)s"
    bound = bind(t, {"name": "O'Brien", "id": 7})
    assert split_bound(t.replace("%(name)s", "%s").replace("%(id)s", "%s"), bound) == ["O'Brien", 7, "O'Brien"]


def test_bind_list_becomes_in_tuple() -> None:
    t = "SELECT * FROM t WHERE id IN %s AND name IN %s"
    bound = bind(t, [[1, 2, 3], ["a'", None]])
    assert bound.startswith("SELECT * FROM t WHERE id IN (1,2,3) AND name IN (")
    assert split_bound(t, bound) == [[1, 2, 3], ["a'", None]]


def test_bind_big_and_small_numbers() -> None:
    t = "SELECT %s, %s, %s, %s"
    assert split_bound(t, bind(t, [2**63, -(2**63), 0, 1e-300])) == [2**63, -(2**63), 0, 1e-300]


def test_bind_decimal_like_strings_stay_strings() -> None:
    t = "SELECT %s"
    assert split_bound(t, bind(t, ["1.25"])) == ["1.25"]
    assert Decimal(split_bound(t, bind(t, ["1.25"]))[0]) == Decimal("1.25")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_stay_inside_one_literal(value: str) -> None:
    t = "INSERT INTO users (name, email) VALUES (%s, %s)"
    bound = bind(t, [value, "x@example.com"])
    assert split_bound(t, bound) == [value, "x@example.com"]
    bound = bind("SELECT %(v)s", {"v": value})
    assert split_bound("SELECT %s", bound) == [value]


@pytest.mark.parametrize(
    "sql, params",
    [
        ("SELECT %s, %s", [1]),  # too few
        ("SELECT %s", [1, 2]),  # too many
        ("SELECT 1", [1]),
        ("SELECT %(a)s, %(b)s", {"a": 1}),  # missing name
        ("SELECT %(a)s", [1]),  # names need an object
        ("SELECT %s", [{"a": 1}]),  # an object as a value
        ("SELECT %s, %s", [1, {"k": "v"}]),
        ("SELECT %(a)s", {"a": {"b": 1}}),
        ("SELECT %s", [[1, [2, 3]]]),  # nested list
        ("SELECT %d", [1]),  # only %s placeholders render escaped literals
    ],
)
def test_bind_mismatch_is_bind_error(sql: str, params: Any) -> None:
    with pytest.raises(BindError):
        bind(sql, params)


def test_bind_error_is_a_value_error() -> None:
    assert issubclass(BindError, ValueError)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, [1, 2**70], float("nan"), float("inf")])
def test_bind_refuses_values_no_column_can_hold(value: Any) -> None:
    with pytest.raises(BindError):
        bind("SELECT %s", [value])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(), st.integers(-(2**63), 2**64 - 1), st.none(), st.booleans(),
                          st.floats(allow_nan=False, allow_infinity=False),
                          st.lists(st.one_of(st.text(max_size=10), st.integers(-(2**63), 2**64 - 1)),
                                   min_size=1, max_size=4)),
                max_size=6))
def test_bind_property_no_value_escapes(values: list[Any]) -> None:
    t = "INSERT INTO t VALUES (" + ", ".join(["%s"] * len(values)) + ") -- end"
    got = split_bound(t, bind(t, values))
    assert got == expected(values)


@settings(max_examples=200, deadline=None)
@given(st.text(), st.sampled_from(HOSTILE))
def test_bind_property_hostile_mix(a: str, b: str) -> None:
    t = "SELECT %s FROM t WHERE x = %s AND y IN %s"
    assert split_bound(t, bind(t, [a + b, b + a, [b, a]])) == [a + b, b + a, [b, a]]


def test_object_params_for_positional_placeholder() -> None:
    with pytest.raises(BindError):
        bind("SELECT %s", {"a": 1})


def test_object_inside_list_param() -> None:
    with pytest.raises(BindError):
        bind("SELECT * FROM t WHERE id IN %s", [[{"a": 1}]])


# --- follower_batch -----------------------------------------------------------------------------


def mk(ts: int, *stmts: str | tuple[str, int], time_us: int = 1_700_000_000_123_456, kind: EntryKind = EntryKind.WRITE,
       mark: int = 0, seeds: tuple[int, int] = (11, 22), epoch: int = 3) -> Entry:
    sts = tuple(Statement(s) if isinstance(s, str) else Statement(*s) for s in stmts)
    return Entry(ts, epoch, kind, sts, time_us, seeds[0], seeds[1], mark)


TXN_START = ("BEGIN", "START TRANSACTION")


def parts(sql: str) -> list[str]:
    """The statements of a batch, in order. A compound block (``BEGIN NOT ATOMIC … END``)
    around the replayed statements is flattened: its statements run in the same order."""
    out = []
    for x in sql.split(";\n"):
        if x.startswith("BEGIN NOT ATOMIC\n"):
            x = x[len("BEGIN NOT ATOMIC\n"):]
        elif x == "END":
            continue
        out.append(x)
    return out


def test_sql_time() -> None:
    assert sql_time(1_700_000_000_000_001) == "1700000000.000001"
    assert sql_time(5) == "0.000005"
    assert sql_time(2_000_000) == "2.000000"


_ASSIGN = re.compile(r"(\w+)=([0-9.]+)")


def replay_trace(batch: str) -> tuple[list[tuple[str, str | None, tuple[int, int] | None, int]], int]:
    """Interpret the SETs of a follower batch the way a MySQL session would.

    Returns, per user statement: (sql, the session timestamp in effect, the rand seeds
    set since the previous user statement or None, the insert_id set for it or 0), and
    how many times the timestamp was set."""
    out = []
    timestamp: str | None = None
    seeds: dict[str, int] = {}
    insert_id = 0
    ts_sets = 0
    for part in parts(batch):
        if part in (*TXN_START, "COMMIT") or "`_coordinator`" in part:
            continue
        if part.startswith("SET "):
            assigns = dict(_ASSIGN.findall(part))
            assert assigns, part
            assert part[4:].replace(" ", "") == ",".join(f"{k}={v}" for k, v in assigns.items()), part
            if "timestamp" in assigns:
                timestamp = assigns.pop("timestamp")
                ts_sets += 1
            if "insert_id" in assigns:
                insert_id = int(assigns.pop("insert_id"))
            for k in ("rand_seed1", "rand_seed2"):
                if k in assigns:
                    seeds[k] = int(assigns.pop(k))
            assert not assigns, f"unexpected session variables in {part!r}"
            continue
        sd = (seeds["rand_seed1"], seeds["rand_seed2"]) if seeds else None
        out.append((part, timestamp, sd, insert_id))
        seeds, insert_id = {}, 0
    return out, ts_sets


def expected_trace(entries: list[Entry]) -> list[tuple[str, str | None, tuple[int, int] | None, int]]:
    out = []
    for e in entries:
        rand = any("rand" in s.sql.lower() for s in e.statements)
        for j, s in enumerate(e.statements):
            out.append((s.sql, sql_time(e.time_us), (e.seed1, e.seed2) if rand and j == 0 else None, s.insert_id))
    return out


def time_changes(entries: list[Entry]) -> int:
    times = [e.time_us for e in entries if e.statements]
    return sum(1 for i, t in enumerate(times) if i == 0 or t != times[i - 1])


def test_follower_batch_shape() -> None:
    e1 = mk(5, ("INSERT INTO users (name) VALUES ('a')", 41))
    e2 = mk(6, "UPDATE users SET name = 'b' WHERE id = 41")
    e3 = mk(7, ("INSERT INTO products (name) VALUES ('p')", 9), "DELETE FROM users WHERE id = 1", kind=EntryKind.TXN,
            time_us=1_700_000_001_000_000)
    batch = follower_batch(SCHEMA, 3, [e1, e2, e3])
    # one compound statement, START TRANSACTION to COMMIT: the server answers the batch with one result
    assert batch.startswith("BEGIN NOT ATOMIC\nSTART TRANSACTION;\n") and batch.endswith(";\nCOMMIT;\nEND")
    p = parts(batch)
    assert p[0] in TXN_START and p[-1] == "COMMIT"
    assert p[-3:-1] == [
        f"INSERT INTO `{SCHEMA}`.log (ts, epoch, kind, time_us, seed1, seed2, mark, request_id, leader, body) VALUES "
        + ",".join(log_values(e) for e in (e1, e2, e3)),
        f"UPDATE `{SCHEMA}`.state SET epoch=GREATEST(epoch, 3), epoch_seen=3, applied_epoch=IF(7 > applied_ts, 3, applied_epoch), applied_ts=GREATEST(applied_ts, 7) WHERE id=1",
    ]
    trace, ts_sets = replay_trace(batch)
    assert trace == [
        ("INSERT INTO users (name) VALUES ('a')", "1700000000.123456", None, 41),
        ("UPDATE users SET name = 'b' WHERE id = 41", "1700000000.123456", None, 0),
        ("INSERT INTO products (name) VALUES ('p')", "1700000001.000000", None, 9),
        ("DELETE FROM users WHERE id = 1", "1700000001.000000", None, 0),
    ]
    assert ts_sets == 2
    assert not any("rand_seed" in x for x in p)
    assert not any("DELETE FROM `_coordinator`.log" in x for x in p)


def test_follower_batch_statements_in_order() -> None:
    entries = [mk(i, f"INSERT INTO t VALUES ({i}, 'x')", f"UPDATE t SET v = {i}", kind=EntryKind.TXN,
                  time_us=1_000_000 * (i // 3)) for i in range(1, 20)]
    batch = follower_batch(SCHEMA, 1, entries)
    trace, ts_sets = replay_trace(batch)
    assert trace == expected_trace(entries)
    # SET timestamp exactly when the time changes between consecutive entries
    assert ts_sets == 7 == time_changes(entries)


def test_follower_batch_insert_id_only_when_nonzero() -> None:
    e = mk(1, ("INSERT INTO t (v) VALUES (1)", 0), ("INSERT INTO t (v) VALUES (2)", 17),
           ("INSERT INTO t (v) VALUES (3)", 0), kind=EntryKind.TXN)
    batch = follower_batch(SCHEMA, 1, [e])
    trace, _ = replay_trace(batch)
    assert trace == expected_trace([e])
    assert batch.count("insert_id") == 1


def test_follower_batch_rand_seeds_only_when_rand_is_mentioned() -> None:
    plain = mk(1, "UPDATE t SET v = 1")
    rnd = mk(2, "UPDATE t SET a = 1", "UPDATE t SET r = RAND()", kind=EntryKind.TXN, seeds=(123, 456))
    lower = mk(3, "update t set r = rand(7)", seeds=(5, 6), time_us=plain.time_us + 1)
    batch = follower_batch(SCHEMA, 1, [plain, rnd, lower])
    trace, ts_sets = replay_trace(batch)
    assert [t[2] for t in trace] == [None, (123, 456), None, (5, 6)]  # once, before the entry's first statement
    assert trace == expected_trace([plain, rnd, lower])
    assert ts_sets == 2
    assert batch.count("rand_seed1") == 2


STMTS = st.lists(st.tuples(st.sampled_from(["INSERT INTO t VALUES (1)", "UPDATE t SET r = RAND()", "DELETE FROM t",
                                            "UPDATE t SET d = NOW(6)"]),
                           st.sampled_from([0, 0, 5, 1000])), max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(STMTS, st.integers(0, 3), st.integers(0, 1000), st.integers(0, 50)), min_size=1,
                max_size=10),
       st.integers(0, 1000))
def test_follower_batch_property(specs: list[tuple], trim_below: int) -> None:
    entries = []
    for i, (stmts, t, seed, mark) in enumerate(specs, start=1):
        kind = EntryKind.NOOP if not stmts else EntryKind.TXN if len(stmts) > 1 else EntryKind.WRITE
        entries.append(mk(i, *stmts, kind=kind, time_us=10**15 + t, seeds=(seed, seed + 1), mark=mark))
    batch = follower_batch(SCHEMA, 7, entries, trim_below=trim_below)
    p = parts(batch)
    assert p[0] in TXN_START and p[-1] == "COMMIT"
    trace, ts_sets = replay_trace(batch)
    assert trace == expected_trace(entries)
    assert ts_sets == time_changes(entries)
    state = [x for x in p if x.startswith(f"UPDATE `{SCHEMA}`.state SET epoch=")]
    mark = latest_mark(entries)
    assert state == [f"UPDATE `{SCHEMA}`.state SET epoch=GREATEST(epoch, 7), epoch_seen=7, applied_epoch=IF({len(entries)} > applied_ts, 3, applied_epoch), "
                     f"applied_ts=GREATEST(applied_ts, {len(entries)})"
                     + (f", ts_mark={mark}" if mark else "") + " WHERE id=1"]
    assert (f"DELETE FROM `{SCHEMA}`.log WHERE ts < {trim_below}" in batch) == (trim_below > 0)


def test_follower_batch_state_mark_and_trim() -> None:
    es = [mk(10, "DELETE FROM t", mark=20_000), mk(11, "DELETE FROM t", mark=0), mk(12, "DELETE FROM t", epoch=4)]
    p = parts(follower_batch(SCHEMA, 9, es, trim_below=5))
    state = [x for x in p if x.startswith(f"UPDATE `{SCHEMA}`.state SET epoch=")]
    assert state == [f"UPDATE `{SCHEMA}`.state SET epoch=GREATEST(epoch, 9), epoch_seen=9, applied_epoch=IF(12 > applied_ts, 4, applied_epoch), applied_ts=GREATEST(applied_ts, 12), ts_mark=20000 WHERE id=1"]
    assert p[-3:] == [
        f"DELETE FROM `{SCHEMA}`.log WHERE ts < 5 ORDER BY ts LIMIT 5000",
        f"UPDATE `{SCHEMA}`.state SET log_floor=GREATEST(log_floor, 5) WHERE id=1",
        "COMMIT",
    ]
    assert p.index(state[0]) < p.index(f"DELETE FROM `{SCHEMA}`.log WHERE ts < 5 ORDER BY ts LIMIT 5000")


def test_follower_batch_noop_entry() -> None:
    noop = mk(3, kind=EntryKind.NOOP, mark=50_000)
    p = parts(follower_batch(SCHEMA, 2, [noop]))
    assert p[0] in TXN_START and p[-1] == "COMMIT" and len(p) == 4
    assert p[1].startswith(f"INSERT INTO `{SCHEMA}`.log")
    assert p[2] == f"UPDATE `{SCHEMA}`.state SET epoch=GREATEST(epoch, 2), epoch_seen=2, applied_epoch=IF(3 > applied_ts, 3, applied_epoch), applied_ts=GREATEST(applied_ts, 3), ts_mark=50000 WHERE id=1"


def test_leader_commit() -> None:
    """The COMMIT round trip, and its count of results: a pipelined batch's results follow them."""
    es = [mk(1, "DELETE FROM t"), mk(2, "DELETE FROM t", mark=99)]
    sql, n = leader_commit(SCHEMA, 5, es, trim_below=0)
    p = parts(sql)
    assert n == len(p) == 3
    assert p == [
        f"INSERT INTO `{SCHEMA}`.log (ts, epoch, kind, time_us, seed1, seed2, mark, request_id, leader, body) VALUES "
        + ",".join(log_values(e) for e in es),
        f"UPDATE `{SCHEMA}`.state SET epoch=GREATEST(epoch, 5), epoch_seen=5, applied_epoch=IF(2 > applied_ts, 3, applied_epoch), applied_ts=GREATEST(applied_ts, 2), ts_mark=99 WHERE id=1",
        "COMMIT",
    ]
    assert leader_commit(SCHEMA, 5, [], trim_below=0) == ("COMMIT", 1)
    sql, n = leader_commit(SCHEMA, 5, [], trim_below=8)
    assert parts(sql)[0] == f"DELETE FROM `{SCHEMA}`.log WHERE ts < 8 ORDER BY ts LIMIT 5000"
    assert n == len(parts(sql)) == 3  # the trim is two statements: DELETE, then the floor's UPDATE
    sql, n = leader_commit(SCHEMA, 5, es, trim_below=8)
    assert n == len(parts(sql)) == 5


# --- leader_execute -----------------------------------------------------------------------------


def test_leader_execute_owners() -> None:
    items = [
        (["INSERT INTO t VALUES (1)"], (1, 2)),
        (["UPDATE t SET a = 1", "UPDATE t SET r = RAND()"], (7, 8)),
        (["DELETE FROM t WHERE id = 3"], (3, 4)),
        (["INSERT INTO t VALUES (4)", "INSERT INTO t VALUES (5)", "INSERT INTO t VALUES (6)"], (5, 6)),
    ]
    sql, owners = leader_execute(items, 1_700_000_000_000_007, begin=True)
    p = parts(sql)
    assert len(p) == len(owners)
    assert p[0] in TXN_START and owners[0] is None
    nowait = "SET STATEMENT innodb_lock_wait_timeout=0 FOR "  # never wait for a row lock (core.lanes.park)
    assert list(zip(p, owners))[1:] == [
        ("SET timestamp=1700000000.000007", None),
        (nowait + "INSERT INTO t VALUES (1)", (0, 0)),
        ("SET rand_seed1=7, rand_seed2=8", None),
        ("SAVEPOINT r1", (1, -1)),
        (nowait + "UPDATE t SET a = 1", (1, 0)),
        (nowait + "UPDATE t SET r = RAND()", (1, 1)),
        (nowait + "DELETE FROM t WHERE id = 3", (2, 0)),
        ("SAVEPOINT r3", (3, -1)),
        (nowait + "INSERT INTO t VALUES (4)", (3, 0)),
        (nowait + "INSERT INTO t VALUES (5)", (3, 1)),
        (nowait + "INSERT INTO t VALUES (6)", (3, 2)),
    ]
    assert "COMMIT" not in p


def test_leader_execute_without_begin_or_time() -> None:
    sql, owners = leader_execute([(["UPDATE t SET a = 2"], (0, 0))], None, begin=False, max_statement_s=30)
    assert parts(sql) == ["SET STATEMENT innodb_lock_wait_timeout=0, max_statement_time=30 FOR UPDATE t SET a = 2"]
    assert owners == [(0, 0)]


def test_parked_run_waits_for_locks_and_reads_back_a_returning_insert_id() -> None:
    """A parked write waits ``lock_wait_s`` per statement; an INSERT … RETURNING's insert id
    (in no OK packet) is read back after it and merged into its result for the replay."""
    ins = "INSERT INTO t (v) VALUES (1), (2) RETURNING id"
    sql, owners = parked_run([ins, "UPDATE t SET v = RAND()"], (5, 6), 1_700_000_000_000_007, 4, 30)
    assert parts(sql) == [
        "BEGIN", "SET timestamp=1700000000.000007", "SET rand_seed1=5, rand_seed2=6", "SELECT LAST_INSERT_ID(0)",
        "SET STATEMENT innodb_lock_wait_timeout=4, max_statement_time=30 FOR " + ins, "SELECT LAST_INSERT_ID()",
        "SET STATEMENT innodb_lock_wait_timeout=4, max_statement_time=30 FOR UPDATE t SET v = RAND()"]
    ok = (0, 0, -1, 0, None)
    returned = (["id"], [(7,), (8,)])
    results = [ok, ok, ok, (1, 0, -1, 0, (["LAST_INSERT_ID(0)"], [(0,)])), (2, 0, -1, 0, returned),
               (1, 0, -1, 0, (["LAST_INSERT_ID()"], [(7,)])), (2, 0, 2, 0, None)]
    assert per_request(owners, results, 1) == [[(2, 7, -1, 0, returned), (2, 0, 2, 0, None)]]
    # a round trip that stopped early (an error) keeps the results it has
    assert per_request(owners, results[:5], 1) == [[(2, 0, -1, 0, returned)]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["INSERT INTO t VALUES (1)", "UPDATE t SET r = RAND()", "DELETE FROM t"]),
                         min_size=1, max_size=4), max_size=8),
       st.booleans(), st.one_of(st.none(), st.integers(0, 2**50)))
def test_leader_execute_property(reqs: list[list[str]], begin: bool, time_us: int | None) -> None:
    items = [(r, (i, i + 1)) for i, r in enumerate(reqs)]
    sql, owners = leader_execute(items, time_us, begin)
    p = parts(sql) if sql else []
    assert len(p) == len(owners)
    # every client statement appears exactly once, owned by (request, index), in order
    owned = [(o, s.removeprefix("SET STATEMENT innodb_lock_wait_timeout=0 FOR "))
             for o, s in zip(owners, p) if o is not None and o[1] >= 0]
    assert owned == [((i, j), s) for i, r in enumerate(reqs) for j, s in enumerate(r)]
    for o, s in zip(owners, p):
        if o is None:
            assert s in TXN_START or s.startswith("SET ")
        elif o[1] == -1:
            assert s == f"SAVEPOINT r{o[0]}" and len(reqs[o[0]]) > 1
    assert sum(1 for o in owners if o is not None and o[1] == -1) == sum(1 for r in reqs if len(r) > 1)
    assert (bool(p) and p[0] in TXN_START) == begin


# --- log rows -----------------------------------------------------------------------------------


def row_from_entry(e: Entry) -> tuple[Any, ...]:
    """What the log table holds for ``e`` (body as the JSON text log_values stores)."""
    body = orjson.dumps([[s.sql, s.insert_id, s.rows] for s in e.statements]).decode()
    return (e.ts, e.epoch, int(e.kind), e.time_us, e.seed1, e.seed2, e.mark, e.request_id or None, e.leader, body)


def parse_values_tuple(text: str) -> tuple[Any, ...]:
    """Parse log_values' ``(1,2,...,'body')`` with the MySQL literal parser."""
    assert text[0] == "(" and text[-1] == ")"
    items: list[Any] = []
    pos = 1
    while True:
        v, pos = parse_literal(text, pos)
        items.append(v)
        if text[pos] == ")":
            assert pos == len(text) - 1
            return tuple(items)
        assert text[pos] == ","
        pos += 1


ENTRIES = st.builds(
    Entry,
    ts=st.integers(1, 2**62),
    epoch=st.integers(1, 2**31),
    kind=st.sampled_from(list(EntryKind)),
    statements=st.lists(st.builds(Statement, st.text(), st.integers(0, 2**63 - 1)), max_size=4).map(tuple),
    time_us=st.integers(0, 2**62),
    seed1=st.integers(0, 2**30),
    seed2=st.integers(0, 2**30),
    mark=st.integers(0, 2**62),
)


@settings(max_examples=300, deadline=None)
@given(ENTRIES)
def test_entry_row_round_trip(e: Entry) -> None:
    assert entry_from_row(row_from_entry(e)) == e
    parsed = parse_values_tuple(log_values(e))  # what the server stores from log_values' SQL
    assert parsed == row_from_entry(e)
    back = entry_from_row(parsed)
    assert back == e
    assert log_values(back) == log_values(e)  # rendering the parsed entry again gives the same row


@pytest.mark.parametrize("sql", HOSTILE)
def test_entry_row_round_trip_hostile(sql: str) -> None:
    e = mk(9, (sql, 3), "SELECT 1", mark=7)
    assert entry_from_row(parse_values_tuple(log_values(e))) == e


def test_entry_from_row_accepts_driver_types() -> None:
    e = mk(4, ("INSERT INTO t VALUES ('é')", 12), kind=EntryKind.TXN, mark=5)
    row = list(row_from_entry(e))
    row[-1] = row[-1].encode()  # a BLOB/binary column comes back as bytes
    row[0] = Decimal(row[0])  # BIGINT UNSIGNED arithmetic can come back as Decimal
    assert entry_from_row(tuple(row)) == e


def test_latest_mark() -> None:
    assert latest_mark([]) is None
    assert latest_mark([mk(1, "x"), mk(2, "y")]) is None
    assert latest_mark([mk(1, "x", mark=10), mk(2, "y")]) == 10
    assert latest_mark([mk(1, "x", mark=10), mk(2, "y", mark=30), mk(3, "z")]) == 30
    # the newest mark wins even when it is lower (a clean stop shrinks the mark)
    assert latest_mark([mk(1, "x", mark=30), mk(2, "y", mark=12)]) == 12


# --- log rows of statements holding bytes that are not UTF-8 --------------------------------------


def log_row_fields(row: str) -> list[Any]:
    """The values of one rendered log row ``(1,2,…,'leader','body')`` (NULL as None)."""
    assert row[0] == "(" and row[-1] == ")"
    out: list[Any] = []
    pos = 1
    while pos < len(row) - 1:
        if row[pos] in "'\"":
            value, pos = parse_string(row, pos)
            out.append(value)
        else:
            end = row.index(",", pos) if "," in row[pos:-1] else len(row) - 1
            word = row[pos:end]
            out.append(None if word == "NULL" else int(word))
            pos = end
        assert row[pos] in ",)"
        pos += 1
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.text(max_size=10))
def test_log_row_keeps_the_exact_bytes_of_a_statement(raw: bytes, plain: str) -> None:
    """MySQL clients may put raw bytes in a literal (asyncmy, mysqlclient); the front end keeps
    them as surrogate escapes. The log row (JSON in a utf8mb4 column) must be valid UTF-8 and
    give back exactly the bytes the client sent."""
    sql = (b"INSERT INTO t (b) VALUES ('" + raw + b"')").decode("utf-8", "surrogateescape")
    e = mk(7, sql, f"SELECT '{plain}'")
    row = log_values(e)
    row.encode("utf-8")  # no surrogates left: the log column and JSON can hold it
    back = entry_from_row(log_row_fields(row))
    assert [s.sql.encode("utf-8", "surrogateescape") for s in back.statements] == \
        [s.sql.encode("utf-8", "surrogateescape") for s in e.statements]
    assert back.ts == 7 and back.seed1 == 11
