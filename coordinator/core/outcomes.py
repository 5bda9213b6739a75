"""What a client request finally gets: a ``WriteOutcome`` or an ``ApiError``.

``ApiError`` carries an HTTP status and a machine code; the HTTP front end renders it
as ``{"success": false, "error", "detail", "code"}``, the MySQL front end maps the code
to an errno and SQLSTATE. It lives in the core because the core decides most of them
("fenced", "write_timeout" with an unknown outcome, "overloaded", …).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    """An error answer: ``{"success": false, "error", "detail", "code"}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"success": False, "error": self.message, "detail": self.message, "code": self.code, **self.extra}

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class WriteOutcome:
    ts: int
    # per statement: (rows affected, insert id, …); the shell may add rows matched, warnings
    # and returned rows after those two (the core reads only the first two)
    results: list[tuple[Any, ...]]
    executed_on: str
    quorum: dict[str, Any]
    followers_applied: int
    followers: int
    replayed: bool = False  # answered from a previous attempt with the same request_id


def timeout_error(timeout_s: float) -> ApiError:
    return ApiError(504, "write_timeout", f"the write was not acknowledged by a quorum within {timeout_s:g}s; its "
                    "outcome is unknown (it may still commit)")


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


def statement_error(errno: int, message: str, **extra: Any) -> ApiError:
    """A server's refusal of a client statement, as the client sees it (``errno`` kept)."""
    status, code = _STATUS_BY_ERRNO.get(errno, (400, "sql_error"))
    return ApiError(status, code, f"MySQL error {errno}: {message}", errno=errno, **extra)
