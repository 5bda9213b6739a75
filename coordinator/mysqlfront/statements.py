"""What a MySQL client's statement is: a session statement the front end answers itself, or
SQL for the replicated path (writes) or a replica (reads).

Session statements never reach a server: the front end keeps the session's state
(autocommit, database, read consistency, last insert id, warnings) and answers them.
A ``SET`` of a variable that changes what statements compute (``sql_mode``,
``time_zone``, …) is refused with a clear error: writes replay on every replica with the
servers' settings, so accepting it would diverge silently. Variables that change nothing
a statement computes (timeouts, the connection charset when it is UTF-8) are accepted.
Everything else goes through the same SQL rules as the HTTP API (``core.sqlrules``).

Read consistency per statement: a comment ``/*+ consistency=eventual */`` anywhere in a
read; per session: ``SET coordinator_consistency = 'session'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..core import sqlrules
from ..core.sqlscan import SqlRejected, split_statements, unwrap_executable_comments

CONSISTENCY = ("strong", "session", "eventual")
_HINT = re.compile(r"/\*\+\s*consistency\s*=\s*([A-Za-z]+)\s*\*/")
_WS = re.compile(r"\s+")
_VALUE = r"""\s*(?:=|:=|\s)\s*(?P<value>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`[^`]*`|[\w.+-]+)\s*"""
_SET = re.compile(r"SET\s+(?:(?:SESSION|LOCAL)\s+|@@(?:SESSION\.|LOCAL\.)?)?(?P<name>[A-Za-z_][\w]*)" + _VALUE + r"\Z",
                  re.I | re.S)
_SET_NAMES = re.compile(r"SET\s+(?:NAMES|CHARACTER\s+SET|CHARSET)\s+(?P<value>'[^']*'|\"[^\"]*\"|\w+)"
                        r"(?:\s+COLLATE\s+(?:'[^']*'|\"[^\"]*\"|\w+))?\s*\Z", re.I | re.S)
_SET_TX = re.compile(r"SET\s+(?:SESSION\s+)?TRANSACTION\s+(?P<rest>.*)\Z", re.I | re.S)
_USE = re.compile(r"USE\s+(?P<db>`[^`]+`|\w+)\s*\Z", re.I | re.S)
_UTF8 = {"UTF8", "UTF8MB3", "UTF8MB4"}
# Accepted as no-ops: they change nothing a statement computes.
_HARMLESS = {"WAIT_TIMEOUT", "INTERACTIVE_TIMEOUT", "NET_READ_TIMEOUT", "NET_WRITE_TIMEOUT", "NET_BUFFER_LENGTH",
             "SESSION_TRACK_SCHEMA", "SESSION_TRACK_STATE_CHANGE", "SESSION_TRACK_SYSTEM_VARIABLES",
             "SESSION_TRACK_TRANSACTION_INFO", "MAX_ALLOWED_PACKET", "PROFILING", "SQL_NOTES"}
_CHARSET_VARS = {"CHARACTER_SET_CLIENT", "CHARACTER_SET_CONNECTION", "CHARACTER_SET_RESULTS",
                 "COLLATION_CONNECTION"}
_TX_VARS = {"TRANSACTION_ISOLATION", "TX_ISOLATION"}


@dataclass(frozen=True)
class Local:
    """A statement the front end answers itself. ``what``: set_names, autocommit, consistency,
    noop, use, begin, commit, rollback, savepoint, rollback_to, release, version_comment,
    database, last_insert_id, warnings, databases."""

    what: str
    value: object = None
    read_only: bool = False


@dataclass(frozen=True)
class Sql:
    stmt: sqlrules.Statement
    consistency: str | None = None  # a per-statement hint, or None for the session's


