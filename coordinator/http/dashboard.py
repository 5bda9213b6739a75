"""The live dashboard: ``GET /`` serves the page, ``GET /dashboard/stream`` pushes the cluster.

One sampler per gateway app takes ``coord.snapshot()`` every ``SAMPLE_S`` and keeps a
few minutes of chart points (write throughput from the change of ``commit_timestamp``,
write latency p50/p99 when the core records it, per-replica lag), so a browser that
connects gets the recent history at once and every browser sees the same numbers.

The stream is Server-Sent Events. Messages, in order, for each connection:

- ``event: hello``    ``{"server_time", "sample_s", "history": [point…], "controls": {…}}``
- ``event: event``    one per recent event of ``coord.events`` (oldest first), then each new one
- ``event: snapshot`` ``coord.snapshot()`` plus ``"chart": point``, at once and every ``SAMPLE_S``
- ``: ping`` comment lines as a heartbeat when nothing else was sent for a while.

A point is ``{"t", "commit_timestamp", "writes_per_s", "latency_ms_p50", "latency_ms_p99",
"latency_samples", "latency_source": "exact"|"histogram"|"none", "lag": {replica_id: entries},
"lag_ms": {replica_id: ms|None}}``.

A stream ends when the client goes away (the next write fails) or the app shuts down;
its event subscription is always released.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import orjson
import structlog
from aiohttp import web

from ..service import Coordinator

log = structlog.get_logger("coordinator.dashboard")

SAMPLE_S = 0.5
HISTORY_S = 300.0
HEARTBEAT_S = 10.0
FAULTS_S = 1.0
RECENT_EVENTS = 200

_STATIC = resources.files("coordinator") / "static"
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_NAME = re.compile(r"^[A-Za-z0-9_-]+\.[a-z0-9]+$")

# Endpoints the page's controls call, as (method, example path): the page disables a
# control whose endpoint this gateway does not route, and says why.
_CONTROL_ENDPOINTS = {
    "replica": ("POST", "/admin/replicas/replica-x/stop"),
    "fault": ("POST", "/admin/replicas/replica-x/fault"),
    "failover": ("POST", "/admin/trigger-failover"),
    "stop_master": ("POST", "/admin/stop-master"),
    "start_master": ("POST", "/admin/start-master"),
    "mode": ("POST", "/admin/replication-mode"),
    "reset": ("POST", "/admin/reset"),
    "transactions": ("GET", "/admin/transactions"),  # the open-transactions panel polls it
}
_BACKEND_CONTROLS = ("replica", "fault", "stop_master", "start_master")


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    k = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def _hist_quantile(cumulative: list[tuple[float, float]], q: float) -> float:
    """Quantile in ms from cumulative (upper bound seconds, count) buckets, linear inside a
    bucket like PromQL's histogram_quantile; the +Inf bucket answers its lower bound."""
    total = cumulative[-1][1]
    rank = q * total
    lo_le, lo_c = 0.0, 0.0
    for le, c in cumulative:
        if c >= rank:
            if le == float("inf"):
                return lo_le * 1000
            width = c - lo_c
            frac = (rank - lo_c) / width if width > 0 else 1.0
            return (lo_le + (le - lo_le) * frac) * 1000
        lo_le, lo_c = le, c
    return lo_le * 1000


