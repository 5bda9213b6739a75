"""Error classes, translated once at the edges.

Three roots, as asyncpg does it: a replica fault (retryable, the server or the
network failed), a statement error (the server refused the SQL: the client's
problem, never retried), and ApiError (what the HTTP layer answers). Everything
else is a bug and is answered as a 500 JSON error, never a bare page.
"""

from __future__ import annotations

from typing import Any

from .core.messages import Cause
from .core.outcomes import ApiError, statement_error

__all__ = ["ApiError", "Cause", "Fenced", "ReplicaDown", "StatementError", "statement_api_error"]


class ReplicaDown(Exception):
    """The replica could not be reached or a round trip failed mid-way.

    The connection is in doubt and has been dropped; whether the last round trip
    took effect must be learned by reading the replica's state afterwards. ``cause``
    says how it failed (refused: the server is gone; timeout: hung or slow; I/O)."""

    def __init__(self, message: str, cause: Cause = Cause.IO) -> None:
        super().__init__(message)
        self.cause = cause


class StatementError(Exception):
    """The server rejected a statement; the connection is still usable."""

    def __init__(self, errno: int, message: str, position: int,
                 results: list[tuple[Any, ...]] | None = None) -> None:
        super().__init__(f"({errno}) {message}")
        self.errno = errno
        self.message = message
        self.position = position  # index of the failing result in a multi-statement round trip
        self.results = results or []  # results of the statements before it


class Fenced(Exception):
    """A newer coordinator bumped the epoch on this replica: we must stop writing."""


def statement_api_error(exc: StatementError, **extra: object) -> ApiError:
    return statement_error(exc.errno, exc.message, **extra)
