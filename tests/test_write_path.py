"""The write path against the real local cluster: invariants I1 (same data), I3
(timestamps), I4 (no false success), Cabinet vs all under a slow follower, clean
restart."""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import asyncmy
import pytest

from tests.conftest import Running, direct, make_config, start_coordinator, table_digest, wait_for

pytestmark = pytest.mark.mariadb


async def converged(run: Running) -> None:
    cl_names = [r.id for r in run.cfg.replicas]
    r = run.coord.replicator

    async def all_applied() -> bool:
        return all(r.replicas[n].applied_ts >= r.log.last_ts for n in cl_names)

    await wait_for(all_applied, 30, "every replica to apply the whole log")


async def digests(cluster, run: Running) -> dict[str, dict]:
    return {r.id: await table_digest(cluster, r.id) for r in run.cfg.replicas}


async def test_concurrent_mixed_writes_converge(cluster, fresh: Running) -> None:
    run = fresh
    await run.write("CREATE TABLE counters (id INT PRIMARY KEY, n INT NOT NULL, touched DATETIME(6), r DOUBLE)")
    for i in range(20):
        st, _ = await run.write("INSERT INTO counters VALUES (%s, 0, NULL, NULL)", [i])
        assert st == 200
    rng = random.Random(7)
    sem = asyncio.Semaphore(64)
    acked: list[dict] = []
    emails: list[str] = []

    async def one(i: int) -> None:
        kind = rng.random()
        if kind < 0.5:
            email = f"mix{i}@example.com"
            q, p = "INSERT INTO users (name, email) VALUES (%s, %s)", [f"user{i}", email]
        elif kind < 0.65:
            email = None
            q, p = ("INSERT INTO products (name, price, stock) VALUES (%s, %s, 1), (%s, %s, 2)",
                    [f"p{i}a", "1.25", f"p{i}b", "2.50"])
        elif kind < 0.9:
            email = None
            q, p = "UPDATE counters SET n = n + 1, touched = NOW(6), r = RAND() WHERE id = %s", [i % 20]
        else:
            email = None
            q, p = "DELETE FROM products WHERE id = %s", [rng.randrange(1, 200)]
        async with sem:
            st, body = await run.write(q, p)
        assert st == 200, body
        assert body["success"] is True
        body["table"] = q.split()[2]
        acked.append(body)
        if email:
            emails.append(email)

    await asyncio.gather(*(one(i) for i in range(2000)))
    assert len(acked) == 2000

    # I3: acknowledged timestamps are unique; the log orders them strictly.
    stamps = [b["timestamp"] for b in acked]
    assert len(set(stamps)) == len(stamps)
    await converged(run)
    logged = [row[0] for row in await direct(cluster, "replica-1", "SELECT ts FROM _coordinator.log ORDER BY ts",
                                             db=None)]
    assert set(stamps) <= set(logged)
    # commit order = timestamp order: auto-increment ids grow with timestamps
    for table in ("users", "products"):
        inserts = sorted((b["timestamp"], b["last_insert_id"]) for b in acked
                         if b["last_insert_id"] and b["table"] == table)
        ids = [i for _, i in inserts]
        assert len(ids) > 50 and ids == sorted(ids), table

    # I1: identical contents everywhere, including NOW(6) and RAND() results
    d = await digests(cluster, run)
    first = d["replica-4"]
    assert all(v == first for v in d.values()), "replicas diverged"
    assert sum(row[1] for row in first["counters"]) > 0
    assert any(row[3] is not None for row in first["counters"])
    # every acknowledged insert is present on every replica
    present = {row[2] for row in first["users"]}
    assert set(emails) <= present


async def test_duplicate_key_in_busy_batch(cluster, fresh: Running) -> None:
    run = fresh
    st, _ = await run.write("INSERT INTO users (name, email) VALUES ('dup', 'dup@example.com')")
    assert st == 200

    async def ins(i: int):
        email = "dup@example.com" if i == 25 else f"n{i}@example.com"
        return await run.write("INSERT INTO users (name, email) VALUES (%s, %s)", ["n", email])

    results = await asyncio.gather(*(ins(i) for i in range(50)))
    statuses = [s for s, _ in results]
    assert statuses.count(409) == 1
    assert statuses.count(200) == 49
    bad = results[25][1]
    assert bad["success"] is False and bad["errno"] == 1062 and bad["code"] == "duplicate_key"
    await converged(run)
    d = await digests(cluster, run)
    assert all(v == d["replica-4"] for v in d.values())
    assert not any(rs.diverged for rs in run.coord.replicator.replicas.values())
    assert len(d["replica-4"]["users"]) == 50