class Sampler:
    """Chart points over the last ``HISTORY_S``, taken every ``SAMPLE_S`` from the coordinator."""

    def __init__(self, coord: Any) -> None:
        self.coord = coord
        self.history: deque[dict[str, Any]] = deque(maxlen=int(HISTORY_S / SAMPLE_S) + 1)
        self.latest: dict[str, Any] | None = None
        self.closing = asyncio.Event()
        self._prev: tuple[float, int] | None = None
        self.clients = 0
        self.faults: dict[str, dict[str, Any]] = {}  # injected faults per replica, from the control backend
        self._lat_seen = 0.0  # time of the newest latency sample already counted
        self._buckets: list[tuple[float, float]] | None = None  # previous cumulative histogram counts

    def _latency(self, now: float) -> tuple[float | None, float | None, int, str]:
        """(p50 ms, p99 ms, writes, source) of the writes acknowledged since the previous point.

        Exact when the core keeps ``coord.write_latency_ms`` — recent ``(time.time() of the ack,
        latency ms)`` pairs; else estimated from the Prometheus histogram
        ``coord.metrics.write_latency`` (linear inside a bucket); else nothing (the page then
        charts the latencies of its own writes)."""
        samples = getattr(self.coord, "write_latency_ms", None)
        if samples is not None:
            fresh = []
            try:  # newest first, stopping at what the previous point counted (no full scans)
                for t, ms in reversed(samples):
                    if t <= self._lat_seen:
                        break
                    fresh.append((float(t), float(ms)))
            except (TypeError, ValueError):
                fresh = []
            if fresh:
                self._lat_seen = max(t for t, _ in fresh)
            lat = sorted(ms for _, ms in fresh)
            if lat:
                return _percentile(lat, 0.50), _percentile(lat, 0.99), len(lat), "exact"
            return None, None, 0, "exact"
        hist = getattr(getattr(self.coord, "metrics", None), "write_latency", None)
        if hist is None:
            return None, None, 0, "none"
        try:
            buckets = sorted((float(smp.labels["le"]), smp.value) for m in hist.collect() for smp in m.samples
                             if smp.name.endswith("_bucket"))
        except Exception:  # noqa: BLE001 - an unexpected metrics shape: no latency line, not a broken page
            return None, None, 0, "none"
        prev, self._buckets = self._buckets, buckets
        if prev is None or len(prev) != len(buckets):
            return None, None, 0, "histogram"
        counts = [(le, max(0.0, c - pc)) for (le, c), (_, pc) in zip(buckets, prev)]
        total = counts[-1][1] if counts else 0.0
        if total <= 0:
            return None, None, 0, "histogram"
        return _hist_quantile(counts, 0.50), _hist_quantile(counts, 0.99), int(total), "histogram"

    def take(self) -> dict[str, Any]:
        snap = self.coord.snapshot()
        now = float(snap.get("time") or time.time())
        commit = int(snap.get("status", {}).get("commit_timestamp") or 0)
        rate = 0.0
        if self._prev is not None:
            t0, c0 = self._prev
            if now > t0 and commit >= c0:  # a reset restarts timestamps: no negative rates
                rate = (commit - c0) / (now - t0)
        self._prev = (now, commit)
        p50, p99, n, source = self._latency(now)
        replicas = snap.get("replicas") or []
        for r in replicas:
            if self.faults.get(r.get("replica_id")):
                r.setdefault("faults", self.faults[r["replica_id"]])
        point = {
            "t": now,
            "commit_timestamp": commit,
            "writes_per_s": round(rate, 2),
            "latency_ms_p50": round(p50, 3) if p50 is not None else None,
            "latency_ms_p99": round(p99, 3) if p99 is not None else None,
            "latency_samples": n,
            "latency_source": source,
            "lag": {r["replica_id"]: r.get("replication_lag") for r in replicas},
            "lag_ms": {r["replica_id"]: r.get("lag_ms") for r in replicas},
        }
        self.history.append(point)
        snap["chart"] = point
        self.latest = snap
        return dict(snap)

    async def run(self) -> None:
        while not self.closing.is_set():
            try:
                self.take()
            except Exception:  # a view bug must not stop the dashboard; log it once per tick
                log.exception("dashboard_sample_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), SAMPLE_S)


    async def watch_faults(self) -> None:
        """Injected faults (delay, partition) are not in the snapshot: ask the control backend,
        every ``FAULTS_S`` and only while someone watches (it reads the cluster's state files)."""
        control = getattr(self.coord, "control", None)
        if control is None or not hasattr(control, "faults"):
            return
        while not self.closing.is_set():
            if self.clients and getattr(control, "available", True):
                try:
                    self.faults = await asyncio.wait_for(control.faults(), 5)
                except Exception as exc:  # noqa: BLE001 - best effort; the page simply shows no fault badges
                    log.debug("dashboard_faults_failed", error=str(exc))
                    self.faults = {}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), FAULTS_S)


SAMPLER = web.AppKey("dashboard_sampler", Sampler)


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS) + b"\n\n"


def _routed(app: web.Application) -> list[tuple[str, re.Pattern[str]]]:
    out = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        pattern = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(canonical)) + "$"
        out.append((route.method, re.compile(pattern)))
    return out


