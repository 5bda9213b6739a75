"""Bad-input fuzzing of every endpoint on every port (issue 8, item 3).

The coordinator runs as a real subprocess on the session cluster and is driven with blocking
``http.client`` / raw sockets from synchronous ``@given`` tests, so hypothesis owns the test
thread while the server runs its own event loop in another process.

Invariants checked after every example: the answer is JSON (``success: false`` plus a
``code`` for errors, a success shape otherwise), the status is never 500, and after every
test: no change to the user data (digest of the leader before and after), the same leader,
epoch and quorum mode, and every one of the six ports still answers ``/health``.

Destructive admin endpoints are only ever sent bodies that must be refused;
``/admin/reset``, ``/admin/stop-master`` and ``/admin/start-master`` (which ignore their body)
are never sent here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CoordinatorProcess, config_data, direct, table_digest, wipe

pytestmark = pytest.mark.mariadb

ROOT = Path(__file__).resolve().parent.parent
MAX_BODY = 4096
PORT_NAMES = ("gateway", "timestamp_odd", "timestamp_even", "metrics", "cabinet", "seer")


# --- a coordinator subprocess driven by blocking clients ------------------------------------


def run_async(coro: Any, timeout: float = 120) -> Any:
    """Run a coroutine to completion on a private loop in a worker thread (never on the
    pytest-asyncio session loop, and never setting this thread's event loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result(timeout)


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes
    method: str = "GET"
    path: str = ""

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path[:120]!r} -> {self.status} {self.body[:400]!r}>"


class Server:
    """A coordinator process with its own config (extra sections) and environment."""

    def __init__(self, cluster: Any, directory: Path, env: dict[str, str] | None = None,
                 **sections: dict[str, Any]) -> None:
        self.cluster = cluster
        self.data = config_data(cluster, **sections)
        self.proc = CoordinatorProcess(self.data, directory)
        self.env = env or {}
        self.popen: subprocess.Popen[bytes] | None = None
        self.leader = cluster.node_names()[-1]

    @property
    def ports(self) -> dict[str, int]:
        return self.data["ports"]

    @property
    def log_path(self) -> Path:
        return self.proc.log

    def start(self, timeout: float = 60) -> None:
        out = open(self.proc.log, "ab")
        env = {**os.environ, **self.env}
        self.popen = subprocess.Popen([sys.executable, "-m", "coordinator", "--config", str(self.proc.path)],
                                      stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        self.proc.proc = self.popen  # so CoordinatorProcess.terminate/kill work too
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise AssertionError(f"coordinator exited with {self.popen.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                r = self.request("gateway", "POST", "/query", {"query": "SELECT COUNT(*) AS n FROM products"},
                                 timeout=5)
                if r.status == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"coordinator not ready after {timeout}s: {self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.proc.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 3000) -> str:
        return self.log_text()[-n:]

    def request(self, port: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                timeout: float = 20, raw: bytes | None = None) -> Resp:
        """One request on a fresh connection. ``body`` is JSON-encoded unless ``raw`` is given."""
        hdrs = dict(headers or {})
        payload: bytes | None = raw
        if payload is None and body is not None:
            payload = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[port], timeout=timeout)
        try:
            conn.request(method, path, body=payload, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data, method, path)
        finally:
            conn.close()

    def get(self, path: str, port: str = "gateway", **kw: Any) -> Resp:
        return self.request(port, "GET", path, **kw)

    def post(self, path: str, body: Any = None, port: str = "gateway", **kw: Any) -> Resp:
        return self.request(port, "POST", path, body, **kw)

    def status(self) -> dict[str, Any]:
        r = self.get("/status")
        assert r.status == 200, r
        return r.json()

    def all_healthy(self) -> None:
        assert self.alive(), f"the coordinator process died: {self.log_tail()}"
        for name in PORT_NAMES:
            r = self.get("/health", port=name, timeout=10)
            assert r.status == 200, (name, r)
            assert r.json()["status"] == "healthy", (name, r)

    def digest(self) -> dict[str, Any]:
        return run_async(table_digest(self.cluster, self.leader))


def assert_api_answer(r: Resp, ok_allowed: bool = True) -> Any:
    """Never a 500, never a bare page: errors are the JSON error shape, successes JSON."""
    assert r.status != 500, f"500 answer: {r!r}"
    assert 200 <= r.status < 600, r
    ctype = r.headers.get("content-type", "")
    if r.method == "HEAD":
        return None
    if r.status >= 400:
        assert ctype.startswith("application/json"), f"error is not JSON ({ctype}): {r!r}"
        body = r.json()
        assert isinstance(body, dict), r
        assert body.get("success") is False, r
        assert isinstance(body.get("code"), str) and body["code"], r
        assert isinstance(body.get("error"), str) and body["error"], r
        assert isinstance(body.get("detail"), str), r
        return body
    assert ok_allowed, f"unexpected success: {r!r}"
    if ctype.startswith("application/json"):
        body = r.json()
        if isinstance(body, dict) and "success" in body:
            assert body["success"] is True, r
        return body
    assert ctype.startswith(("text/html", "text/javascript", "text/css", "image/")), r
    return None


