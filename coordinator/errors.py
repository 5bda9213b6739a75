"""Error classes, translated once at the edges.

Three roots, as asyncpg does it: a replica fault (retryable, the server or the
network failed), a statement error (the server refused the SQL: the client's
problem, never retried), and ApiError (what the HTTP layer answers). Everything
else is a bug and is answered as a 500 JSON error, never a bare page.
"""

from __future__ import annotations


class ApiError(Exception):
    """An HTTP error answer: ``{"success": false, "error", "detail", "code"}``."""

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, object]:
        return {"success": False, "error": self.message, "detail": self.message, "code": self.code, **self.extra}


class ReplicaDown(Exception):
    """The replica could not be reached or a round trip failed mid-way.

    The connection is in doubt and has been dropped; whether the last round trip
    took effect must be learned by reading the replica's state afterwards."""


class StatementError(Exception):
    """The server rejected a statement; the connection is still usable."""

    def __init__(self, errno: int, message: str, position: int,
                 results: list[tuple[int, int]] | None = None) -> None:
        super().__init__(f"({errno}) {message}")
        self.errno = errno
        self.message = message
        self.position = position  # index of the failing result in a multi-statement round trip
        self.results = results or []  # results of the statements before it


class Fenced(Exception):
    """A newer coordinator bumped the epoch on this replica: we must stop writing."""


# MySQL errno -> (HTTP status, code) for statement errors returned to clients.
_STATUS_BY_ERRNO: dict[int, tuple[int, str]] = {
    1062: (409, "duplicate_key"),
    1586: (409, "duplicate_key"),
    1451: (409, "foreign_key"),
    1452: (409, "foreign_key"),
    1216: (409, "foreign_key"),
    1217: (409, "foreign_key"),
    4025: (409, "check_constraint"),
    3819: (409, "check_constraint"),
    1048: (400, "null_not_allowed"),
    1364: (400, "missing_value"),
    1146: (400, "no_such_table"),
    1054: (400, "no_such_column"),
    1064: (400, "syntax_error"),
    1050: (409, "table_exists"),
    1406: (400, "data_too_long"),
    1264: (400, "out_of_range"),
    1366: (400, "bad_value"),
    1969: (504, "statement_timeout"),
    3024: (504, "statement_timeout"),
}


def statement_api_error(exc: StatementError, **extra: object) -> ApiError:
    status, code = _STATUS_BY_ERRNO.get(exc.errno, (400, "sql_error"))
    return ApiError(status, code, f"MySQL error {exc.errno}: {exc.message}", errno=exc.errno, **extra)