REFUSED = [
    ("INSERT INTO users (name, email) VALUES (UUID(), 'u@x')", 400, "UUID"),
    ("UPDATE users SET name = SYSDATE()", 400, "SYSDATE"),
    ("DELETE FROM users LIMIT 1", 400, "LIMIT"),
    ("UPDATE users SET name = 'x' LIMIT 2", 400, "LIMIT"),
    ("INSERT INTO users (name, email) VALUES (@v, 'a@x')", 400, "@v"),
    ("SET GLOBAL max_connections = 10", 400, "SET GLOBAL"),
    ("GRANT ALL ON *.* TO 'x'@'%'", 400, "GRANT"),
    ("LOAD DATA INFILE '/etc/passwd' INTO TABLE users", 400, "LOAD DATA"),
    ("SELECT * FROM users INTO OUTFILE '/tmp/x'", 400, "OUTFILE"),
    ("LOCK TABLES users WRITE", 400, "LOCK TABLES"),
    ("BEGIN", 400, "/transaction"),
    ("COMMIT", 400, "/transaction"),
    ("INSERT INTO users (name, email) VALUES ('a', 'b'); DELETE FROM users", 400, "statement"),
    ("INSERT INTO users (name, email) VALUES (LOAD_FILE('/etc/passwd'), 'x')", 400, "LOAD_FILE"),
    ("SELECT * FROM _coordinator.state", 403, "_coordinator"),
    ("DELETE FROM `_coordinator`.log", 403, "_coordinator"),
    ("INSERT INTO users (name, email) VALUES ('a', 'b') /* _coordinator */", 403, "_coordinator"),
]


async def test_refused_constructs_change_nothing(cluster, fresh: Running) -> None:
    run = fresh
    st, _ = await run.write("INSERT INTO users (name, email) VALUES ('keep', 'keep@example.com')")
    assert st == 200
    await converged(run)
    before = await digests(cluster, run)
    for sql, status, needle in REFUSED:
        st, body = await run.write(sql)
        assert st == status, (sql, body)
        assert body["success"] is False and body["code"]
        text = body["error"] + " " + str(body.get("construct", ""))
        assert needle.lower() in text.lower(), (sql, body)
    await asyncio.sleep(0.3)
    assert await digests(cluster, run) == before


async def _write_latencies(run: Running, n: int, tag: str) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        st, body = await run.write("INSERT INTO users (name, email) VALUES (%s, %s)", ["lat", f"{tag}{i}@x"])
        assert st == 200, body
        out.append((time.perf_counter() - t) * 1000)
    return out


async def test_slow_follower_cabinet_does_not_wait_all_does(cluster, fresh: Running) -> None:
    run = fresh
    cluster.delay("replica-1", 150)
    try:
        await _write_latencies(run, 5, "warm")  # let the ranking learn replica-1 is slow
        cab = statistics.median(await _write_latencies(run, 15, "cab"))
        st, body = await run.post("/admin/replication-mode", {"mode": "all"})
        assert st == 200 and body["mode"] == "all"
        allm = statistics.median(await _write_latencies(run, 10, "all"))
    finally:
        cluster.heal("replica-1")
    # 'all' waits for the delayed follower on every write; cabinet commits without it.
    assert allm >= 150
    assert cab < allm / 2, (cab, allm)
    st, q = await run.post("/select-quorum", {"operation": "write"}, port="cabinet")
    assert st == 200 and q["mode"] == "all"


async def test_write_timeout_without_quorum(cluster, fresh: Running, http) -> None:
    await fresh.stop()
    run = await start_coordinator(make_config(cluster, replication={"write_timeout_s": 1.5}), http)
    try:
        st, body = await run.post("/admin/replication-mode", {"mode": "all"})
        assert st == 200
        cluster.partition("replica-2")
        t = time.perf_counter()
        st, body = await run.write("INSERT INTO users (name, email) VALUES ('t', 'timeout@example.com')")
        took = time.perf_counter() - t
        assert st in (503, 504), body
        assert body["success"] is False
        assert "unknown" in body["error"]
        assert took < 1.5 + 1.0
    finally:
        cluster.heal("replica-2")
        await run.stop()


async def test_clean_restart_keeps_writes_and_timestamps(cluster, fresh: Running, http) -> None:
    run = fresh
    stamps = []
    for i in range(30):
        st, body = await run.write("INSERT INTO users (name, email) VALUES (%s, %s)", ["r", f"restart{i}@x"])
        assert st == 200
        stamps.append(body["timestamp"])
    st, t1 = await run.get("/timestamp", port="timestamp_odd")
    assert st == 200 and t1["timestamp"] % 2 == 1 and t1["server_id"] == 1
    await run.stop()
    run2 = await start_coordinator(make_config(cluster), http)
    try:
        st, body = await run2.post("/query", {"query": "SELECT email FROM users ORDER BY id"})
        assert st == 200
        assert {f"restart{i}@x" for i in range(30)} <= {r["email"] for r in body["data"]}
        st, body = await run2.write("INSERT INTO users (name, email) VALUES ('after', 'after@x')")
        assert st == 200
        assert body["timestamp"] > max(stamps + [t1["timestamp"]])
        st, t2 = await run2.get("/timestamp", port="timestamp_even")
        assert st == 200 and t2["timestamp"] % 2 == 0 and t2["timestamp"] > body["timestamp"]
    finally:
        await run2.stop()