@pytest.fixture(scope="module")
def server(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cluster.heal()
    run_async(wipe(cluster))
    srv = Server(cluster, tmp_path_factory.mktemp("fuzz"), coordinator={"log_level": "warning",
                                                                        "max_body_bytes": MAX_BODY})
    srv.start()
    try:
        for sql in ("INSERT INTO products (name, price, stock) VALUES ('seed', 9.99, 3)",
                    "INSERT INTO users (name, email) VALUES ('seed', 'seed@example.com')",
                    "CREATE TABLE fuzz_rt (id INT PRIMARY KEY, s LONGTEXT) DEFAULT CHARSET=utf8mb4"):
            r = srv.post("/query", {"query": sql})
            assert r.status == 200, r
        yield srv
    finally:
        srv.stop()


@pytest.fixture(autouse=True)
def unchanged(server: Server) -> Iterator[None]:
    """Every test leaves the data, the leader, the epoch and the mode as they were, and the
    process serving on all six ports."""
    before = server.digest()
    st0 = server.status()
    yield
    server.all_healthy()
    st1 = server.status()
    for key in ("leader", "epoch", "mode", "current_master"):
        assert st1.get(key) == st0.get(key), (key, st0.get(key), st1.get(key))
    assert server.digest() == before, "user data changed during a fuzz test"


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


# --- strategies -------------------------------------------------------------------------------

ODD_STRINGS = [
    "", " ", "\x00", "a\x00b", "NaN", "-NaN", "Infinity", "-Infinity", "1e999", "0x7fffffff", "1_000",
    "\u202eRTL override", "\u200f\u05e9\u05dc\u05d5\u05dd", "zero\u200bwidth", "\ufeffbom", "\u2028\u2029",
    "\U0001f984", "\U0010ffff", "\uffff", "e\u0301\u0301\u0301", "\\", "'", '"', "`", "%s", "%(x)s", "%%", "%",
    "\r\n\r\nX-Injected: 1", "null", "true", "[]", "{}", "../../etc/passwd", "replica-1", "mysql-replica-1",
    "_coordinator", "x" * 300, "١٢٣", "１２３", "ｓｅｌｅｃｔ",
]
odd_text = st.one_of(st.text(max_size=30), st.sampled_from(ODD_STRINGS),
                     st.text(alphabet=st.characters(min_codepoint=0x80, exclude_categories=["Cs"]), max_size=12))
HUGE_INTS = [2**64, 2**64 - 1, -(2**63), 2**63 - 1, -(2**63) - 1, 2**63, 10**30, -(10**30), 2**200]
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0, 1.5]),
    odd_text,
)
json_values = st.recursive(scalars, lambda ch: st.lists(ch, max_size=4) | st.dictionaries(odd_text, ch, max_size=4),
                           max_leaves=10)
extras = st.dictionaries(odd_text, json_values, max_size=3)

MALFORMED = [
    b"{", b"}", b"[", b"{\"query\":", b"{\"query\": \"SELECT 1\"", b"{\"query\": \"SELECT 1\",}", b"{'query': 'SELECT 1'}",
    b"{\"query\": NaN}", b"{\"query\": Infinity}", b"{\"query\": -Infinity}", b"{\"min_timestamp\": 1e400}",
    b"{\"query\": \"\\ud800\"}", b"{\"query\": \"\\udfff\\ud800\"}", b"{\"query\": \"\\u12\"}", b"{\"query\": \"\\x41\"}",
    b"\xef\xbb\xbf{\"query\": \"SELECT 1\"}", b"\xff\xfe{\x00}\x00", b"{\"query\": \"\xff\xfe\"}", b"\xc0\xaf",
    b"{\"query\": \"SELECT 1\"} trailing", b"{\"query\": \"SELECT 1\"}{}", b"null", b"true", b"0", b"-0", b"1e308",
    b"\"a string\"", b"[]", b"[{\"query\": \"SELECT 1\"}]", b"\x00", b"\x00{}", b"{\x00}", b"   \t\n  ",
    b"{\"statements\": [" + b"[" * 1100 + b"]" * 1100 + b"]}", b"[" * 3000 + b"]" * 1000, b"{\"a\":" * 700 + b"1" + b"}" * 700,
    b"{\"query\": \"SELECT 1\", \"query\": 5}", b"{\"query\": \"SELECT \x00 1\"}", b"{\"query\"\x00: 1}",
]
CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
                 "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "text/html",
                 "application/xml", "application/vnd.api+json", "", "garbage", "application/json;;;", "*/*",
                 "application/octet-stream", "image/png", "application/json; boundary=\"\u00e9\""]