def controls(request: web.Request, coord: Any) -> dict[str, Any]:
    """Which controls the page may offer here, and if not, why (shown next to the control)."""
    cfg = coord.cfg
    routes = _routed(request.app)
    backend = getattr(getattr(cfg, "control", None), "backend", "local")
    ctl = getattr(coord, "control", None)
    ctl_reason = "" if ctl is None or getattr(ctl, "available", True) else str(getattr(ctl, "reason", ""))
    admin_host = cfg.coordinator.admin_host
    allowed = {admin_host} | ({"127.0.0.1", "::1"} if admin_host in ("127.0.0.1", "localhost") else set())
    remote_ok = "0.0.0.0" in allowed or request.remote in allowed
    out: dict[str, Any] = {}
    for name, (method, path) in _CONTROL_ENDPOINTS.items():
        reason = ""
        if not any(m in (method, "*") and p.match(path) for m, p in routes):
            reason = f"this coordinator has no {method} {path.replace('replica-x', '{id}')} yet"
        elif not remote_ok:
            reason = f"admin endpoints answer only on {admin_host}; open the dashboard from there"
        elif name in _BACKEND_CONTROLS and (ctl_reason or backend == "none"):
            reason = ctl_reason or "control backend is 'none' (set control.backend in the config)"
        out[name] = {"enabled": not reason, "reason": reason}
    return {"controls": out, "backend": backend, "token_required": bool(cfg.coordinator.admin_token)}


async def stream(request: web.Request) -> web.StreamResponse:
    coord = request.app[_COORD_KEY]
    sampler = request.app[SAMPLER]
    queue = coord.events.subscribe()
    sampler.clients += 1
    try:
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache, no-store",
            "X-Accel-Buffering": "no",
        })
        await resp.prepare(request)
        if sampler.latest is None:
            sampler.take()
        snap = {**coord.snapshot(), "chart": sampler.history[-1]}  # fresh state, latest chart point
        hello = {"server_time": time.time(), "sample_s": SAMPLE_S, "history": list(sampler.history),
                 **controls(request, coord)}
        out = [b"retry: 2000\n\n", _sse("hello", hello)]
        out += [_sse("event", e) for e in coord.events.recent(RECENT_EVENTS)]
        out.append(_sse("snapshot", snap))
        await resp.write(b"".join(out))
        sent = last_write = time.monotonic()
        last_snap = sampler.latest
        while not sampler.closing.is_set():
            try:
                event = await asyncio.wait_for(queue.get(), SAMPLE_S / 5)
            except TimeoutError:
                event = None
            chunks = [] if event is None else [_sse("event", event)]
            while not queue.empty():
                chunks.append(_sse("event", queue.get_nowait()))
            now = time.monotonic()
            if sampler.latest is not last_snap and sampler.latest is not None and now - sent >= SAMPLE_S * 0.8:
                last_snap = sampler.latest
                chunks.append(_sse("snapshot", last_snap))
                sent = now
            if not chunks and now - last_write >= HEARTBEAT_S:
                chunks.append(b": ping\n\n")
            if chunks:
                await resp.write(b"".join(chunks))  # raises once the client is gone
                last_write = now
        return resp
    finally:
        sampler.clients -= 1
        coord.events.unsubscribe(queue)


def _static(request: web.Request, name: str) -> web.Response:
    if not _NAME.match(name):
        raise web.HTTPNotFound()
    file = _STATIC / name
    suffix = "." + name.rsplit(".", 1)[1]
    if suffix not in _TYPES or not file.is_file():
        raise web.HTTPNotFound()
    body = file.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    # no-cache = revalidate every time (cheap 304): a restarted coordinator may bring a new page
    headers = {"Cache-Control": "no-cache", "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    ctype = _TYPES[suffix]
    return web.Response(body=body, content_type=ctype, charset="utf-8" if ctype.startswith("text") else None,
                        headers=headers)


async def index(request: web.Request) -> web.Response:
    return _static(request, "index.html")


async def static(request: web.Request) -> web.Response:
    return _static(request, request.match_info["name"])


_COORD_KEY = web.AppKey("dashboard_coordinator", Coordinator)


def setup(app: web.Application, coord: Coordinator) -> None:
    sampler = Sampler(coord)
    app[SAMPLER] = sampler
    app[_COORD_KEY] = coord

    async def run_sampler(_app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(sampler.run(), name="dashboard-sampler"),
                 asyncio.create_task(sampler.watch_faults(), name="dashboard-faults")]
        yield
        sampler.closing.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def end_streams(_app: web.Application) -> None:
        sampler.closing.set()  # open streams return within SAMPLE_S/5, so shutdown never waits on them

    app.cleanup_ctx.append(run_sampler)
    app.on_shutdown.append(end_streams)
    app.router.add_get("/", index)
    app.router.add_get("/dashboard/stream", stream)
    app.router.add_get("/static/{name}", static)
