"""The fault proxy's control protocol and persisted fault state, shared by both ends.

Why one module: the cluster (the client, :mod:`devcluster.node`) and the proxy (the server,
:mod:`devcluster.faultproxy`) must agree on the wire format, the command names, the fault keys
and their defaults. With both ends importing them from here they cannot drift apart.

Wire format: one JSON object per line over a unix stream socket; several requests may share one
connection. A request is ``{"cmd": NAME, ...}`` with NAME one of :data:`COMMANDS` (``delay``
carries ``"ms"``). Each request gets exactly one reply line, sent only after the command took
effect and the new fault state was saved, so a caller that got its reply can rely on the fault:
``{"ok": true, "delay_ms": ..., "partitioned": ..., "listening": ..., "connections": N, "pid": P}``
or ``{"ok": false, "error": "..."}``.

The fault state is also persisted as JSON (:class:`Faults`), written atomically: status tools
read it without talking to the proxy, and a restarted proxy resumes from it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COMMANDS = ("ping", "status", "delay", "partition", "heal", "open", "close")
# The commands that change the fault state: the proxy saves it before acknowledging them.
MUTATING = frozenset({"delay", "partition", "heal", "open", "close"})


@dataclass
class Faults:
    """The persisted fault state of one proxy; the defaults are "no fault, listening"."""

    delay_ms: int = 0
    partitioned: bool = False
    listening: bool = True

    @classmethod
    def load(cls, path: Path) -> "Faults":
        """The state in path, or the defaults when it is missing or unreadable."""
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        return cls(
            delay_ms=int(raw.get("delay_ms", 0)),
            partitioned=bool(raw.get("partitioned", False)),
            listening=bool(raw.get("listening", True)),
        )

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that readers never see a half-written file (write a temp file, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- messages


def request(cmd: str, **fields: Any) -> dict[str, Any]:
    """A request message; unknown command names are a programming error (ValueError)."""
    if cmd not in COMMANDS:
        raise ValueError(f"unknown fault proxy command {cmd!r}; commands are {', '.join(COMMANDS)}")
    return {"cmd": cmd, **fields}


def ok_reply(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error_reply(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def encode(msg: dict[str, Any]) -> bytes:
    """One message as a JSON line."""
    return json.dumps(msg).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One JSON line as a message; ValueError unless it is a JSON object."""
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError(f"expected a JSON object, got {type(msg).__name__}")
    return msg


# --------------------------------------------------------------------------- client


class BadReply(ValueError):
    """The proxy answered something that is not one JSON object line."""

    def __init__(self, raw: bytes) -> None:
        super().__init__(f"bad reply from fault proxy: {raw!r}")
        self.raw = raw


def send(control_path: str, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send one request over the proxy's control socket and return its reply, ``ok`` or not.

    Returns once the proxy answered, i.e. once the command took effect. Raises OSError when the
    channel fails (no proxy, refused, timed out) and :class:`BadReply` for an unparsable answer.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(control_path)
        sock.sendall(encode(msg))
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    try:
        return decode(buf)
    except ValueError as exc:
        raise BadReply(buf) from exc