async def test_response_shape_and_status(fresh: Running) -> None:
    run = fresh
    st, body = await run.write('INSERT INTO users (name, email) VALUES ("Alice", "alice@example.com")')
    assert st == 200
    q = body["quorum"]
    followers_acked = len(set(q["acked"]) - {"replica-4"})
    assert len(q["members"]) == 2 and q["members"][0] == "replica-4"
    assert "replica-4" in q["acked"] and followers_acked >= 1
    assert body["message"] == (f"Write successful (timestamp: {body['timestamp']}, quorum: 2/2, "
                               f"total: {followers_acked}/3)")
    assert body["rows_affected"] == 1 and body["last_insert_id"] >= 1
    assert body["executed_on"] == "mysql-replica-4"
    assert set(body["quorum"]) == {"mode", "members", "acked", "weight", "threshold"}
    assert body["quorum"]["weight"] > body["quorum"]["threshold"]
    st, s = await run.get("/status")
    assert s["current_master"] == "mysql-replica-4" and s["master_is_original"] is True
    assert s["replicas"] == ["replica-1", "replica-2", "replica-3"]
    assert s["commit_timestamp"] >= body["timestamp"] and s["mode"] == "cabinet" and s["epoch"] >= 1
    st, q = await run.post("/select-quorum", {"operation": "write"}, port="cabinet")
    assert q["quorum"][0] == "replica-4" and q["quorum_size"] == 2 and q["total_replicas"] == 4


async def test_reset_clears_everything_and_restarts_timestamps(cluster, fresh: Running) -> None:
    run = fresh
    for i in range(20):
        st, _ = await run.write("INSERT INTO users (name, email) VALUES (%s, %s)", ["z", f"reset{i}@x"])
        assert st == 200
    st, body = await run.post("/admin/reset", {})
    assert st == 200, body
    assert body["next_timestamp"] == 1 and "users" in body["tables"]
    for r in run.cfg.replicas:
        assert await direct(cluster, r.id, "SELECT COUNT(*) FROM users") == [(0,)]
        assert await direct(cluster, r.id, "SELECT COUNT(*) FROM _coordinator.log", db=None) == [(0,)]
    st, body = await run.write("INSERT INTO users (name, email) VALUES ('first', 'first@x')")
    assert st == 200 and body["timestamp"] == 1 and body["last_insert_id"] == 1


async def test_reset_refuses_with_a_replica_down(cluster, fresh: Running) -> None:
    run = fresh
    st, _ = await run.write("INSERT INTO users (name, email) VALUES ('kept', 'kept@x')")
    assert st == 200
    cluster.kill("replica-3")
    try:
        async def down() -> bool:
            return not run.coord.replicator.replicas["replica-3"].available

        # the worker notices on its next round trip; nudge it with a write
        await run.write("INSERT INTO users (name, email) VALUES ('nudge', 'nudge@x')")
        await wait_for(down, 10, "replica-3 to be seen down")
        st, body = await run.post("/admin/reset", {})
        assert st == 503 and "mysql-replica-3" in body["error"]
        assert await direct(cluster, "replica-4", "SELECT COUNT(*) FROM users") == [(2,)]
        st, _ = await run.write("INSERT INTO users (name, email) VALUES ('still', 'still@x')")
        assert st == 200
    finally:
        cluster.start("replica-3")


async def test_reset_on_a_fenced_coordinator_clears_nothing(cluster, fresh: Running) -> None:
    """A newer coordinator's epoch on the last replica: the reset must find it before emptying any
    replica (every replica accepts our epoch first, and each clear starts with the epoch check).
    Before, the first three replicas were emptied, and the fourth too (its TRUNCATEs ran before
    the state row's check)."""
    run = fresh
    for i in range(3):
        assert (await run.write("INSERT INTO users (name, email) VALUES (%s, %s)", ["kept", f"fence{i}@x"]))[0] == 200
    last = run.cfg.replicas[-1].id
    await direct(cluster, last, "UPDATE _coordinator.state SET epoch = epoch + 10, epoch_seen = epoch WHERE id = 1",
                 db=None)
    st, body = await run.post("/admin/reset", {})
    assert st == 503 and body["code"] == "fenced", body
    for r in run.cfg.replicas:
        assert await direct(cluster, r.id, "SELECT COUNT(*) FROM users WHERE name = 'kept'") == [(3,)], r.id
    st, status = await run.get("/status")
    assert status["fenced"] is True
    st, body = await run.write("INSERT INTO users (name, email) VALUES ('after', 'after@x')")
    assert st == 503, body


