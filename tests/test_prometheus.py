"""GET :8000/metrics in Prometheus text format, parsed with prometheus-client's parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Running

pytestmark = pytest.mark.mariadb


async def test_prometheus_metrics_parse_and_move(fresh: Running) -> None:
    run = fresh
    for i in range(5):
        st, _ = await run.write("INSERT INTO users (name, email) VALUES ('p', %s)", [f"prom{i}@x"])
        assert st == 200
    st, _ = await run.post("/query", {"query": "SELECT COUNT(*) FROM users"})
    assert st == 200
    await run.post("/query", {"query": "DROP DATABASE x"})  # refused: counted with its status
    async with run.session.get(run.url("gateway", "/metrics")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples}

    assert samples[("coordinator_writes_committed_total", ())] >= 5
    assert samples[("coordinator_write_latency_seconds_count", ())] >= 5
    assert samples[("coordinator_read_latency_seconds_count", ())] >= 1
    assert samples[("coordinator_http_requests_total", (("endpoint", "/query"), ("status", "200")))] >= 6
    assert samples[("coordinator_http_requests_total", (("endpoint", "/query"), ("status", "400")))] >= 1
    assert samples[("coordinator_quorum_mode", (("mode", "cabinet"),))] == 1
    assert samples[("coordinator_epoch", ())] >= 1
    assert samples[("coordinator_replica_is_leader", (("replica", "replica-4"),))] == 1
    for rid in ("replica-1", "replica-2", "replica-3", "replica-4"):
        assert ("coordinator_replica_lag_entries", (("replica", rid),)) in samples
        assert ("coordinator_replica_weight", (("replica", rid),)) in samples
        assert ("coordinator_replica_healthy", (("replica", rid),)) in samples
    assert "coordinator_failovers" in fams and "coordinator_rebuilds" in fams
