#!/usr/bin/env python3
"""Command line for the local MariaDB cluster (``devcluster.cluster``, dev tooling).

Why a separate thin script: people (and the stress-testing guide) drive the cluster by hand —
``up``, ``status``, ``kill replica-2``, ``delay replica-1 100`` — while tests and the coordinator use
the same Python API, so behaviour is identical either way. All logic lives in the API.

    python scripts/cluster.py up [--nodes N] [--base-port P] [--dir D]
    python scripts/cluster.py down [--wipe]
    python scripts/cluster.py status [--json]
    python scripts/cluster.py stop|start|kill|pause|resume NAME
    python scripts/cluster.py delay NAME MS | partition NAME | heal NAME | heal --all
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # devcluster is not installed: import it from the checkout
    sys.path.insert(0, str(REPO_ROOT))

from devcluster.cluster import (  # noqa: E402
    ClusterError,
    LocalCluster,
    NodeStatus,
)

DEFAULT_DIR = REPO_ROOT / "cluster"
NODE_ACTIONS = ("stop", "start", "kill", "pause", "resume", "partition")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", default=argparse.SUPPRESS, help=f"cluster directory (default {DEFAULT_DIR})")
    parser = argparse.ArgumentParser(prog="cluster.py", description="Local MariaDB cluster with fault injection.")
    parser.add_argument("--dir", default=str(DEFAULT_DIR), help=f"cluster directory (default {DEFAULT_DIR})")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", parents=[common], help="create/start the cluster (idempotent)")
    up.add_argument("--nodes", type=int, default=4)
    up.add_argument("--base-port", type=int, default=3306)
    up.add_argument("--private-offset", type=int, default=10000,
                    help="mariadbd listens on public port + this offset (default 10000)")
    up.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="extra mariadbd argument for every node (repeatable), e.g. --server-arg=--log-bin")

    down = sub.add_parser("down", parents=[common], help="stop everything")
    down.add_argument("--wipe", action="store_true", help="also delete the cluster directory")

    status = sub.add_parser("status", parents=[common], help="show nodes, processes and faults")
    status.add_argument("--json", action="store_true")

    for action in NODE_ACTIONS:
        p = sub.add_parser(action, parents=[common], help=f"{action} one node")
        p.add_argument("name", help="replica-N or mysql-replica-N")

    delay = sub.add_parser("delay", parents=[common], help="add MS to every round trip of a node")
    delay.add_argument("name")
    delay.add_argument("ms", type=int)

    heal = sub.add_parser("heal", parents=[common], help="clear network faults")
    heal.add_argument("name", nargs="?")
    heal.add_argument("--all", action="store_true")
    return parser


def format_table(rows: list[NodeStatus]) -> str:
    header = ["NAME", "INSTANCE", "PUBLIC", "PRIVATE", "MARIADBD", "PROXY", "STATE", "FAULTS"]
    lines = [header]
    for r in rows:
        faults = []
        if r.delay_ms:
            faults.append(f"delay {r.delay_ms}ms")
        if r.partitioned:
            faults.append("partitioned")
        lines.append([
            r.name, r.instance, str(r.public_port), str(r.private_port),
            str(r.mariadbd_pid or "-"), str(r.proxy_pid) if r.proxy_alive else "dead",
            r.state, ", ".join(faults) or "-",
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if args.command == "up":
        cluster = LocalCluster(directory, nodes=args.nodes, base_port=args.base_port,
                               server_args=args.server_arg, private_offset=args.private_offset)
        cluster.up(progress=lambda msg: print(msg, flush=True))
        print(format_table(cluster.status()))
        return 0
    if args.command == "down":
        LocalCluster(directory).down(wipe=args.wipe)
        print("cluster stopped" + (" and wiped" if args.wipe else ""))
        return 0
    cluster = LocalCluster.open(directory)
    if args.command == "status":
        rows = cluster.status()
        print(json.dumps([r.to_dict() for r in rows], indent=2) if args.json else format_table(rows))
        return 0
    if args.command == "heal":
        if not args.all and not args.name:
            raise ClusterError("heal needs a NAME or --all")
        cluster.heal(None if args.all else args.name)
        print("healed " + ("all nodes" if args.all else cluster.resolve(args.name)))
        return 0
    name = cluster.resolve(args.name)
    if args.command == "delay":
        cluster.delay(name, args.ms)
        print(f"{name}: delay {args.ms} ms")
        return 0
    getattr(cluster, args.command)(name)
    print(f"{name}: {args.command} done")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