async def test_reset_checks_again_after_quiescing_and_clears_nothing_if_a_replica_went_away(
        cluster, fresh: Running, http) -> None:
    """The reset's preconditions hold when it starts, then a follower goes down while it waits for
    a write in flight (parked on a row lock held outside the coordinator). Once that write is done
    the reset must look again and refuse, clearing nothing — before, it went on and emptied the
    other three replicas, leaving the stopped one with everything they forgot."""
    await fresh.stop()  # the held write must outlive the follower's stop being noticed: a longer write timeout
    run = await start_coordinator(make_config(cluster, replication={"write_timeout_s": 30.0}), http)
    try:
        await _reset_after_a_replica_went_away(cluster, run)
    finally:
        await run.stop()


async def _reset_after_a_replica_went_away(cluster, run: Running) -> None:  # noqa: ANN001
    st, body = await run.write("INSERT INTO users (name, email) VALUES ('held', 'held@x')")
    assert st == 200
    uid = body["last_insert_id"]
    leader = run.coord.replicator.leader_id
    victim = next(r.id for r in run.cfg.replicas if r.id != leader)
    host, port = cluster.address(leader, direct=True)
    holder = await asyncmy.connect(host=host, port=port, user="root", password="", db="testdb")
    try:
        async with holder.cursor() as cur:
            await cur.execute("BEGIN")
            await cur.execute(f"SELECT id FROM users WHERE id = {uid} FOR UPDATE")
        write = asyncio.create_task(run.write(f"UPDATE users SET name = 'moved' WHERE id = {uid}"))
        await wait_for(lambda: asyncio.sleep(0, bool(run.coord.replicator.core.st.lanes)), 10, "the write to park")
        reset = asyncio.create_task(run.post("/admin/reset", {}))
        await wait_for(lambda: asyncio.sleep(0, run.coord.replicator.core.st.resetting), 10, "the reset to start")
        cluster.stop(victim)
        await wait_for(lambda: asyncio.sleep(0, not run.coord.replicator.replicas[victim].available), 15,
                       f"{victim} to be seen down")
        async with holder.cursor() as cur:
            await cur.execute("ROLLBACK")
        wst, wbody = await asyncio.wait_for(write, 30)
        assert wst == 200, wbody
        st, body = await asyncio.wait_for(reset, 30)
        assert st == 503 and body["code"] == "replica_unavailable" and victim in str(body), body
    finally:
        holder.close()
        cluster.start(victim)
    for r in run.cfg.replicas:
        if r.id != victim:
            assert await direct(cluster, r.id, "SELECT name FROM users WHERE id = %d" % uid) == [("moved",)], r.id
    assert not run.coord.replicator.core.st.resetting
    st, body = await run.write("INSERT INTO users (name, email) VALUES ('after', 'after2@x')")
    assert st == 200, body


async def test_a_write_slower_than_the_query_timeout_reaches_every_follower(cluster, fresh: Running, http) -> None:
    """A follower replays a statement about as long as the leader ran it, so its round trip allows
    each statement the per-statement limit (max_statement_time_s) as the leader's does. Bounded by the
    bare query timeout (here 1 s), every follower timed out on this write, reconnected and timed out
    again, and the write never reached a quorum."""
    await fresh.stop()
    # calibrate a statement that takes ~2.5 s on one server (the SEQUENCE engine; a scan, no I/O)
    probe = "SELECT SUM(seq % 7) FROM seq_1_to_1000000"
    t = time.perf_counter()
    await direct(cluster, "replica-1", probe)
    per_million = max(time.perf_counter() - t, 0.01)
    n = min(int(2.5 / per_million * 1_000_000), 200_000_000)
    slow = ("INSERT INTO users (name, email) SELECT 'slow', 'slow-write@example.com' FROM DUAL "
            f"WHERE (SELECT SUM(seq % 7) FROM seq_1_to_{n}) >= 0")
    run = await start_coordinator(make_config(cluster, mysql={"query_timeout_s": 1.0},
                                              replication={"write_timeout_s": 20.0}), http)
    try:
        t = time.perf_counter()
        st, body = await run.write(slow)
        took = time.perf_counter() - t
        assert st == 200, body
        assert took > 1.0, f"the write took {took:.2f} s: not slower than the query timeout, the test proves nothing"
        await converged(run)
        for r in run.cfg.replicas:
            rows = await direct(cluster, r.id, "SELECT COUNT(*) FROM users WHERE email = 'slow-write@example.com'")
            assert rows == [(1,)], r.id
    finally:
        await run.stop()
