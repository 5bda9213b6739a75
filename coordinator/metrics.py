"""Prometheus metrics (``GET :8000/metrics``), one registry per coordinator.

Counters and histograms are fed by the HTTP layer and the replication path;
per-replica gauges are read from the live state at scrape time by a collector,
so they can never go stale or drift from what ``/status`` reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _StateCollector(Collector):
    """Reads the coordinator (anything with ``replicator``, ``failover``, ``rebuilds`` and
    ``replica_metrics()``) at scrape time."""

    def __init__(self, coord: Any) -> None:
        self.coord = coord

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c = self.coord
        r = c.replicator
        g = GaugeMetricFamily("coordinator_epoch", "Current epoch (bumped by start-up and every failover)")
        g.add_metric([], r.epoch)
        yield g
        g = GaugeMetricFamily("coordinator_commit_timestamp", "Highest committed timestamp")
        g.add_metric([], r.commit_ts)
        yield g
        g = GaugeMetricFamily("coordinator_inflight_writes", "Writes accepted and not yet answered")
        g.add_metric([], r.inflight)
        yield g
        g = GaugeMetricFamily("coordinator_quorum_mode", "Quorum mode in use (1 for the active one)", labels=["mode"])
        for mode in ("cabinet", "majority", "all"):
            g.add_metric([mode], 1 if r.rule.mode == mode else 0)
        yield g
        g = GaugeMetricFamily("coordinator_failovers", "Failovers and switchovers completed")
        g.add_metric([], c.failover.failovers)
        yield g
        g = GaugeMetricFamily("coordinator_rebuilds", "Replica rebuilds completed")
        g.add_metric([], c.rebuilds)
        yield g
        front = getattr(c, "mysql", None)
        if front is not None:
            stats = front.stats()
            g = GaugeMetricFamily("coordinator_mysql_connections", "Open MySQL front-end connections")
            g.add_metric([], stats["connections"])
            yield g
            ctr = CounterMetricFamily("coordinator_mysql_events", "MySQL front-end counts by kind "
                                      "(connections, commands, reads, writes, ddl, local, errors, auth_failures, "
                                      "refused_connections)", labels=["kind"])
            for k, v in front.counters.items():
                ctr.add_metric([k], v)
            yield ctr
        fams = {
            "lag_entries": GaugeMetricFamily("coordinator_replica_lag_entries", "Log entries not yet applied",
                                             labels=["replica"]),
            "lag_ms": GaugeMetricFamily("coordinator_replica_lag_ms", "Age of the oldest unapplied entry",
                                        labels=["replica"]),
            "latency": GaugeMetricFamily("coordinator_replica_latency_ms", "Smoothed apply round trip",
                                         labels=["replica"]),
            "poll": GaugeMetricFamily("coordinator_replica_poll_latency_ms", "Smoothed health-poll round trip",
                                      labels=["replica"]),
            "healthy": GaugeMetricFamily("coordinator_replica_healthy", "1 when the replica counts for quorum",
                                         labels=["replica"]),
            "weight": GaugeMetricFamily("coordinator_replica_weight", "Current Cabinet weight", labels=["replica"]),
            "leader": GaugeMetricFamily("coordinator_replica_is_leader", "1 for the leader", labels=["replica"]),
            "applied": GaugeMetricFamily("coordinator_replica_applied_timestamp", "Applied timestamp",
                                         labels=["replica"]),
        }
        for m in c.replica_metrics():
            rid = [m["replica_id"]]
            fams["lag_entries"].add_metric(rid, m["replication_lag"])
            fams["lag_ms"].add_metric(rid, m["lag_ms"])
            ack = m["ack_latency_ms"]
            fams["latency"].add_metric(rid, ack if ack is not None else float("nan"))
            fams["poll"].add_metric(rid, m["latency_ms"])
            fams["healthy"].add_metric(rid, 1 if m["is_healthy"] else 0)
            fams["weight"].add_metric(rid, m["weight"])
            fams["leader"].add_metric(rid, 1 if m["is_master"] else 0)
            fams["applied"].add_metric(rid, m["applied_timestamp"])
        yield from fams.values()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("coordinator_http_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.write_latency = Histogram("coordinator_write_latency_seconds", "Write latency (acknowledged writes)",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.read_latency = Histogram("coordinator_read_latency_seconds", "Read latency",
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.commits = Counter("coordinator_writes_committed", "Writes acknowledged after quorum commit",
                               registry=self.registry)
        self._counters: dict[tuple[str, int], object] = {}

    def attach(self, coord: Any) -> None:
        self.registry.register(_StateCollector(coord))

    def request(self, endpoint: str, status: int) -> None:
        key = (endpoint, status)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self.requests.labels(endpoint, str(status))
        child.inc()  # type: ignore[attr-defined]

    def render(self) -> bytes:
        return generate_latest(self.registry)
