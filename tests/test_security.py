"""Security (issue 8, item 4), against the coordinator as a real process on the session cluster.

- /admin/* needs ``Authorization: Bearer <token>`` when a token is configured (config file or
  COORD_ADMIN_TOKEN), and nothing else opens it;
- every port listens on 127.0.0.1 only by default;
- the internal schema can be neither read nor written through /query or /transaction,
  whatever the spelling (qualified, quoted, commented, information_schema, views, CTAS, ...);
- the database account and password and the admin token never appear in a response or the log;
- bodies above max_body_bytes are refused with 413 JSON;
- a runaway statement is cut by the per-statement time limit on the server and writes keep flowing;
- no CORS headers.

One coordinator process runs at a time (two would fence each other on the same cluster):
``Coordinators.get(name)`` stops the previous one and starts the named configuration.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import direct, wipe
from tests.test_fuzz import PORT_NAMES, Resp, Server, assert_api_answer, run_async

pytestmark = pytest.mark.mariadb

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tok-sentinel-5d2e8a91c0f4"
ENV_TOKEN = "envtok-sentinel-77b1c9e2"
DB_USER = "qc_sentinel_user_7f3a"
DB_PASSWORD = "Pw-sentinel-9c4e1b77"
MAX_BODY = 2000
SCHEMA = "_coordinator"


class Coordinators:
    """At most one coordinator process alive; started on demand by configuration name."""

    def __init__(self, cluster: Any, directory: Path) -> None:
        self.cluster = cluster
        self.directory = directory
        self.current: Server | None = None
        self.name = ""
        self.all: list[Server] = []

    def _build(self, name: str) -> Server:
        d = self.directory / name
        d.mkdir(exist_ok=True)
        if name == "secured":
            return Server(self.cluster, d, env={"COORD_MYSQL_PASSWORD": DB_PASSWORD},
                          coordinator={"admin_token": TOKEN, "max_body_bytes": MAX_BODY, "log_level": "debug"},
                          mysql={"user": DB_USER, "max_statement_time_s": 1.0, "query_timeout_s": 5.0})
        if name == "env":
            return Server(self.cluster, d, env={"COORD_ADMIN_TOKEN": ENV_TOKEN}, coordinator={"log_level": "info"})
        assert name == "open"
        return Server(self.cluster, d, coordinator={"log_level": "info"})

    def get(self, name: str) -> Server:
        if self.current is not None and self.name == name and self.current.alive():
            return self.current
        self.stop()
        srv = self._build(name)
        srv.start()
        self.current, self.name = srv, name
        self.all.append(srv)
        return srv

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="module")
def coords(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coordinators]:
    cluster.heal()
    run_async(wipe(cluster))
    for name in cluster.node_names():  # an account whose name and password are sentinels
        run_async(direct(cluster, name, f"CREATE USER IF NOT EXISTS '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASSWORD}'; "
                         f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'%' WITH GRANT OPTION", db=None))
    c = Coordinators(cluster, tmp_path_factory.mktemp("security"))
    try:
        yield c
    finally:
        c.stop()
        _kill_runaways(cluster)


@pytest.fixture
def secured(coords: Coordinators) -> Server:
    srv = coords.get("secured")
    r = srv.post("/query", {"query": "INSERT INTO products (name, price) VALUES ('sec', 1)"})
    assert r.status == 200, r
    return srv


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _kill_runaways(cluster: Any) -> list[tuple[Any, ...]]:
    """Kill (and return) statements still running on any replica for more than a second."""
    found = []
    for name in cluster.node_names():
        with contextlib.suppress(Exception):
            rows = run_async(direct(cluster, name, "SELECT id, time, info FROM information_schema.processlist "
                                    "WHERE command = 'Query' AND time >= 1 AND info NOT LIKE '%processlist%'",
                                    db=None))
            for pid, t, info in rows:
                found.append((name, t, (info or "")[:120]))
                with contextlib.suppress(Exception):
                    run_async(direct(cluster, name, f"KILL {int(pid)}", db=None))
    return found


def internal_snapshot(srv: Server) -> dict[str, Any]:
    out = {}
    for name in srv.cluster.node_names():
        tables = run_async(direct(srv.cluster, name, f"SHOW FULL TABLES FROM `{SCHEMA}`", db=None))
        log = run_async(direct(srv.cluster, name, f"SELECT ts, epoch, kind, body FROM `{SCHEMA}`.log ORDER BY ts",
                               db=None))
        state = run_async(direct(srv.cluster, name, f"SELECT epoch, epoch_seen, applied_ts, leader_id "
                                 f"FROM `{SCHEMA}`.state", db=None))
        user_objects = run_async(direct(srv.cluster, name, "SHOW FULL TABLES"))
        out[name] = (sorted(tables), log, state, sorted(user_objects))
    return out


# --- admin token -------------------------------------------------------------------------------

# (method, path, body that WOULD act if the guard let it through)
ADMIN_CALLS = [
    ("POST", "/admin/reset", {}),
    ("POST", "/admin/stop-master", {}),
    ("POST", "/admin/start-master", {}),
    ("POST", "/admin/trigger-failover", {"new_leader": "replica-1"}),
    ("POST", "/admin/replication-mode", {"mode": "all"}),
    ("POST", "/admin/replicas/replica-1/kill", {}),
    ("POST", "/admin/replicas/replica-2/pause", {}),
    ("POST", "/admin/replicas/replica-1/fault", {"partition": True}),
    ("GET", "/admin/events", None),
]
BAD_AUTH = [None, "", "Bearer", "Bearer ", "Bearer wrong", f"bearer {TOKEN}", f"BEARER {TOKEN}",
            f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", TOKEN, f"Token {TOKEN}", f"Bearer  {TOKEN}",
            f"Bearer {TOKEN.upper()}", "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode(),
            f"Bearer {TOKEN},Bearer {TOKEN}", f"Bearer\t{TOKEN}", f"Bearer {ENV_TOKEN}"]
# (leading/trailing spaces are optional whitespace in HTTP: the parser strips them, so
# " Bearer <token> " IS the right token)


def _assert_nothing_happened(srv: Server, before: dict[str, Any], digest: Any) -> None:
    st = srv.status()
    assert (st["leader"], st["mode"], st["epoch"]) == before, (st, before)
    assert srv.digest() == digest
    for rs in srv.get("/metrics", port="metrics").json()["replicas"]:
        assert rs["is_healthy"], rs


def test_admin_refuses_missing_and_wrong_tokens(secured: Server) -> None:
    st = secured.status()
    before = (st["leader"], st["mode"], st["epoch"])
    digest = secured.digest()
    for method, path, body in ADMIN_CALLS:
        for auth in BAD_AUTH:
            headers = {} if auth is None else {"Authorization": auth}
            r = secured.request("gateway", method, path, body, headers=headers)
            got = assert_api_answer(r, ok_allowed=False) if r.status != 200 else pytest.fail(
                f"{method} {path} with Authorization {auth!r} was accepted: {r!r}")
            assert r.status == 401, (auth, r)
            assert got["code"] == "unauthorized", got
        # other places a token might be looked for
        for extra_headers, qs in (({"X-Admin-Token": TOKEN}, ""), ({"Cookie": f"token={TOKEN}"}, ""),
                                  ({}, f"?token={TOKEN}"), ({}, f"?access_token={TOKEN}"),
                                  ({"Proxy-Authorization": f"Bearer {TOKEN}"}, "")):
            r = secured.request("gateway", method, path + qs, body, headers=extra_headers)
            assert r.status == 401, (extra_headers, qs, r)
        # the token check comes before the body is parsed or the replica resolved
        r = secured.request("gateway", method, path, raw=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status == 401, r
    r = secured.request("gateway", "POST", "/admin/replicas/no-such-replica/kill", {})
    assert r.status == 401, r
    _assert_nothing_happened(secured, before, digest)


def test_admin_token_with_non_utf8_bytes_is_401_not_500(secured: Server) -> None:
    """A header the server decodes with surrogate escapes must still be a clean 401."""
    port = secured.ports["gateway"]
    for auth in (b"Bearer \xff\xfe", b"Bearer " + TOKEN.encode() + b"\x80", b"Bearer " + TOKEN.encode() + b"\xa0",
                 b"Bearer \xe9", b"\xc3\x28"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /admin/events HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\nConnection: close\r\n\r\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        head, _, body = out.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        assert status == 401, (auth, out[:400])
        assert json.loads(body)["code"] == "unauthorized", out[:400]
    secured.all_healthy()


def test_admin_works_with_the_right_token(secured: Server) -> None:
    r = secured.get("/admin/events", headers=bearer())
    assert r.status == 200 and isinstance(r.json()["events"], list), r
    mode = secured.status()["mode"]
    r = secured.post("/admin/replication-mode", {"mode": mode}, headers=bearer())
    assert r.status == 200 and r.json()["mode"] == mode, r
    r = secured.post("/admin/replicas/replica-1/fault", {"delay_ms": 5}, headers=bearer())
    assert r.status == 200, r
    r = secured.post("/admin/replicas/replica-1/fault", {}, headers=bearer())
    assert r.status == 200, r
    # the right token with a bad body is a 400/404, not a 401
    r = secured.post("/admin/replication-mode", {"mode": "nope"}, headers=bearer())
    assert r.status == 400, r
    r = secured.post("/admin/replicas/no-such/kill", {}, headers=bearer())
    assert r.status == 404, r


# --- listening addresses -------------------------------------------------------------------------


def non_loopback_ipv4() -> list[str]:
    addrs: set[str] = set()
    with contextlib.suppress(Exception):
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=5).stdout
        addrs.update(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", out))
    with contextlib.suppress(Exception):
        addrs.update(i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    with contextlib.suppress(Exception), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
        addrs.add(s.getsockname()[0])
    return sorted(a for a in addrs if not a.startswith("127.") and a != "0.0.0.0")


def test_listens_on_loopback_only(secured: Server) -> None:
    addrs = non_loopback_ipv4()
    if not addrs:
        pytest.skip("environment: this machine has only loopback addresses")
    for addr in addrs:
        for name in PORT_NAMES:
            port = secured.ports[name]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                try:
                    s.connect((addr, port))
                except (ConnectionRefusedError, socket.timeout, OSError):
                    continue
                pytest.fail(f"port {name} ({port}) accepts connections on {addr}")
    # and loopback works
    secured.all_healthy()


# --- the internal schema ------------------------------------------------------------------------

READ_TRICKS = [
    "SELECT * FROM _coordinator.log",
    "SELECT * FROM `_coordinator`.`log`",
    "SELECT * FROM `_coordinator`.state",
    "SELECT * FROM _COORDINATOR.LOG",
    "SELECT * FROM _Coordinator.State",
    "SELECT * FROM /**/_coordinator/**/.log",
    "SELECT * FROM _coordinator\t.\tlog",
    "SELECT * FROM\n_coordinator\n.\nstate",
    "SELECT * FROM /*!_coordinator.log*/ x",
    "SELECT * FROM /*!50000 _coordinator.log */",
    "/*M!100000 SELECT * FROM _coordinator.log */",
    "SELECT /*!99999 1, */ body FROM _coordinator.log",
    "SELECT * FROM products -- _coordinator.log",
    "SELECT * FROM products # _coordinator",
    "SELECT '_coordinator' AS x",
    "SELECT * FROM products UNION SELECT * FROM _coordinator.log",
    "SELECT (SELECT COUNT(*) FROM _coordinator.log) AS n",
    "SELECT * FROM products WHERE id IN (SELECT ts FROM _coordinator.log)",
    "WITH x AS (SELECT * FROM _coordinator.state) SELECT * FROM x",
    "TABLE _coordinator.state",
    "SELECT * FROM testdb.products, _coordinator.state",
    "SELECT * FROM _coordinator.state FOR UPDATE",
    "SELECT table_name FROM information_schema.tables WHERE table_schema = '_coordinator'",
    "SELECT table_name FROM information_schema.tables WHERE table_schema = CONCAT('_coord', 'inator')",
    "SELECT table_name FROM information_schema.tables WHERE table_schema = '_coord\\inator'",
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 0x5f636f6f7264696e61746f72",
    "SELECT table_name FROM information_schema.tables WHERE table_schema = CHAR(95,99,111,111,114,100,105,110,97,116,111,114)",
    "SELECT column_name FROM information_schema.columns WHERE table_schema LIKE '\\_coord%'",
    "SELECT * FROM INFORMATION_SCHEMA.SCHEMATA",
    "SELECT * FROM `information_schema`.`TABLES`",
    "SELECT * FROM information_schema . tables",
    "SELECT * FROM information_schema/**/.tables",
    "SELECT * FROM information_schema/*x*/./*y*/columns",
    "SELECT * FROM \u0131nformation_schema.tables",  # dotless i: the server folds it to I
    "SELECT * FROM information_\u017fchema.tables",  # long s: the server folds it to S
    "SELECT * FROM information_schema.innodb_sys_tables",
    "SELECT * FROM information_schema.partitions",
    "SELECT * FROM mysql.innodb_table_stats",
    "SELECT * FROM mysql.innodb_index_stats WHERE database_name = CONCAT('_coord', 'inator')",
    "SELECT * FROM performance_schema.table_io_waits_summary_by_table",
    "SELECT * FROM sys.schema_table_statistics",
    "SHOW DATABASES",
    "SHOW SCHEMAS",
    "show databases like '%coord%'",
    "SHOW TABLES FROM _coordinator",
    "SHOW TABLES IN `_coordinator`",
    "SHOW FULL TABLES FROM `_coordinator`",
    "SHOW TABLE STATUS FROM _coordinator",
    "SHOW TABLES FROM information_schema",
    "SHOW TABLE STATUS FROM information_schema",
    "SHOW CREATE TABLE _coordinator.log",
    "SHOW CREATE DATABASE _coordinator",
    "SHOW COLUMNS FROM log FROM _coordinator",
    "SHOW COLUMNS FROM `_coordinator`.`state`",
    "SHOW INDEX FROM state IN _coordinator",
    "SHOW OPEN TABLES",
    "SHOW OPEN TABLES FROM _coordinator",
    "SHOW TRIGGERS FROM _coordinator",
    "DESCRIBE _coordinator.log",
    "DESC `_coordinator`.state",
    "EXPLAIN SELECT * FROM _coordinator.log",
    "CHECKSUM TABLE _coordinator.log",
    "USE _coordinator",
    "USE information_schema",
    "HANDLER _coordinator.log OPEN",
    "PREPARE s FROM 'SELECT * FROM _coord' 'inator.log'",
    "EXECUTE IMMEDIATE CONCAT('SELECT * FROM _coord', 'inator.log')",
    "EXECUTE IMMEDIATE 'SELECT * FROM _coord\\inator.log'",
    "SELECT LOAD_FILE(CONCAT(@@datadir, '_coord', 'inator/state.frm'))",
    "SELECT * FROM products INTO OUTFILE '/tmp/leak.txt'",
    # homoglyphs and invisible characters: other names to the server; they must not reach the schema
    "SELECT * FROM _coord\u0131nator.log",
    "SELECT * FROM _coordinat\u043er.log",
    "SELECT * FROM _\uff43oordinator.log",
    "SELECT * FROM _coordinator\u200b.log",
    "SELECT * FROM \uff3fcoordinator.log",
    "SELECT * FROM _COORD\u0130NATOR.LOG",
]

WRITE_TRICKS = [
    "CREATE VIEW v_leak AS SELECT * FROM _coordinator.log",
    "CREATE OR REPLACE VIEW v_leak AS SELECT * FROM `_coordinator`.`state`",
    "CREATE VIEW v_leak AS SELECT * FROM information_schema.tables",
    "CREATE VIEW v_leak AS SELECT table_name FROM information_schema.tables WHERE table_schema = CONCAT('_coord','inator')",
    "CREATE TABLE t_leak AS SELECT * FROM _coordinator.log",
    "CREATE TABLE t_leak AS SELECT table_name FROM information_schema.tables",
    "CREATE TABLE t_leak LIKE _coordinator.log",
    "CREATE TABLE t_leak (a INT) ENGINE=MERGE UNION=(_coordinator.log)",
    "CREATE TABLE t_leak (ts BIGINT) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1/_coord\\inator/log'",
    "CREATE TABLE t_leak (ts BIGINT) ENGINE=CONNECT TABLE_TYPE=MYSQL DBNAME='_coord\\inator' TABNAME='log'",
    "INSERT INTO products (name, price) SELECT body, 1 FROM _coordinator.log",
    "INSERT INTO products (name, price) SELECT table_name, 1 FROM information_schema.tables",
    "INSERT INTO products (name, price) VALUES ((SELECT leader_id FROM _coordinator.state), 1)",
    "INSERT INTO _coordinator.log (ts, epoch, kind, time_us, seed1, seed2, body) VALUES (999999, 1, 1, 1, 1, 1, '[]')",
    "REPLACE INTO _coordinator.state (id, epoch, epoch_seen, applied_ts, applied_epoch, ts_mark) VALUES (1,9,9,9,9,9)",
    "UPDATE _coordinator.state SET epoch = 999, epoch_seen = 999",
    "UPDATE `_coordinator`.`state` SET applied_ts = 0",
    "UPDATE products p JOIN _coordinator.state s SET p.name = s.leader_id",
    "UPDATE products SET name = (SELECT MAX(body) FROM _coordinator.log)",
    "DELETE FROM _coordinator.log",
    "DELETE p FROM products p, _coordinator.log l WHERE p.id = l.ts",
    "DELETE FROM /*!_coordinator.*/log",
    "DROP TABLE _coordinator.log",
    "DROP TABLE IF EXISTS `_coordinator`.`state`",
    "DROP DATABASE _coordinator",
    "DROP SCHEMA `_coordinator`",
    "TRUNCATE TABLE _coordinator.log",
    "TRUNCATE _coordinator.log",
    "RENAME TABLE _coordinator.log TO testdb.stolen",
    "RENAME TABLE products TO _coordinator.products",
    "ALTER TABLE products RENAME TO _coordinator.products",
    "ALTER TABLE _coordinator.state ADD COLUMN x INT",
    "ALTER TABLE _coordinator.log DISCARD TABLESPACE",
    "CREATE TABLE _coordinator.evil (a INT)",
    "CREATE INDEX i_leak ON _coordinator.log (epoch)",
    "CREATE DATABASE _coordinator2",
    "CREATE SCHEMA evil",
    "ALTER DATABASE _coordinator CHARACTER SET utf8mb4",
    "CREATE TRIGGER tr_leak BEFORE INSERT ON products FOR EACH ROW DELETE FROM _coordinator.log",
    "CREATE PROCEDURE p_leak() SELECT * FROM _coordinator.log",
    "CREATE FUNCTION f_leak() RETURNS INT RETURN (SELECT COUNT(*) FROM _coordinator.log)",
    "CREATE EVENT e_leak ON SCHEDULE EVERY 1 SECOND DO DELETE FROM _coordinator.log",
    "CREATE SEQUENCE _coordinator.s",
    "GRANT ALL ON _coordinator.* TO 'x'@'%'",
    "LOCK TABLES _coordinator.log WRITE",
    "FLUSH TABLES _coordinator.log FOR EXPORT",
    "OPTIMIZE TABLE _coordinator.log",
    "ANALYZE TABLE _coordinator.state",
    "REPAIR TABLE _coordinator.log",
    "LOAD DATA INFILE '/etc/passwd' INTO TABLE _coordinator.log",
    "SET @q = CONCAT('DELETE FROM _coord', 'inator.log')",
    "INSERT INTO _coord\u0131nator.log (ts) VALUES (1)",
    "DELETE FROM _coordinat\u043er.log",
]

# markers of internal data: if a request that got through returns any of these, it leaked
LEAK = re.compile(r"epoch_seen|applied_epoch|ddl_pending|log_floor|ts_mark|_coordinator|seed1", re.I)


def _check_refused_or_harmless(r: Resp, sql: str) -> None:
    body = assert_api_answer(r)
    mentions = re.search(r"_coord|information_schema|\u0131nformation|\u017fchema|mysql\.|performance_schema|sys\.|"
                         r"SHOW DATABASES|SHOW SCHEMAS|USE |0x5f63|CHAR\(95", sql, re.I)
    if r.status == 200:
        assert not LEAK.search(json.dumps(body.get("data", body))), f"internal data leaked by {sql!r}: {r!r}"
        assert not mentions or "\u200b" in sql or "\uff3f" in sql or "\uff43" in sql or "\u043e" in sql \
            or "_coord\u0131" in sql or "\u0130" in sql, f"{sql!r} was accepted: {r!r}"
    else:
        assert r.status in (400, 403, 404), (sql, r)


def test_internal_schema_unreachable_through_query(secured: Server) -> None:
    before = internal_snapshot(secured)
    digest = secured.digest()
    for sql in READ_TRICKS + WRITE_TRICKS:
        for consistency in ("strong", "eventual"):
            r = secured.post("/query", {"query": sql, "consistency": consistency})
            _check_refused_or_harmless(r, sql)
            if r.status not in (200,) and sql.startswith(("SELECT * FROM _coordinator", "SHOW TABLES FROM _coord",
                                                          "UPDATE _coordinator", "DELETE FROM _coordinator")):
                assert r.status == 403 and r.json()["code"] == "internal_schema", (sql, r)
    _kill_runaways(secured.cluster)
    after = internal_snapshot(secured)
    assert after == before, "the internal schema (or the set of user objects) changed"
    assert secured.digest() == digest


def test_internal_schema_unreachable_through_transaction(secured: Server) -> None:
    before = internal_snapshot(secured)
    digest = secured.digest()
    harmless = {"query": "UPDATE products SET stock = stock WHERE id = -1"}
    for sql in WRITE_TRICKS + READ_TRICKS[:30]:
        for stmts in ([{"query": sql}], [harmless, {"query": sql}], [{"query": sql}, harmless]):
            r = secured.post("/transaction", {"statements": stmts})
            body = assert_api_answer(r)
            assert r.status in (400, 403, 404), (sql, r)
            assert not LEAK.search(json.dumps(body.get("statements", ""))), r
    after = internal_snapshot(secured)
    assert after == before
    assert secured.digest() == digest


@pytest.mark.parametrize("sql,params", [
    ("SHOW TABLES FROM %s", ["_coordinator"]),
    ("SHOW TABLES LIKE %s", ["%"]),
    ("SHOW TABLE STATUS LIKE %s", ["%"]),
    ("SELECT * FROM products WHERE name = %s", ["_coordinator"]),
    ("SELECT * FROM products WHERE name = %s", ["x' UNION SELECT body FROM _coordinator.log -- "]),
    ("SELECT * FROM products WHERE name = %s", ["x\\' UNION SELECT * FROM _coordinator.log -- "]),
    ("SELECT * FROM products WHERE name = %(n)s", {"n": "' OR 1=1 UNION SELECT * FROM _coordinator.state #"}),
    ("SELECT %s AS a FROM products ORDER BY id", ["`_coordinator`.`log`"]),
    ("UPDATE products SET name = %s WHERE id = -1", ["'); DELETE FROM _coordinator.log; -- "]),
    ("INSERT INTO products (name, price) VALUES (%s, %s)", ["x", "1); DROP TABLE _coordinator.log; -- "]),
    ("SELECT * FROM information_schema.tables WHERE table_schema = %s", ["_coordinator"]),
    ("CREATE TABLE t_leak (ts BIGINT) ENGINE=FEDERATED CONNECTION=%s", ["mysql://root@127.0.0.1/_coordinator/log"]),
    ("CREATE VIEW v_leak AS SELECT %s AS x", ["_coordinator"]),
])
def test_parameters_carrying_the_name_cannot_reach_it(secured: Server, sql: str, params: Any) -> None:
    before = internal_snapshot(secured)
    r = secured.post("/query", {"query": sql, "params": params})
    body = assert_api_answer(r)
    if r.status == 200 and "data" in body:
        for row in body["data"]:
            for k, v in row.items():
                # a parameter echoed back as a value is fine; internal rows or columns are not
                assert not re.search(r"epoch_seen|applied_epoch|ddl_pending|seed1|log_floor", f"{k}={v}"), r
                if sql.startswith("SHOW"):
                    assert v not in ("log", "state") or k.lower().startswith("name") is False, r
    after = internal_snapshot(secured)
    if r.status == 200 and not sql.startswith(("SELECT", "SHOW")):
        # a legitimate write: only the user objects and the log may differ
        for name in after:
            assert after[name][0] == before[name][0] and after[name][2][0][:2] == before[name][2][0][:2], name
        if sql.startswith("CREATE VIEW"):
            secured.post("/query", {"query": "DROP VIEW v_leak"})
    else:
        assert after == before


# --- credentials and the token never leak --------------------------------------------------------

SECRETS = (DB_PASSWORD, DB_USER, TOKEN)


def _every_endpoint_responses(srv: Server) -> list[Resp]:
    out = []
    calls = [
        ("gateway", "GET", "/status", None), ("gateway", "GET", "/health", None), ("gateway", "GET", "/metrics", None),
        ("gateway", "GET", "/", None), ("gateway", "GET", "/static/app.js", None),
        ("gateway", "GET", "/admin/events?limit=1000", None), ("gateway", "GET", "/admin/events", None),
        ("gateway", "POST", "/query", {"query": "SELECT * FROM products ORDER BY id"}),
        ("gateway", "POST", "/query", {"query": "SELECT * FROM no_such_table"}),
        ("gateway", "POST", "/query", {"query": "SELECT nope FROM products"}),
        ("gateway", "POST", "/query", {"query": "SELEC 1"}),
        ("gateway", "POST", "/query", {"query": "SHOW GRANTS"}),
        ("gateway", "POST", "/query", {"query": "SHOW PROCESSLIST"}),
        ("gateway", "POST", "/query", {"query": "SELECT * FROM mysql.user"}),
        ("gateway", "POST", "/query", {"query": "SHOW VARIABLES LIKE '%user%'"}),
        ("gateway", "POST", "/query", {"query": "SHOW STATUS"}),
        ("gateway", "POST", "/query", {"query": "SELECT SLEEP(3)"}),
        ("gateway", "POST", "/query", {"query": "INSERT INTO no_such (a) VALUES (1)"}),
        ("gateway", "POST", "/query", {"query": "INSERT INTO products (id, name, price) VALUES (1, 'dup', 1)"}),
        ("gateway", "POST", "/query", {"query": "CREATE TABLE products (a INT)"}),
        ("gateway", "POST", "/transaction", {"statements": [{"query": "INSERT INTO no_such VALUES (1)"}]}),
        ("gateway", "POST", "/admin/trigger-failover", {"new_leader": "nope"}),
        ("gateway", "POST", "/admin/replicas/nope/kill", {}),
        ("timestamp_odd", "GET", "/timestamp", None), ("timestamp_even", "GET", "/timestamp", None),
        ("metrics", "GET", "/metrics", None), ("metrics", "GET", "/metrics/replica-1", None),
        ("metrics", "GET", "/metrics/nope", None),
        ("cabinet", "POST", "/select-quorum", {"operation": "write"}), ("seer", "POST", "/elect-leader", {}),
        ("seer", "POST", "/elect-leader", {"exclude_replicas": ["replica-1", "replica-2", "replica-3", "replica-4"]}),
    ]
    for port, method, path, body in calls:
        for headers in ({}, bearer()):
            out.append(srv.request(port, method, path, body, headers=headers))
    # the first bytes of the dashboard stream (hello + recent events + a snapshot)
    with socket.create_connection(("127.0.0.1", srv.ports["gateway"]), timeout=5) as s:
        s.sendall(b"GET /dashboard/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 2
        with contextlib.suppress(socket.timeout):
            while time.monotonic() < deadline and len(data) < 2_000_000:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    out.append(Resp(200, {}, data, "GET", "/dashboard/stream"))
    return out


def test_credentials_never_in_responses(secured: Server) -> None:
    for r in _every_endpoint_responses(secured):
        assert r.status != 500, r
        text = r.body.decode("utf-8", "replace") + json.dumps(r.headers)
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} appears in {r.method} {r.path}: {r.body[:300]!r}"


@pytest.mark.parametrize("sql", ["SELECT USER() AS u", "SELECT CURRENT_USER() AS u", "SELECT CURRENT_USER AS u",
                                 "SELECT SESSION_USER() AS u", "SELECT SYSTEM_USER() AS u",
                                 "SELECT GROUP_CONCAT(user) AS u FROM information_schema.processlist",
                                 "SHOW PROCESSLIST", "SHOW GRANTS", "SHOW GRANTS FOR CURRENT_USER"])
def test_database_account_not_exposed_by_sql(secured: Server, sql: str) -> None:
    """The account the coordinator connects with is a credential: no statement reveals it."""
    r = secured.post("/query", {"query": sql})
    assert_api_answer(r)
    assert DB_USER not in r.body.decode("utf-8", "replace"), f"{sql!r} revealed the database account: {r!r}"


# --- body size limit ------------------------------------------------------------------------------


@pytest.mark.parametrize("port,path,auth", [
    ("gateway", "/query", False), ("gateway", "/transaction", False), ("gateway", "/admin/replication-mode", True),
    ("gateway", "/admin/trigger-failover", True), ("cabinet", "/select-quorum", False), ("seer", "/elect-leader", False),
])
def test_body_size_limit_is_413_json(secured: Server, port: str, path: str, auth: bool) -> None:
    body = {"query": "SELECT 1", "mode": "nope", "new_leader": "nope", "pad": "p" * (MAX_BODY + 1)}
    r = secured.request(port, "POST", path, body, headers=bearer() if auth else {})
    got = assert_api_answer(r)
    assert r.status == 413 and got["code"] == "body_too_large", r
    # a body just under the limit is parsed normally
    r = secured.request(port, "POST", path, {"query": "SELECT 1", "mode": "nope", "new_leader": "nope",
                                             "pad": "p" * (MAX_BODY - 200)}, headers=bearer() if auth else {})
    assert r.status != 413, r


# --- runaway statements -------------------------------------------------------------------------------

RUNAWAY_READS = [
    "SELECT SLEEP(100) AS s",
    "SELECT BENCHMARK(100000000000, MD5('x')) AS b",
    "SELECT SUM(a.seq * b.seq) AS n FROM seq_1_to_1000000 a, seq_1_to_1000000 b",
]
# MariaDB's SEQUENCE engine: ~10^12 rows, hours of work, and no unsafe function in sight
RUNAWAY_WRITE = ("UPDATE products SET stock = stock WHERE "
                 "(SELECT SUM(a.seq * b.seq) FROM seq_1_to_1000000 a, seq_1_to_1000000 b) < 0")


def _writes_flow(srv: Server, seconds: float, tag: str) -> list[tuple[float, int]]:
    out = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        t0 = time.monotonic()
        r = srv.post("/query", {"query": "INSERT INTO users (name, email) VALUES ('w', %s)",
                                "params": [f"{tag}-{i}-{time.time_ns()}@x"]}, timeout=30)
        out.append((time.monotonic() - t0, r.status))
        time.sleep(0.05)
    return out


@pytest.mark.parametrize("sql", RUNAWAY_READS)
def test_runaway_read_is_cut_by_the_statement_time_limit(secured: Server, sql: str) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        t0 = time.monotonic()
        fut = ex.submit(secured.post, "/query", {"query": sql}, timeout=60)
        writes = _writes_flow(secured, 2.0, "rr")
        r = fut.result(60)
        elapsed = time.monotonic() - t0
    assert_api_answer(r)
    assert elapsed < 5.0, f"{sql!r} ran {elapsed:.1f}s (max_statement_time_s = 1.0): {r!r}"
    if "BENCHMARK" in sql and r.status == 200:
        pass  # MariaDB answers an interrupted BENCHMARK() with 0 and no error; the time bound above is what counts
    else:
        assert r.status in (400, 503, 504), r
    assert all(st == 200 for _, st in writes) and max(t for t, _ in writes) < 2.0, writes
    left = _kill_runaways(secured.cluster)
    assert not left, f"statements still running on the servers after the answer: {left}"


def test_runaway_write_is_cut_and_writes_keep_flowing(secured: Server) -> None:
    """The per-statement limit must hold on the write path too, or a runaway statement would
    stall the leader's pipeline (and every follower's applier replaying it)."""
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            t0 = time.monotonic()
            fut = ex.submit(secured.post, "/query", {"query": RUNAWAY_WRITE}, timeout=90)
            time.sleep(0.2)
            writes = _writes_flow(secured, 4.0, "rw")
            r = fut.result(90)
            elapsed = time.monotonic() - t0
        left = _kill_runaways(secured.cluster)
        assert_api_answer(r)
        assert r.status in (400, 503, 504), r
        assert elapsed < 8.0, f"the runaway write ran {elapsed:.1f}s with max_statement_time_s = 1.0: {r!r}"
        assert not left, f"statements still running on the servers after the answer: {left}"
        slow = [(round(t, 2), st) for t, st in writes if st != 200 or t > 3.0]
        assert not slow, (f"writes stalled behind the runaway statement: {slow} (of {len(writes)}); the runaway "
                          f"write answered after {elapsed:.1f}s: {r!r}")
    finally:
        _kill_runaways(secured.cluster)
    # the cluster is still consistent and writing
    r = secured.post("/query", {"query": "INSERT INTO users (name, email) VALUES ('after', 'after-runaway@x')"},
                     timeout=30)
    assert r.status == 200, r


# --- CORS ---------------------------------------------------------------------------------------------


def test_no_cors_headers(secured: Server) -> None:
    origin = {"Origin": "http://evil.example"}
    calls = [(p, "GET", "/health", None) for p in PORT_NAMES] + [
        ("gateway", "GET", "/status", None), ("gateway", "POST", "/query", {"query": "SELECT 1"}),
        ("gateway", "GET", "/admin/events", None), ("gateway", "GET", "/", None),
        ("timestamp_odd", "GET", "/timestamp", None), ("metrics", "GET", "/metrics", None),
        ("cabinet", "POST", "/select-quorum", {}), ("seer", "POST", "/elect-leader", {}),
    ]
    for port, method, path, body in calls:
        for headers in (origin, {**origin, **bearer()}):
            r = secured.request(port, method, path, body, headers=headers)
            cors = {k: v for k, v in r.headers.items() if k.startswith("access-control-")}
            assert not cors, (port, path, cors)
        pre = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        r = secured.request(port, "OPTIONS", path, headers=pre)
        assert r.status != 500 and not any(k.startswith("access-control-") for k in r.headers), (path, r, r.headers)
        assert r.status >= 400, (path, r)


# --- the log (last for the secured process: everything above went through it) --------------------------


def test_secrets_never_logged(secured: Server) -> None:
    # provoke some more logging with the token and password around
    secured.get("/admin/events", headers=bearer())
    secured.get("/admin/events", headers={"Authorization": f"Bearer {TOKEN}-wrong"})
    secured.post("/admin/trigger-failover", {"new_leader": TOKEN}, headers=bearer())
    secured.post("/query", {"query": f"SELECT '{DB_PASSWORD}'"})
    secured.post("/query", {"query": f"SELECT * FROM {TOKEN}"})
    time.sleep(0.3)
    log = secured.log_text()
    assert log.strip(), "the coordinator wrote no log at debug level"
    # the password may only appear where a client sent it in SQL text itself; the token never
    assert TOKEN not in log.replace(f"SELECT * FROM {TOKEN}", ""), "the admin token appears in the log"
    assert DB_PASSWORD not in log.replace(f"SELECT '{DB_PASSWORD}'", ""), "the database password appears in the log"


# --- without a token, and with the token from the environment ---------------------------------------------


def test_without_token_admin_is_open_on_loopback(coords: Coordinators) -> None:
    srv = coords.get("open")
    r = srv.get("/admin/events")
    assert r.status == 200, r
    r = srv.post("/admin/replication-mode", {"mode": srv.status()["mode"]})
    assert r.status == 200, r
    cfg = srv.data["coordinator"]
    assert cfg.get("host", "127.0.0.1") == "127.0.0.1"


def test_token_from_environment(coords: Coordinators) -> None:
    srv = coords.get("env")
    assert ENV_TOKEN not in srv.proc.path.read_text()
    r = srv.get("/admin/events")
    assert r.status == 401 and r.json()["code"] == "unauthorized", r
    r = srv.get("/admin/events", headers=bearer(TOKEN))
    assert r.status == 401, r
    r = srv.get("/admin/events", headers=bearer(ENV_TOKEN))
    assert r.status == 200, r
    r = srv.post("/admin/replication-mode", {"mode": srv.status()["mode"]}, headers=bearer(ENV_TOKEN))
    assert r.status == 200, r
    assert ENV_TOKEN not in srv.log_text()


def test_readme_documents_the_admin_token() -> None:
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing"
    text = readme.read_text()
    assert "COORD_ADMIN_TOKEN" in text or "admin_token" in text, "the README does not say how to set the admin token"
    assert "Bearer" in text, "the README does not say how to send the admin token"
