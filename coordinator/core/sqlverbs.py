"""What kind of statement it is, from its leading keywords, and which verbs are refused.

``verb`` maps an upper-cased skeleton (``sqlscan.scan``) to (kind, verb) — SELECT/SHOW/
DESCRIBE/EXPLAIN are reads; INSERT/REPLACE/UPDATE/DELETE writes; CREATE/ALTER/DROP
TABLE|INDEX|VIEW, TRUNCATE and RENAME TABLE are DDL — or raises ``SqlRejected`` naming
the refused construct (transaction control, SET, USE, LOCK TABLES, GRANT, …). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .sqlscan import _B, _E, Kind, SqlRejected, flatten

_LEAD = re.compile(r"[\s(]*+([A-Z_][\w$]*)")
_MAIN_VERB = re.compile(_B + r"(SELECT|INSERT|REPLACE|UPDATE|DELETE|TABLE|VALUES)" + _E)
_EXPLAIN = re.compile(
    r"\s*(?:EXPLAIN|DESCRIBE|DESC)"
    r"((?:\s+(?:EXTENDED|PARTITIONS|ANALYZE|FORMAT\s*=\s*[\w$]+|FOR\s+CONNECTION))*)\s*"
)
_SET = re.compile(
    r"\s*SET\s*(?:(GLOBAL|SESSION|LOCAL|PERSIST|PERSIST_ONLY)\s+"
    r"|(@@)(?:(GLOBAL|SESSION|LOCAL|PERSIST|PERSIST_ONLY)\s*\.\s*)?|(@))?([\w$]*)"
)
_SYS_SCHEMAS = frozenset({"MYSQL", "INFORMATION_SCHEMA", "PERFORMANCE_SCHEMA", "SYS"})
_WRITE_VERBS = frozenset({"INSERT", "REPLACE", "UPDATE", "DELETE"})
_READ_MAIN = frozenset({"SELECT", "TABLE", "VALUES"})
_EXPLAINABLE = _READ_MAIN | _WRITE_VERBS | {"WITH"}
_DDL_OBJECTS = {
    "CREATE": ("TABLE", "INDEX", "VIEW"),
    "ALTER": ("TABLE", "VIEW"),
    "DROP": ("TABLE", "INDEX", "VIEW"),
}
_DDL_MODIFIERS = frozenset(
    {"OR", "REPLACE", "UNIQUE", "FULLTEXT", "SPATIAL", "ONLINE", "OFFLINE", "IGNORE", "IF", "NOT", "EXISTS"}
)
_TX_VERBS = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "XA"})
# Forbidden verbs named with their next word ("LOAD DATA", "FLUSH TABLES") or alone.
_FORBIDDEN_TWO = frozenset(
    {"LOAD", "CHANGE", "INSTALL", "UNINSTALL", "STOP", "CACHE", "CHECK", "ANALYZE", "OPTIMIZE",
     "REPAIR", "FLUSH", "RESET", "PURGE", "BACKUP", "GET", "IMPORT"}
)  # fmt: skip
_FORBIDDEN_ONE = frozenset(
    {"GRANT", "REVOKE", "KILL", "SHUTDOWN", "RESTART", "CALL", "DO", "HANDLER", "PREPARE",
     "EXECUTE", "DEALLOCATE", "BINLOG", "HELP", "SIGNAL", "RESIGNAL", "CLONE", "DELIMITER"}
)  # fmt: skip
# SHOW forms that expose other sessions, replication state or every schema's tables.
_SHOW_DENY = frozenset(
    {"GRANTS", "PROCESSLIST", "BINLOG", "BINARY", "MASTER", "SLAVE", "REPLICA", "REPLICAS",
     "RELAYLOG", "ENGINE", "OPEN", "EXPLAIN", "ANALYZE"}
)  # fmt: skip
_SHOW_PREFIX = frozenset({"FULL", "GLOBAL", "SESSION", "EXTENDED"})
_ACCEPTED = (
    "accepted statements are SELECT/SHOW/DESCRIBE/EXPLAIN reads, INSERT/REPLACE/UPDATE/DELETE "
    "writes, and CREATE/ALTER/DROP TABLE|INDEX|VIEW, TRUNCATE TABLE and RENAME TABLE"
)



def _forbidden(construct: str, why: str = "") -> SqlRejected:
    why = why or "it changes server, session or replication state that the replicated log does not carry"
    return SqlRejected(
        400, "forbidden_statement", construct, f"{construct} is not allowed through the coordinator: {why}."
    )


def _transaction(construct: str) -> SqlRejected:
    return SqlRejected(
        400,
        "transaction_control",
        construct,
        f"{construct} cannot be sent to /query: every request is its own transaction. "
        "Use POST /transaction with a list of statements to run them atomically.",
    )


def _schema_forbidden(construct: str, message: str) -> SqlRejected:
    return SqlRejected(403, "internal_schema", construct, message)


def _system_schema_message(construct: str, schema: str) -> str:
    return (
        f"{construct} refers to the system schema {schema}, which cannot be read or written through "
        "the API; query your own tables instead."
    )


def _unsupported(verb: str) -> SqlRejected:
    return SqlRejected(400, "forbidden_statement", verb, f"unsupported statement {verb}: {_ACCEPTED}.")


def _not_a_statement(verb: str) -> SqlRejected:
    """A first word no MySQL statement starts with is a syntax error, as MariaDB answers it (1064)."""
    return SqlRejected(
        400,
        "parse_error",
        verb,
        "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server "
        f"version for the right syntax to use near '{verb}' at line 1 ({verb} begins no statement; {_ACCEPTED}).",
    )



def _ddl(verb: str, words: Sequence[str]) -> tuple[Kind, str]:
    temporary = False
    i = 1
    while i < len(words):
        w = words[i]
        if w == "ALGORITHM":
            i += 2
        elif w == "SQL" and i + 1 < len(words) and words[i + 1] == "SECURITY":
            i += 3
        elif w == "DEFINER":
            raise _forbidden(
                f"{verb} ... DEFINER", "a DEFINER clause names an account that differs between servers; omit it"
            )
        elif w == "TEMPORARY":
            temporary = True
            i += 1
        elif w in _DDL_MODIFIERS:
            i += 1
        else:
            break
    obj = words[i] if i < len(words) else ""
    name = f"{verb} {'TEMPORARY ' if temporary else ''}{obj}".strip()
    if obj in _DDL_OBJECTS[verb] and not temporary:
        return Kind.DDL, f"{verb} {obj}"
    if temporary:
        raise _forbidden(name, "temporary tables live in one connection and are not replicated")
    raise _forbidden(name)


def _show(words: Sequence[str]) -> tuple[Kind, str]:
    i = 1
    while i < len(words) and words[i] in _SHOW_PREFIX:
        i += 1
    w = words[i] if i < len(words) else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if w in ("DATABASES", "SCHEMAS"):
        raise _schema_forbidden(
            f"SHOW {w}",
            f"SHOW {w} is not allowed: the schema list includes the coordinator's internal schema; "
            "user tables live in the configured database (SHOW TABLES lists them).",
        )
    if w in _SHOW_DENY or (w == "CREATE" and nxt == "USER"):
        two = w in ("BINLOG", "BINARY", "MASTER", "SLAVE", "REPLICA", "RELAYLOG", "ENGINE", "OPEN", "CREATE")
        construct = f"SHOW {w} {nxt}" if two and nxt else f"SHOW {w}"
        raise _forbidden(construct, "it exposes other sessions, accounts or replication internals")
    for sys_name in _SYS_SCHEMAS.intersection(words):
        construct = f"SHOW ... {sys_name.lower()}"
        raise _schema_forbidden(construct, _system_schema_message(construct, sys_name.lower()))
    return Kind.READ, "SHOW"


def _set(body: str) -> SqlRejected:
    m = _SET.match(body)
    assert m is not None  # the verb is SET
    scope, atat, scope2, at, name = m.groups()
    if name == "AUTOCOMMIT" and not at:
        return _transaction("SET autocommit")
    if at:
        return _forbidden(f"SET @{name.lower()}", "user variables live in one connection and are not replicated")
    scope = scope or scope2 or ("SESSION" if atat else "")
    if scope:
        return _forbidden(f"SET {scope}")
    if name == "CHARACTER":
        return _forbidden("SET CHARACTER SET")
    if name in ("NAMES", "CHARSET", "PASSWORD", "ROLE", "TRANSACTION", "STATEMENT"):
        return _forbidden(f"SET {name}")
    if name == "DEFAULT":
        return _forbidden("SET DEFAULT ROLE")
    return _forbidden(f"SET {name.lower()}" if name else "SET")


def kind_of(body: str, words: Sequence[str], check: Callable[[str], object]) -> tuple[Kind, str]:
    """Kind and verb from the leading keywords; raises for refused statement types."""
    m = _LEAD.match(body)
    if m is None:
        raise _unsupported(body.strip()[:20] or "?")
    v = m.group(1)
    w1 = words[1] if len(words) > 1 else ""
    if "(" in body[: m.start(1)] and v not in _READ_MAIN and v != "WITH":
        raise _unsupported(f"({v}")
    if v == "SELECT":
        return Kind.READ, v
    if v in _WRITE_VERBS:
        return Kind.WRITE, v
    if v in _DDL_OBJECTS:
        return _ddl(v, words)
    if v == "WITH":
        main = _MAIN_VERB.search(flatten(body[m.start(1) :]), 4)
        if main is None:
            raise _unsupported("WITH")
        mv = main.group(1)
        return (Kind.READ if mv in _READ_MAIN else Kind.WRITE), mv
    if v in ("TABLE", "VALUES"):
        return Kind.READ, v
    if v == "SHOW":
        return _show(words)
    if v in ("EXPLAIN", "DESCRIBE", "DESC"):
        e = _EXPLAIN.match(body, m.start(1))
        assert e is not None
        mods = e.group(1)
        if "ANALYZE" in mods:
            raise _forbidden(f"{v} ANALYZE", "it executes the statement")
        if "CONNECTION" in mods:
            raise _forbidden(f"{v} FOR CONNECTION", "it exposes other sessions")
        rest = body[e.end() :]
        inner = _LEAD.match(rest)
        if inner is not None and (inner.group(1) in _EXPLAINABLE or "(" in rest[: inner.start(1)]):
            check(rest)  # EXPLAIN of a refused statement is refused too
        return Kind.READ, "DESCRIBE" if v == "DESC" else v
    if v == "TRUNCATE":
        return Kind.DDL, "TRUNCATE TABLE"
    if v == "RENAME":
        if w1 in ("TABLE", "TABLES"):
            return Kind.DDL, "RENAME TABLE"
        raise _forbidden(f"RENAME {w1}".strip())
    if v == "CHECKSUM" and w1 in ("TABLE", "TABLES"):
        return Kind.READ, "CHECKSUM TABLE"
    if v == "USE":
        raise _schema_forbidden(
            "USE",
            "USE is not allowed: every statement runs in the configured user database; "
            "qualify table names with that database instead of switching.",
        )
    if v == "SET":
        raise _set(body)
    if v == "BEGIN" and w1 == "NOT":
        raise _forbidden("BEGIN NOT ATOMIC", "compound statements are not supported")
    if v in _TX_VERBS:
        raise _transaction(v)
    if v == "START":
        if w1 == "TRANSACTION":
            raise _transaction("START TRANSACTION")
        raise _forbidden(f"START {w1}".strip())
    if v == "RELEASE" and w1 == "SAVEPOINT":
        raise _transaction("RELEASE SAVEPOINT")
    if v in ("LOCK", "UNLOCK"):
        raise _forbidden(f"{v} TABLES", "table locks live in one connection and would not be replicated")
    if v in _FORBIDDEN_TWO:
        raise _forbidden(f"{v} {w1}".strip())
    if v in _FORBIDDEN_ONE:
        raise _forbidden(v)
    raise _not_a_statement(v)