def mutated(data: bytes, draw: Any) -> bytes:
    if not data:
        return data
    i = draw(st.integers(0, len(data) - 1))
    op = draw(st.sampled_from(["flip", "cut", "dup", "nul"]))
    if op == "flip":
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    if op == "cut":
        return data[:i]
    if op == "dup":
        return data[:i] + data[i:] * 2
    return data[:i] + b"\x00" + data[i:]


@st.composite
def encoded(draw: Any, value_strategy: Any) -> bytes:
    """A request body: a JSON encoding of a drawn value, a malformed one, random bytes or a mutant."""
    kind = draw(st.sampled_from(["json", "json", "json", "malformed", "binary", "mutant"]))
    if kind == "malformed":
        return draw(st.sampled_from(MALFORMED))
    if kind == "binary":
        return draw(st.binary(max_size=120))
    value = draw(value_strategy)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    data = text.encode("utf-8", "surrogatepass")
    if kind == "mutant":
        data = mutated(data, draw)
    return data


def with_extras(base: Any) -> Any:
    return st.builds(lambda b, e: {**e, **b}, base, extras)


# Statements whose success changes no user data: reads, writes that match no row, writes that
# must fail. Fuzzed parameters are bound into them.
SAFE_SQL = [
    "SELECT 1", "SELECT %s AS v", "SELECT %s AS a, %s AS b", "SELECT %(a)s AS v", "SELECT COUNT(*) AS n FROM products",
    "SELECT * FROM products ORDER BY id", "SELECT * FROM products WHERE id = %s", "SELECT * FROM products WHERE name = %s",
    "SELECT * FROM products WHERE id IN %s", "SHOW TABLES", "DESCRIBE products", "EXPLAIN SELECT * FROM products",
    "UPDATE products SET name = %s WHERE id = -1", "UPDATE products SET stock = %s WHERE id < 0",
    "DELETE FROM products WHERE id = -1 AND name = %s", "INSERT INTO no_such_table_fz (a) VALUES (%s)",
    "INSERT INTO products (id, name, price) VALUES (1, %s, 1)",  # duplicate key: the seed row has id 1
    "", "   ", ";", "-- c", "/*", "/* x */", "SELECT 1; SELECT 2", "SELECT 'unterminated", "SELECT `x",
    "SELECT * FROM products LIMIT %s", "SELECT %s FROM products ORDER BY id LIMIT 1",
]
sql_text = st.one_of(st.sampled_from(SAFE_SQL), odd_text, st.text(alphabet="SELECT%s(),'\"` ;-/*#@\\\x00", max_size=30))
params = st.one_of(json_values, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(["a", "b", ""]), scalars))

query_bodies = with_extras(st.fixed_dictionaries({}, optional={
    "query": st.one_of(sql_text, json_values), "params": params,
    "consistency": st.one_of(st.sampled_from(["strong", "session", "eventual", "STRONG", "linearizable", ""]),
                             json_values),
    "min_timestamp": st.one_of(st.sampled_from(HUGE_INTS), st.integers(), json_values),
}))

# Every statement list holds at least one statement that must be refused or must fail, or only
# no-op writes, so no transaction here can change data.
TXN_SQL = ["UPDATE products SET name = %s WHERE id = -1", "DELETE FROM products WHERE id = -1 AND name = %s",
           "INSERT INTO no_such_table_fz (a) VALUES (%s)", "SELECT %s", "SHOW TABLES", "CREATE TABLE fz (a INT)",
           "INSERT INTO products (id, name, price) VALUES (1, %s, 1)", "", "BEGIN", "COMMIT"]
statement = st.one_of(json_values, with_extras(st.fixed_dictionaries({}, optional={
    "query": st.one_of(st.sampled_from(TXN_SQL), odd_text, json_values), "params": params})))
txn_bodies = with_extras(st.fixed_dictionaries({}, optional={"statements": st.one_of(
    json_values, st.lists(statement, max_size=5), st.just([{}] * 1001),
    st.just([{"query": "UPDATE products SET name = 'x' WHERE id = -1"}] * 1001))}))


def send_fuzz(server: Server, port: str, method: str, path: str, data: bytes, ctype: str | None) -> Resp:
    headers = {} if ctype is None else {"Content-Type": ctype}
    return server.request(port, method, path, raw=data, headers=headers)


# --- /query and /transaction ---------------------------------------------------------------


@fuzz(250)
@given(data=encoded(query_bodies), ctype=st.sampled_from(CONTENT_TYPES))
def test_fuzz_query(server: Server, data: bytes, ctype: str | None) -> None:
    r = send_fuzz(server, "gateway", "POST", "/query", data, ctype)
    assert_api_answer(r)


@fuzz(150)
@given(data=encoded(txn_bodies), ctype=st.sampled_from(CONTENT_TYPES[:3]))
def test_fuzz_transaction(server: Server, data: bytes, ctype: str | None) -> None:
    r = send_fuzz(server, "gateway", "POST", "/transaction", data, ctype)
    assert_api_answer(r)


