"""What the core needs to know of the configuration, as one frozen value.

The shell builds it from ``coordinator.config.Config`` (``CoreConfig.of``); the
simulation and the transcript tests build it directly. Times are in seconds of
the core's monotonic clock, which the caller supplies with every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReplicaInfo:
    id: str  # "replica-2"
    name: str  # instance name, "mysql-replica-2"


@dataclass(frozen=True)
class CoreConfig:
    replicas: tuple[ReplicaInfo, ...]
    initial_leader: str
    failure_threshold: int = 1
    mode: str = "cabinet"
    write_timeout_s: float = 5.0
    max_batch_entries: int = 64
    pipeline_commit: bool = True  # a batch's COMMIT and the next batch's execution share a round trip
    max_inflight_entries: int = 20_000
    memory_log_entries: int = 200_000
    persisted_log_margin: int = 100_000
    trim_interval_s: float = 5.0
    timestamp_window: int = 10_000
    retry_interval_s: float = 0.2
    request_id_memory: int = 100_000
    poll_interval_s: float = 0.2
    leader_probe_timeout_s: float = 0.3  # the quick "is the leader really gone?" probe
    recovery_retry_s: float = 1.0
    failover_retry_s: float = 0.5
    seer_crash_penalty_ms: float = 50.0
    seer_min_uptime_s: float = 5.0
    missed_polls_unhealthy: int = 3
    proactive: bool = False
    proactive_margin: float = 0.3
    proactive_sustain_s: float = 10.0
    proactive_min_term_s: float = 60.0
    ddl_lock_wait_s: float = 2.0  # a DDL waiting on an open transaction's lock gives up after this (1205)

    @property
    def n(self) -> int:
        return len(self.replicas)

    def name(self, rid: str) -> str:
        for r in self.replicas:
            if r.id == rid:
                return r.name
        return rid

    @classmethod
    def of(cls, cfg: Any) -> "CoreConfig":
        """From the application's ``Config`` (duck-typed: the core never imports it)."""
        rep, mon, seer = cfg.replication, cfg.monitor, cfg.seer
        return cls(
            replicas=tuple(ReplicaInfo(r.id, r.name) for r in cfg.replicas),
            initial_leader=cfg.initial_leader.id,
            failure_threshold=cfg.quorum.failure_threshold,
            mode=cfg.quorum.mode,
            write_timeout_s=rep.write_timeout_s,
            max_batch_entries=rep.max_batch_entries,
            pipeline_commit=rep.pipeline_commit,
            max_inflight_entries=rep.max_inflight_entries,
            memory_log_entries=rep.memory_log_entries,
            persisted_log_margin=rep.persisted_log_margin,
            trim_interval_s=rep.trim_interval_s,
            timestamp_window=rep.timestamp_window,
            retry_interval_s=rep.retry_interval_s,
            request_id_memory=rep.request_id_memory,
            poll_interval_s=mon.poll_interval_ms / 1000,
            missed_polls_unhealthy=mon.missed_polls_unhealthy,
            seer_crash_penalty_ms=seer.crash_penalty_ms,
            seer_min_uptime_s=seer.min_uptime_s,
            proactive=seer.proactive,
            proactive_margin=seer.margin,
            proactive_sustain_s=seer.sustain_s,
            proactive_min_term_s=seer.min_term_s,
            ddl_lock_wait_s=float(cfg.transactions.ddl_lock_wait_s),
        )
