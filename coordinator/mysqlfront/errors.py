"""Every error a MySQL client can get from the front end, as (errno, SQLSTATE, message).

- The leader's own SQL errors keep its errno (duplicate key 1062/23000, syntax 1064/42000, …)
  with the SQLSTATE MariaDB uses for it.
- The coordinator's refusals (statements it cannot replicate, the internal schema, session
  statements it does not support) are the HTTP API's messages with a fitting errno:
  1235/42000 "not supported", 1142/42000 for the internal schema, 1064/42000 for parse errors.
- A write whose outcome is unknown (no quorum within the write timeout) is 1180/HY000 "the
  outcome is unknown" — never an OK; a write refused before it ran (fenced, not ready,
  overloaded) is 1290/HY000 and definitely did not happen.
"""

from __future__ import annotations

from ..core.outcomes import ApiError
from ..core.sqlscan import SqlRejected
from ..mysqlproto import constants as c


class Failed(Exception):
    """A statement failed: answer ERR (errno, SQLSTATE, message) and stop the query."""

    def __init__(self, errno: int, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.errno, self.sqlstate, self.message = errno, sqlstate, message


class Answered(Exception):
    """The server's ERR for a statement already went to the client: stop the query there
    (a multi-statement query ends at its first error, as MySQL's does)."""


ER_TABLEACCESS_DENIED = 1142
ER_NOT_SUPPORTED_YET = 1235
ER_ERROR_DURING_COMMIT = 1180

# SQLSTATEs of server errors clients commonly branch on (MariaDB's sql_state.h).
SQLSTATE = {
    **c.SQLSTATE_BY_ERRNO,
    1022: "23000", 1048: "23000", 1050: "42S01", 1051: "42S02", 1052: "23000", 1054: "42S22", 1060: "42S21",
    1061: "42000", 1062: "23000", 1064: "42000", 1068: "42000", 1091: "42000", 1136: "21S01", 1142: "42000",
    1146: "42S02", 1169: "23000", 1205: "HY000", 1213: "40001", 1216: "23000", 1217: "23000", 1235: "42000",
    1264: "22003", 1292: "22007", 1364: "HY000", 1366: "22007", 1406: "22001", 1451: "23000", 1452: "23000",
    1586: "23000", 1690: "22003", 3819: "HY000", 4025: "23000",
}

# ApiError codes of refusals (never executed) -> errno
_BY_CODE = {
    "internal_schema": ER_TABLEACCESS_DENIED,
    "parse_error": c.ER_PARSE_ERROR,
    "empty_query": c.ER_EMPTY_QUERY,
    "multiple_statements": c.ER_PARSE_ERROR,
    "bad_params": c.ER_WRONG_ARGUMENTS,
    "write_timeout": ER_ERROR_DURING_COMMIT,
    "fenced": c.ER_OPTION_PREVENTS_STATEMENT,
    "not_ready": c.ER_OPTION_PREVENTS_STATEMENT,
    "overloaded": c.ER_OPTION_PREVENTS_STATEMENT,
    "shutting_down": c.ER_SERVER_SHUTDOWN,
    "replica_unavailable": c.ER_OPTION_PREVENTS_STATEMENT,
    "statement_timeout": c.ER_QUERY_INTERRUPTED,
    "deadlock": c.ER_LOCK_DEADLOCK,
}


def sqlstate(errno: int) -> str:
    return SQLSTATE.get(errno, "HY000")


def of_api_error(err: ApiError) -> tuple[int, str, str]:
    errno = err.extra.get("errno")
    if isinstance(errno, int) and 0 < errno < 2000:
        return errno, sqlstate(errno), err.message.removeprefix(f"MySQL error {errno}: ")
    code = _BY_CODE.get(err.code, ER_NOT_SUPPORTED_YET if err.status < 500 else c.ER_UNKNOWN_ERROR)
    return code, sqlstate(code), err.message


def of_rejection(exc: SqlRejected) -> tuple[int, str, str]:
    code = _BY_CODE.get(exc.code, ER_NOT_SUPPORTED_YET)
    return code, sqlstate(code), exc.message


def not_supported(message: str) -> tuple[int, str, str]:
    return ER_NOT_SUPPORTED_YET, "42000", message