@fuzz(80)
@given(value=st.one_of(st.text(max_size=60), st.sampled_from(ODD_STRINGS)))
def test_string_parameters_round_trip(server: Server, value: str) -> None:
    """Odd unicode bound as a parameter reads back exactly, from a read and after a replicated write."""
    r = server.post("/query", {"query": "SELECT %s AS v", "params": [value]})
    body = assert_api_answer(r)
    assert r.status == 200, r
    assert body["data"] == [{"v": value}], (value, body["data"])
    r = server.post("/query", {"query": "INSERT INTO fuzz_rt (id, s) VALUES (1, %s)", "params": [value]})
    assert r.status == 200, r
    try:
        r = server.post("/query", {"query": "SELECT s FROM fuzz_rt WHERE id = 1"})
        assert r.status == 200 and r.json()["data"] == [{"s": value}], (value, r)
    finally:
        r = server.post("/query", {"query": "DELETE FROM fuzz_rt WHERE id = 1"})
        assert r.status == 200, r


@pytest.mark.parametrize("value", HUGE_INTS + [-(2**63) + 1, 9007199254740993])
def test_huge_integer_parameters_are_exact_or_refused(server: Server, value: int) -> None:
    """An integer parameter the JSON decoder cannot hold exactly must be refused (400), never
    silently rounded to a float and bound as a different number."""
    r = server.post("/query", {"query": "SELECT %s AS v", "params": [value]})
    body = assert_api_answer(r)
    if r.status == 200:
        got = body["data"][0]["v"]
        assert str(got) == str(value), f"parameter {value} was bound as {got!r}"
    else:
        assert r.status == 400, r


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30])
def test_huge_min_timestamp_is_a_clear_400(server: Server, value: int) -> None:
    r = server.post("/query", {"query": "SELECT 1", "consistency": "session", "min_timestamp": value})
    body = assert_api_answer(r)
    assert r.status in (200, 400), r
    if r.status == 400:
        assert "min_timestamp" in body["error"], body


# --- content types and invalid JSON, exact statuses ----------------------------------------------

POST_ENDPOINTS = [("gateway", "/query"), ("gateway", "/transaction"), ("gateway", "/admin/replication-mode"),
                  ("cabinet", "/select-quorum"), ("seer", "/elect-leader")]


@pytest.mark.parametrize("port,path", POST_ENDPOINTS)
@pytest.mark.parametrize("ctype", ["text/html", "application/xml", "multipart/form-data; boundary=x", "image/png"])
def test_wrong_content_type_is_415(server: Server, port: str, path: str, ctype: str) -> None:
    r = server.request(port, "POST", path, raw=b'{"query": "SELECT 1", "mode": "nope"}', headers={"Content-Type": ctype})
    body = assert_api_answer(r)
    assert r.status == 415, r
    assert body["code"] == "unsupported_media_type"


@pytest.mark.parametrize("port,path", POST_ENDPOINTS + [("gateway", "/admin/trigger-failover"),
                                                       ("gateway", "/admin/replicas/replica-1/fault")])
@pytest.mark.parametrize("raw", [b"{", b"{'a': 1}", b"{\"a\": NaN}", b"\xff\xfe", b"{\"a\": \"\\ud800\"}",
                                 b"\xef\xbb\xbf{}", b"[" * 2000, b"{\"a\": 1} x"])
def test_invalid_json_is_400(server: Server, port: str, path: str, raw: bytes) -> None:
    r = server.request(port, "POST", path, raw=raw, headers={"Content-Type": "application/json"})
    body = assert_api_answer(r)
    assert r.status == 400, r
    assert body["code"] == "invalid_json", body


@pytest.mark.parametrize("port,path", POST_ENDPOINTS[:3])
@pytest.mark.parametrize("raw", [b"[]", b"null", b"1", b"\"x\"", b"[{\"query\": \"SELECT 1\"}]"])
def test_non_object_json_is_400(server: Server, port: str, path: str, raw: bytes) -> None:
    r = server.request(port, "POST", path, raw=raw, headers={"Content-Type": "application/json"})
    assert_api_answer(r)
    assert r.status == 400, r


