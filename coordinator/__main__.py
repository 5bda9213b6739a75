"""``python -m coordinator --config config.toml``: run until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

import structlog

from .config import ConfigError, load
from .gcpolicy import GcPolicy
from .http.server import serve
from .service import Coordinator


def setup_logging(level: str, fmt: str) -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


async def run(config_path: str) -> int:
    cfg = load(config_path)
    setup_logging(cfg.coordinator.log_level, cfg.coordinator.log_format)
    log = structlog.get_logger("coordinator")
    coord = Coordinator(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        runners = await serve(coord)
    except OSError as exc:
        log.error("cannot_listen", error=str(exc))
        return 2
    try:
        await coord.start()
    except OSError as exc:
        log.error("cannot_listen", error=str(exc), port=cfg.ports.mysql)
        for r in reversed(runners):
            await r.cleanup()
        return 2
    p = cfg.ports
    log.info("listening", host=cfg.coordinator.host, gateway=p.gateway, timestamp=[p.timestamp_odd, p.timestamp_even],
             metrics=p.metrics, cabinet=p.cabinet, seer=p.seer, mysql=p.mysql, replicas=[r.name for r in cfg.replicas])
    await stop.wait()
    log.info("shutting_down")
    await coord.stop()
    for r in reversed(runners):
        await r.cleanup()
    log.info("stopped")
    return 0


def _open_files(wanted: int) -> None:
    """Raise the soft limit on open files toward the hard one: every MySQL client is a socket, and
    a limit of 1,024 (a common default) silently stops accepts before mysql_front.max_connections."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main() -> None:
    _open_files(65536)
    GcPolicy().install()
    parser = argparse.ArgumentParser(prog="python -m coordinator", description=__doc__)
    parser.add_argument("--config", default="config.toml", help="path to config.toml")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        sys.exit(asyncio.run(run(args.config)))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