class Refused(Exception):
    """A session statement the front end cannot honour (errno, message)."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno, self.message = errno, message


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"`":
        return v[1:-1]
    return v


def _flag(v: str) -> bool:
    u = _unquote(v).upper()
    if u in ("1", "ON", "TRUE"):
        return True
    if u in ("0", "OFF", "FALSE"):
        return False
    raise Refused(1231, f"Variable 'autocommit' can't be set to the value of '{_unquote(v)}'")


def _refuse_var(name: str) -> Refused:
    return Refused(1235, f"SET {name.lower()} is not supported through the coordinator: writes are replayed on "
                   "every replica with the servers' own settings, so a session value would make replicas "
                   "diverge; set it on the servers instead")


def _set(text: str) -> Local:
    m = _SET_NAMES.match(text)
    if m:
        cs = _unquote(m.group("value")).upper()
        if cs not in _UTF8:
            raise Refused(1115, f"Unknown or unsupported character set '{cs.lower()}': the coordinator speaks "
                          "utf8mb4 only")
        return Local("set_names", cs.lower())
    m = _SET_TX.match(text)
    if m:
        rest = _WS.sub(" ", m.group("rest").strip().upper())
        if rest in ("ISOLATION LEVEL REPEATABLE READ", "READ WRITE"):
            return Local("noop")
        raise Refused(1235, f"SET TRANSACTION {rest.lower()} is not supported: the coordinator runs every "
                      "transaction at REPEATABLE READ")
    m = _SET.match(text)
    if m is None:
        raise Refused(1235, "only SET of one session variable per statement is supported through the coordinator "
                      "(and user variables are not: they are not replicated)")
    name, value = m.group("name").upper(), m.group("value")
    if name == "AUTOCOMMIT":
        return Local("autocommit", _flag(value))
    if name == "COORDINATOR_CONSISTENCY":
        v = _unquote(value).lower()
        if v not in CONSISTENCY:
            raise Refused(1231, f"Variable 'coordinator_consistency' can't be set to the value of '{v}' "
                          f"(one of {', '.join(CONSISTENCY)})")
        return Local("consistency", v)
    if name in _HARMLESS:
        return Local("noop")
    if name in _CHARSET_VARS:
        cs = _unquote(value).upper().split("_")[0]
        if cs in _UTF8 or cs == "NULL" and name == "CHARACTER_SET_RESULTS":
            return Local("noop")
        raise Refused(1115, f"Unknown or unsupported character set '{cs.lower()}': the coordinator speaks "
                      "utf8mb4 only")
    if name in _TX_VARS and _unquote(value).upper().replace("_", "-") == "REPEATABLE-READ":
        return Local("noop")
    if name == "SQL_SELECT_LIMIT" and value.upper() == "DEFAULT":
        return Local("noop")
    raise _refuse_var(name)


_ALIAS = r"(?:\s+(?:AS\s+)?(?!LIMIT\b)(?P<alias>`[^`]*`|'[^']*'|\"[^\"]*\"|\w+))?"
_LIMIT1 = r"(?:\s+LIMIT\s+1)?\s*\Z"
_LOCAL_READS = [
    (re.compile(r"SELECT\s+@@(?:SESSION\.|GLOBAL\.)?VERSION_COMMENT" + _ALIAS + _LIMIT1, re.I), "version_comment"),
    (re.compile(r"SELECT\s+DATABASE\s*\(\s*\)" + _ALIAS + _LIMIT1, re.I), "database"),
    (re.compile(r"SELECT\s+LAST_INSERT_ID\s*\(\s*\)" + _ALIAS + _LIMIT1, re.I), "last_insert_id"),
    (re.compile(r"SELECT\s+@@(?:SESSION\.)?WARNING_COUNT" + _ALIAS + _LIMIT1, re.I), "warning_count"),
    (re.compile(r"SHOW\s+(?:WARNINGS|ERRORS)(?:\s+LIMIT\s+\d+(?:\s*,\s*\d+)?)?\s*\Z", re.I), "warnings"),
    (re.compile(r"SHOW\s+COUNT\s*\(\s*\*\s*\)\s+(?:WARNINGS|ERRORS)\s*\Z", re.I), "warning_count"),
    (re.compile(r"SHOW\s+(?:DATABASES|SCHEMAS)\s*\Z", re.I), "databases"),
    # the CLI's \s: the *client's* login, not the coordinator's account
    (re.compile(r"SELECT\s+DATABASE\s*\(\s*\)\s*,\s*USER\s*\(\s*\)" + _LIMIT1, re.I), "database_user"),
    (re.compile(r"SELECT\s+(?:CURRENT_)?USER\s*\(\s*\)" + _ALIAS + _LIMIT1, re.I), "user"),
]
_TX = [
    (re.compile(r"(?:BEGIN(?:\s+WORK)?|START\s+TRANSACTION(?P<mods>(?:\s*,?\s*(?:READ\s+ONLY|READ\s+WRITE|WITH\s+"
                r"CONSISTENT\s+SNAPSHOT))*))\s*\Z", re.I), "begin"),
    (re.compile(r"COMMIT(?:\s+WORK)?\s*\Z", re.I), "commit"),
    (re.compile(r"ROLLBACK(?:\s+WORK)?\s*\Z", re.I), "rollback"),
    (re.compile(r"SAVEPOINT\s+(?P<name>`[^`]+`|\w+)\s*\Z", re.I), "savepoint"),
    (re.compile(r"ROLLBACK(?:\s+WORK)?\s+TO\s+(?:SAVEPOINT\s+)?(?P<name>`[^`]+`|\w+)\s*\Z", re.I), "rollback_to"),
    (re.compile(r"RELEASE\s+SAVEPOINT\s+(?P<name>`[^`]+`|\w+)\s*\Z", re.I), "release"),
]
_LEAD = re.compile(r"\s*(?:/\*(?!!).*?\*/\s*)*([A-Za-z]+)", re.S)


class ParseCache:
    """``split_statements`` and ``parse`` by exact query text, bounded. Clients send the same
    texts again and again (prepared statements, ORMs, load tools), and classifying one costs
    more than the rest of the front end's work for it. Only successes are kept (a refusal is
    cheap to repeat and carries its own message); the results are immutable. Owned by the
    ``MysqlFront``, shared by its sessions."""

    def __init__(self, internal_schema: str, size: int = 4096) -> None:
        self.schema = internal_schema
        self.size = size
        self._split: dict[str, list[str]] = {}
        self._parsed: dict[str, tuple[Local | Sql, str]] = {}

    def split(self, text: str) -> list[str]:
        got = self._split.get(text)
        if got is None:
            got = split_statements(text)
            self._keep(self._split, text, got)
        return got

    def parse(self, text: str) -> tuple[Local | Sql, str]:
        got = self._parsed.get(text)
        if got is None:
            got = parse(text, self.schema)
            self._keep(self._parsed, text, got)
        return got

    def _keep(self, cache: dict[str, Any], key: str, value: Any) -> None:
        if len(cache) >= self.size:
            cache.clear()  # a workload of ever-new texts: start over rather than track ages
        cache[key] = value


def parse(text: str, internal_schema: str) -> tuple[Local | Sql, str]:
    """Classify one statement of a client's query (raises ``SqlRejected`` or ``Refused``);
    with the text to run (executable comments unwrapped: MySQL tools write them, and the
    server would run their content)."""
    if "/*!" in text or "/*M!" in text or "/*m!" in text:
        text = unwrap_executable_comments(text)
    return _parse(text, internal_schema), text


def _parse(text: str, internal_schema: str) -> Local | Sql:
    lead = _LEAD.match(text)
    verb = lead.group(1).upper() if lead else ""
    body = text[lead.start(1):].strip().rstrip(";").strip() if lead else text.strip()
    if verb == "SET":
        return _set(body)
    if verb == "USE":
        m = _USE.match(body)
        if m is None:
            raise Refused(1064, "USE needs one database name")
        return Local("use", _unquote(m.group("db")))
    if verb in ("BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
        for pattern, what in _TX:
            m = pattern.match(body)
            if m:
                if what == "begin":
                    mods = (m.group("mods") or "").upper()
                    return Local("begin", None, "READ ONLY" in _WS.sub(" ", mods))
                name = m.groupdict().get("name")
                return Local(what, _unquote(name) if name else None)
        if verb == "BEGIN" and body.upper().startswith("BEGIN NOT"):
            raise SqlRejected(400, "forbidden_statement", "BEGIN NOT ATOMIC",
                              "BEGIN NOT ATOMIC is not allowed through the coordinator: compound statements are "
                              "not supported.")
        raise Refused(1064, f"cannot parse the transaction statement {body[:40]!r}")
    if verb in ("SELECT", "SHOW"):
        for pattern, what in _LOCAL_READS:
            m = pattern.match(body)
            if m:
                alias = m.groupdict().get("alias")
                return Local(what, _unquote(alias) if alias else None)  # value: the column's name
    stmt = sqlrules.classify(text, internal_schema)
    hint = _HINT.search(text) if "/*+" in text else None  # the search costs µs on a long INSERT
    consistency = None
    if hint:
        consistency = hint.group(1).lower()
        if consistency not in CONSISTENCY:
            raise Refused(1231, f"unknown consistency '{consistency}' in the hint (one of {', '.join(CONSISTENCY)})")
    return Sql(stmt, consistency)