@pytest.mark.parametrize("path,body,code", [
    ("/query", {}, "missing_field"), ("/query", {"query": None}, "missing_field"),
    ("/query", {"query": 5}, "bad_field"), ("/query", {"query": ["SELECT 1"]}, "bad_field"),
    ("/query", {"query": True}, "bad_field"), ("/query", {"query": "SELECT 1", "params": "x"}, "bad_field"),
    ("/query", {"query": "SELECT 1", "params": 5}, "bad_field"),
    ("/query", {"query": "SELECT %s", "params": [[1, [2]]]}, "bad_params"),
    ("/query", {"query": "SELECT %s", "params": [{"a": 1}]}, "bad_params"),
    ("/query", {"query": "SELECT %s", "params": []}, "bad_params"),
    ("/query", {"query": "SELECT %(a)s", "params": {"b": 1}}, "bad_params"),
    ("/query", {"query": "SELECT 1", "consistency": 5}, "bad_field"),
    ("/query", {"query": "SELECT 1", "consistency": "linearizable"}, "bad_consistency"),
    ("/query", {"query": "SELECT 1", "min_timestamp": "5"}, "bad_field"),
    ("/query", {"query": "SELECT 1", "min_timestamp": 1.5}, "bad_field"),
    ("/query", {"query": "SELECT 1", "min_timestamp": True}, "bad_field"),
    ("/query", {"query": ""}, "empty_query"), ("/query", {"query": "SELECT 1\x00"}, "parse_error"),
    ("/transaction", {}, "missing_field"), ("/transaction", {"statements": {}}, "bad_field"),
    ("/transaction", {"statements": "UPDATE x SET a=1"}, "bad_field"), ("/transaction", {"statements": []}, "empty_transaction"),
    ("/transaction", {"statements": [5]}, "bad_field"), ("/transaction", {"statements": [{}]}, "bad_field"),
    ("/transaction", {"statements": [{"query": "SELECT 1"}]}, "not_dml"),
    ("/transaction", {"statements": [{}] * 1001}, "transaction_too_large"),
])
def test_missing_and_wrong_fields_exact(server: Server, path: str, body: Any, code: str) -> None:
    r = server.post(path, body)
    got = assert_api_answer(r)
    assert r.status == 400, r
    assert got["code"] == code, got


# --- admin endpoints (never with a body that could act) --------------------------------------------


@st.composite
def admin_requests(draw: Any) -> tuple[str, str, bytes, str | None]:
    """(method, path, body, content type) that the admin API must refuse."""
    which = draw(st.sampled_from(["mode", "fault", "failover", "action", "events"]))
    ctype = draw(st.sampled_from(CONTENT_TYPES[:3]))
    if which == "mode":
        bad_mode = st.one_of(json_values.filter(lambda v: v not in ("cabinet", "majority", "all")),
                             st.sampled_from(["CABINET", "cabinet ", "all\x00", "majority\u200b", ""]))
        body = draw(encoded(with_extras(st.fixed_dictionaries({}, optional={"mode": bad_mode}))))
        return "POST", "/admin/replication-mode", body, ctype
    if which == "fault":
        rid = draw(st.one_of(st.sampled_from(_REPLICAS), odd_text.filter(lambda s: s not in _KNOWN_NAMES)))
        bad_delay = st.one_of(st.integers(max_value=-1), st.integers(min_value=60_001), st.sampled_from(HUGE_INTS),
                              st.floats(), st.booleans(), odd_text, st.lists(scalars, max_size=2))
        bad_partition = st.one_of(st.integers(), odd_text, st.floats(allow_nan=False), st.lists(scalars, max_size=2))
        fields = draw(st.sampled_from(["delay", "partition", "both"]))
        value: dict[str, Any] = {}
        if fields in ("delay", "both"):
            value["delay_ms"] = draw(bad_delay)
        if fields in ("partition", "both"):
            value["partition"] = draw(bad_partition)
        value = {**draw(extras), **value}
        data = json.dumps(value).encode()
        if draw(st.booleans()):
            data = draw(st.sampled_from(MALFORMED[:25]))
        return "POST", f"/admin/replicas/{urllib.parse.quote(rid, safe='')}/fault", data, ctype
    if which == "failover":
        bad_target = st.one_of(json_values.filter(lambda v: v is not None and v not in _KNOWN_NAMES),
                               st.sampled_from(["replica-9", "REPLICA-1", "replica-1 ", "mysql-replica-", ""]))
        value = {**draw(extras), "new_leader": draw(bad_target)}
        data = json.dumps(value).encode()
        if draw(st.booleans()):
            data = draw(st.sampled_from([m for m in MALFORMED[:25] if m.strip() and m not in (b"{}",)]))
        return "POST", "/admin/trigger-failover", data, ctype
    if which == "action":
        rid = draw(st.one_of(st.sampled_from(_REPLICAS), odd_text))
        action = draw(odd_text.filter(lambda s: s not in ("stop", "start", "kill", "pause", "resume", "fault")))
        if rid in _REPLICAS and not action:
            action = "nope"
        path = f"/admin/replicas/{urllib.parse.quote(rid, safe='')}/{urllib.parse.quote(action, safe='')}"
        return "POST", path, draw(encoded(json_values)), ctype
    query = draw(st.dictionaries(st.sampled_from(["since", "limit", "kind", "x"]),
                                 st.one_of(odd_text, st.integers().map(str), st.sampled_from([str(v) for v in HUGE_INTS])),
                                 max_size=3))
    return "GET", "/admin/events?" + urllib.parse.urlencode(query), b"", None


_REPLICAS = [f"replica-{i}" for i in range(1, 5)]
_KNOWN_NAMES = _REPLICAS + [f"mysql-{r}" for r in _REPLICAS]


@fuzz(200)
@given(req=admin_requests())
def test_fuzz_admin(server: Server, req: tuple[str, str, bytes, str | None]) -> None:
    method, path, data, ctype = req
    r = send_fuzz(server, "gateway", method, path, data, ctype)
    assert_api_answer(r, ok_allowed=method == "GET" or (path.endswith("/fault") and data.strip() in (b"", b"{}")))


# --- the other five ports --------------------------------------------------------------------------


@fuzz(150)
@given(
    target=st.sampled_from([("cabinet", "/select-quorum"), ("seer", "/elect-leader")]),
    data=encoded(with_extras(st.fixed_dictionaries({}, optional={
        "operation": st.one_of(st.sampled_from(["write", "read", "WRITE", ""]), json_values),
        "exclude_replicas": st.one_of(json_values, st.lists(st.sampled_from(["replica-1", "replica-2", "replica-3",
                                                                             "replica-4"]) | odd_text, max_size=5)),
    }))),
    ctype=st.sampled_from(CONTENT_TYPES),
)
def test_fuzz_cabinet_and_seer(server: Server, target: tuple[str, str], data: bytes, ctype: str | None) -> None:
    port, path = target
    r = send_fuzz(server, port, "POST", path, data, ctype)
    body = assert_api_answer(r)
    if r.status == 200 and path == "/elect-leader":
        assert isinstance(body.get("leader_id"), str), body
    if r.status == 200 and path == "/select-quorum":
        assert isinstance(body.get("quorum"), list) and body["quorum"], body


@fuzz(150)
@given(
    port=st.sampled_from(["timestamp_odd", "timestamp_even", "metrics"]),
    path=st.one_of(
        st.sampled_from(["/timestamp", "/metrics", "/health", "/metrics/replica-1", "/metrics/mysql-replica-2"]),
        odd_text.map(lambda s: "/metrics/" + urllib.parse.quote(s, safe="")),
        odd_text.map(lambda s: "/timestamp?" + urllib.parse.urlencode({"n": s})),
    ),
    data=st.one_of(st.just(b""), encoded(json_values)),
    method=st.sampled_from(["GET", "GET", "POST", "PUT", "HEAD"]),
)
def test_fuzz_timestamp_and_metrics(server: Server, port: str, path: str, data: bytes, method: str) -> None:
    r = server.request(port, method, path, raw=data or None)
    body = assert_api_answer(r)
    if r.status == 200 and method == "GET" and path.startswith("/timestamp"):
        assert isinstance(body["timestamp"], int) and body["server_id"] == (1 if port == "timestamp_odd" else 2), body
        assert body["timestamp"] % 2 == (1 if port == "timestamp_odd" else 0), body
    if path.startswith("/metrics/") and method == "GET" and r.status != 200:
        assert r.status == 404, r


# --- random methods and paths on every port --------------------------------------------------------

KNOWN_PATHS = ["/query", "/transaction", "/status", "/health", "/admin/events", "/admin/replication-mode",
               "/admin/reset", "/admin/stop-master", "/admin/start-master", "/admin/trigger-failover",
               "/admin/replicas/replica-1/stop", "/admin/replicas/replica-1/fault", "/timestamp", "/metrics",
               "/metrics/replica-1", "/select-quorum", "/elect-leader", "/", "/static/app.js", "/dashboard/stream",
               "/static/../config.toml", "/static/%2e%2e%2fconfig.toml", "//query", "/query/", "/QUERY",
               "/query?x=1", "/query#frag", "/health/../status", "/%00", "/%ff%fe", "/admin", "/admin/",
               "/static/", "/static/x.py", "/static/index.html%00.js"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "PROPFIND", "FOO",
           "get", "Post", "M-SEARCH", "X" * 40]
STANDARD = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE")
DESTRUCTIVE = ("/admin/reset", "/admin/stop-master", "/admin/start-master", "/admin/trigger-failover",
               "/admin/replicas/replica-1/stop", "/admin/replicas/replica-1/fault")


def random_path() -> Any:
    seg = st.one_of(odd_text, st.text(alphabet="abc./%~-_:@!$&'()*+,;=", max_size=10))
    return st.lists(seg, min_size=0, max_size=4).map(
        lambda parts: "/" + "/".join(urllib.parse.quote(p, safe="./~-_:@!$&'()*+,;=") for p in parts))


@fuzz(250)
@given(port=st.sampled_from(PORT_NAMES), method=st.one_of(st.sampled_from(METHODS),
                                                          st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-_!#$%&'*+.^`|~",
                                                                  min_size=1, max_size=12)),
       path=st.one_of(st.sampled_from(KNOWN_PATHS), random_path()), data=st.sampled_from([b"", b"{", b"{}"]))
def test_random_methods_and_paths(server: Server, port: str, method: str, path: str, data: bytes) -> None:
    base = path.split("?")[0].split("#")[0]
    if method.upper() == "POST" and base in DESTRUCTIVE and port == "gateway":
        if base in ("/admin/reset", "/admin/stop-master", "/admin/start-master", "/admin/replicas/replica-1/stop"):
            return  # these ignore their body: never sent by the fuzzer
        data = b"{"  # an invalid body: must be refused before acting
    if base == "/dashboard/stream" and port == "gateway" and method in ("GET", "HEAD"):
        return  # an endless event stream by design
    if method in ("GET", "HEAD") and data:
        data = b""
    r = server.request(port, method, path, raw=data or None)
    if method == "HEAD" or r.status == 304:
        assert r.status != 500, r
        return
    if r.status == 400 and r.headers.get("content-type", "").startswith("text/plain") and method not in STANDARD:
        return  # the HTTP parser refused the method itself; test_request_line_and_header_errors_are_json covers it
    assert_api_answer(r)


def test_unknown_routes_are_404_and_wrong_methods_405(server: Server) -> None:
    for port in PORT_NAMES:
        r = server.get("/no/such/endpoint", port=port)
        body = assert_api_answer(r)
        assert r.status == 404 and body["code"] == "not_found", r
        r = server.request(port, "DELETE", "/health")
        body = assert_api_answer(r)
        assert r.status == 405 and body["code"] == "method_not_allowed", r
    r = server.get("/query")
    assert r.status == 405, r
    r = server.request("gateway", "PATCH", "/transaction", raw=b"{}")
    assert r.status == 405, r


# --- oversized bodies ----------------------------------------------------------------------------

BODY_ENDPOINTS = [("gateway", "/query"), ("gateway", "/transaction"), ("gateway", "/admin/replication-mode"),
                  ("gateway", "/admin/trigger-failover"), ("gateway", "/admin/replicas/replica-1/fault"),
                  ("cabinet", "/select-quorum"), ("seer", "/elect-leader")]


@pytest.mark.parametrize("port,path", BODY_ENDPOINTS)
@pytest.mark.parametrize("size", [MAX_BODY + 1, 4 * MAX_BODY, 256 * 1024])
def test_oversized_body_is_413(server: Server, port: str, path: str, size: int) -> None:
    pad = "x" * size
    raw = json.dumps({"query": "SELECT 1", "mode": "nope", "new_leader": "nope", "delay_ms": -1, "pad": pad}).encode()
    r = server.request(port, "POST", path, raw=raw, headers={"Content-Type": "application/json"})
    body = assert_api_answer(r)
    assert r.status == 413 and body["code"] == "body_too_large", r


@pytest.mark.parametrize("port,path", [("gateway", "/query"), ("gateway", "/admin/trigger-failover"),
                                       ("seer", "/elect-leader")])
def test_oversized_chunked_body_is_413(server: Server, port: str, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.ports[port], timeout=20)
    try:
        def chunks() -> Iterator[bytes]:
            yield b'{"query": "SELECT 1", "new_leader": "nope", "pad": "'
            for _ in range(40):
                yield b"y" * 1024
            yield b'"}'
        conn.request("POST", path, body=chunks(), headers={"Content-Type": "application/json"}, encode_chunked=True)
        resp = conn.getresponse()
        r = Resp(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(), "POST", path)
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the server reset the connection instead of answering 413")
    finally:
        conn.close()
    body = assert_api_answer(r)
    assert r.status == 413 and body["code"] == "body_too_large", r


# --- raw sockets: lying Content-Length, garbage, slow bodies ----------------------------------------


def raw_exchange(port: int, payload: bytes, timeout: float = 10, close_write: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        out = b""
        with contextlib.suppress(socket.timeout, ConnectionResetError):
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        return out


def parse_raw(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


GARBAGE = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n",
    b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}",
    b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{}",
    b"POST /query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close\r\n\r\n0\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\nConnection: close\r\n\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nBad\x00Header: 1\r\nConnection: close\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-H: 1\r\n" * 1000 + b"Connection: close\r\n\r\n",
    b"GET /health HTTP/1.1\nHost: x\nConnection: close\n\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: \xff\xfe\r\nX-U: \xc3\x28\r\nConnection: close\r\n\r\n",
    b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
    b"Connection: close\r\n\r\n{\"query\": \"SELECT 1\"}",  # lies: shorter than announced, then half-close
]


@pytest.mark.parametrize("payload", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_requests_never_500(server: Server, payload: bytes) -> None:
    """Protocol-level garbage is answered with a 4xx (or the connection closed), never a 500."""
    out = raw_exchange(server.ports["gateway"], payload, timeout=3)
    if out:
        status, headers, body = parse_raw(out)
        assert status != 500 and 400 <= status < 500 or status == 200, out[:300]
    server.all_healthy()


def test_request_line_and_header_errors_are_json(server: Server) -> None:
    """What the HTTP parser rejects is answered in the same JSON error shape as everything else."""
    bad = []
    unknown_method = b"FOO /query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for payload in (GARBAGE[2], GARBAGE[3], GARBAGE[4], GARBAGE[7], GARBAGE[8], unknown_method):
        out = raw_exchange(server.ports["gateway"], payload, timeout=3)
        if not out:
            continue
        status, headers, body = parse_raw(out)
        if not headers.get("content-type", "").startswith("application/json"):
            bad.append((payload[:60], status, headers.get("content-type"), body[:80]))
    assert not bad, f"parser-level errors answered without the JSON error shape: {bad}"


def _slow_post(port: int, path: str, body: bytes, pause: float, stop: threading.Event, results: list[Any]) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
            for i in range(len(body)):
                if stop.is_set():
                    return
                s.sendall(body[i:i + 1])
                time.sleep(pause)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            results.append(out)
    except OSError as exc:  # the server may time a slow client out
        results.append(exc)


def _slow_headers(port: int, stop: threading.Event, pause: float) -> None:
    with contextlib.suppress(OSError):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            for b in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200:
                if stop.is_set():
                    return
                s.sendall(bytes([b]))
                time.sleep(pause)


def test_slow_bodies_do_not_block_other_clients(server: Server) -> None:
    """Many clients dribbling bodies and headers a byte at a time: other clients are served at
    full speed meanwhile, and the slow ones get a proper answer when they finish."""
    stop = threading.Event()
    results: list[Any] = []
    body = json.dumps({"query": "SELECT %s AS v", "params": ["slow \u202e body"]}).encode()
    threads = []
    for i in range(24):
        port = server.ports[PORT_NAMES[i % len(PORT_NAMES)]]
        path = {"gateway": "/query", "cabinet": "/select-quorum", "seer": "/elect-leader"}.get(
            PORT_NAMES[i % len(PORT_NAMES)], "/query")
        threads.append(threading.Thread(target=_slow_post, args=(port, path, body, 0.05, stop, results), daemon=True))
    for i in range(12):
        threads.append(threading.Thread(target=_slow_headers, args=(server.ports[PORT_NAMES[i % 6]], stop, 0.05),
                                        daemon=True))
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        worst = 0.0
        for i in range(20):
            t0 = time.monotonic()
            server.all_healthy()
            r = server.post("/query", {"query": "SELECT %s AS v", "params": [i]})
            assert r.status == 200, r
            r = server.post("/query", {"query": "UPDATE products SET stock = stock WHERE id = -1"})
            assert r.status == 200, r
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.05)
        assert worst < 2.0, f"normal requests slowed to {worst:.2f}s while slow clients dribbled"
    finally:
        deadline = time.monotonic() + len(body) * 0.05 + 15
        for t in threads[:24]:
            t.join(max(0.1, deadline - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(5)
    answers = [r for r in results if isinstance(r, bytes) and r]
    assert answers, results
    for out in answers:
        status, headers, rbody = parse_raw(out)
        assert status != 500, out[:300]
        assert headers.get("content-type", "").startswith("application/json"), out[:300]
    server.all_healthy()


def test_abandoned_bodies_and_half_requests(server: Server) -> None:
    """Clients that announce a body and vanish, or send half a request line, leave nothing behind."""
    for i in range(50):
        with socket.create_connection(("127.0.0.1", server.ports[PORT_NAMES[i % 6]]), timeout=5) as s:
            if i % 3 == 0:
                s.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"query\":")
            elif i % 3 == 1:
                s.sendall(b"GET /heal")
            else:
                s.sendall(b"POST /transaction HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"statem")
    server.all_healthy()
    r = server.post("/query", {"query": "SELECT COUNT(*) AS n FROM products"})
    assert r.status == 200, r


def test_many_concurrent_fuzz_clients(server: Server) -> None:
    """Bursts of mixed bad requests in parallel on every port leave the process serving."""
    payloads = [(p, m, path, raw) for p in PORT_NAMES for m, path, raw in (
        ("POST", "/query", b"{"), ("POST", "/query", b'{"query": 1}'), ("POST", "/transaction", b"[]"),
        ("GET", "/nope", None), ("POST", "/select-quorum", b'{"operation": []}'),
        ("POST", "/elect-leader", b'{"exclude_replicas": 5}'), ("GET", "/metrics/\u00e9".encode().decode("latin-1"), None),
        ("POST", "/query", b'{"query": "SELECT %s", "params": [[[]]]}'))]

    def one(item: tuple[str, str, str, bytes | None]) -> Resp:
        port, method, path, raw = item
        return server.request(port, method, urllib.parse.quote(path, safe="/"), raw=raw)

    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        for r in ex.map(one, payloads * 4):
            assert_api_answer(r)
    server.all_healthy()


def test_internal_tables_untouched_by_fuzzing(server: Server) -> None:
    """Last: the internal schema still holds the structure the coordinator created."""
    rows = run_async(direct(server.cluster, server.leader, "SHOW TABLES FROM _coordinator", db=None))
    assert {r[0] for r in rows} >= {"log", "state"}, rows
