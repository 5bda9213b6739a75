"""SQL classification and refusal rules: what a client statement is, and whether it may run.

Every statement that reaches the replicated log is replayed on every follower,
so the coordinator must know its kind (READ goes to one replica; WRITE and DDL
are logged, DDL as its own entry) and must refuse what cannot be replayed to
the same result (``UUID()``, ``SYSDATE()``, user variables, ``LIMIT`` without
``ORDER BY``), what would change server or session state behind the log's back
(``SET``, ``LOCK TABLES``, ``GRANT``, transactions), and anything touching the
coordinator's own schema or the system schemas.

Method: one compiled regex scanner finds the tokens that can hide text —
string literals, backtick identifiers and comments — and builds a *skeleton*
of the statement in which strings become ``''``, comments become a space and
odd backtick identifiers become ```_```. Every other rule is a regex or set
test on the upper-cased skeleton, so an ``@`` in ``'a@x.com'``, ``UUID()`` in a
string, ``;`` in a comment or a column named ```limit``` never trip a rule,
while nothing the server would execute is invisible. MySQL executable
comments (``/*! */``, MariaDB ``/*M! */``) are code to the server, so they are
refused rather than skipped.

Assumptions about the session the statements run in (the coordinator sets it):
backslash escapes are on (no ``NO_BACKSLASH_ESCAPES``) and ``"`` quotes strings
(no ``ANSI_QUOTES``) — under either mode the server would tokenize strings
differently from this scanner. Classify the text the server will receive: if
the driver substitutes ``%s`` / ``%(name)s`` later, pass ``placeholders=True``
so a placeholder inside a literal or comment (where a bound value could close
the quote) is refused.

Choices worth knowing: the internal schema name is refused anywhere in the text
(comments and strings included) as a whole identifier, so ``_coordinator_notes``
is a different name; ``SET autocommit`` is reported as ``transaction_control``
(it is transaction control in effect), every other ``SET`` as
``forbidden_statement``; ``LOAD_FILE()`` is refused in reads too (it reads server
files); the checks for unsafe functions, ``@@`` variables and ``LIMIT`` without
``ORDER BY`` apply to writes and DDL (a view or ``CREATE TABLE ... SELECT`` feeds
later writes), not to reads.

Pure, no I/O; ``classify`` is cached because clients repeat statement texts.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .sqlscan import _B, _E, Kind, SqlRejected, Statement, scan
from .sqlverbs import _SYS_SCHEMAS, _forbidden, _schema_forbidden, _system_schema_message, kind_of

__all__ = ["Kind", "SqlRejected", "Statement", "classify"]

# --- rules on the upper-cased skeleton -------------------------------------------------------

# Words = runs of identifier characters: every ASCII character but [A-Za-z0-9_$] separates
# (non-ASCII characters are identifier characters to MySQL). translate+split is C-fast.
_SEPARATORS = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) in "_$")})
_SYS_QUALIFIER = re.compile(
    r"(?<![\w$.`])`?(MYSQL|INFORMATION_SCHEMA|PERFORMANCE_SCHEMA|SYS)`?\s*\.\s*`?([\w$*]*)"
)
_OUTFILE = re.compile(_B + r"INTO\s+(OUTFILE|DUMPFILE)" + _E)
_USER_VAR = re.compile(r"(?<!@)@(?!@)([\w$.]*)")
_SYS_VAR = re.compile(r"@@(?:(GLOBAL|SESSION|LOCAL)\s*\.\s*)?([\w$]*)")
_LIMIT_SCAN = re.compile(r"[()]|" + _B + r"(?:ORDER\s+BY|LIMIT)" + _E)

# Functions whose result differs between the leader and a replaying follower.
# RAND(), NOW(), CURRENT_TIMESTAMP, UNIX_TIMESTAMP() are fine: replay sets
# rand_seed1/2 and timestamp. DATABASE() is the same everywhere.
_UNSAFE_CALLS = (
    "UUID", "UUID_SHORT", "UUID_V4", "UUID_V7", "SYS_GUID", "RANDOM_BYTES", "SYSDATE",
    "LOAD_FILE", "USER", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER", "CONNECTION_ID",
    "PS_CURRENT_THREAD_ID", "PS_THREAD_ID", "FOUND_ROWS", "ROW_COUNT", "LAST_INSERT_ID",
    "GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS", "IS_FREE_LOCK", "IS_USED_LOCK",
    "MASTER_POS_WAIT", "SOURCE_POS_WAIT", "MASTER_GTID_WAIT", "WAIT_FOR_EXECUTED_GTID_SET",
    "WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS", "SLEEP", "BENCHMARK", "VERSION", "ENCRYPT",
    "NEXTVAL", "LASTVAL", "SETVAL",
)  # fmt: skip
_LOAD_FILE = re.compile(r"(?<![\w$])`?LOAD_FILE`?\s*\(")
# The database account the coordinator uses is nobody's business: refused in reads too.
_ACCOUNT_WORDS = frozenset({"USER", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER", "CURRENT_ROLE"})
_ACCOUNT = re.compile(
    r"(?<![\w$])`?(USER|CURRENT_USER|SESSION_USER|SYSTEM_USER|CURRENT_ROLE)`?\s*\(|"
    + _B + r"(CURRENT_USER|CURRENT_ROLE)" + _E
)
_UNSAFE_WORDS = frozenset(_UNSAFE_CALLS) | {"NEXT", "PREVIOUS"}
_UNSAFE = re.compile(
    r"(?<![\w$])`?(" + "|".join(sorted(_UNSAFE_CALLS, key=len, reverse=True)) + r")`?\s*\("
    r"|" + _B + r"(CURRENT_USER|NEXT\s+VALUE\s+FOR|PREVIOUS\s+VALUE\s+FOR)" + _E
)

# Keywords after which "name (" introduces a column list of a table, index or CTE.
_NAME_CONTEXT = frozenset(
    {"INTO", "INSERT", "REPLACE", "IGNORE", "TABLE", "EXISTS", "REFERENCES", "VIEW", "INDEX",
     "KEY", "UNIQUE", "FULLTEXT", "SPATIAL", "WITH", "RECURSIVE"}
)  # fmt: skip
_PREV_WORD = re.compile(r"([\w$]+)\s*\Z")

_KIND_NOUN = {Kind.READ: "read", Kind.WRITE: "write", Kind.DDL: "DDL statement"}


@lru_cache(maxsize=64)
def _schema_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", re.I)



def _check_limits(body: str) -> None:
    """LIMIT must follow an ORDER BY at the same parenthesis level, else rows differ per replica."""
    ordered = [False]
    for m in _LIMIT_SCAN.finditer(body):
        tok = m.group()
        if tok == "(":
            ordered.append(False)
        elif tok == ")":
            if len(ordered) > 1:
                ordered.pop()
        elif tok[0] == "O":
            ordered[-1] = True
        elif not ordered[-1]:
            raise SqlRejected(
                400,
                "unsafe_limit",
                "LIMIT without ORDER BY",
                "LIMIT without ORDER BY picks rows in an unspecified order that can differ between "
                "replicas; add ORDER BY on a unique key (e.g. ORDER BY id) before LIMIT.",
            )


def _names_an_object(body: str, start: int, verb: str) -> bool:
    """Whether ``name (`` at ``start`` is a table/index name with a column list, not a call.

    Function names may be followed by whitespace before ``(``, so ``user (`` alone is
    ambiguous; after INTO, TABLE, REFERENCES, ... only a name can follow.
    """
    prev = _PREV_WORD.search(body, 0, start)
    if prev is None:
        return False
    word = prev.group(1)
    return word in _NAME_CONTEXT or (word == "ON" and verb == "CREATE INDEX")


def _check(body: str) -> tuple[Kind, str]:
    """All rules on an upper-cased skeleton; returns (kind, verb) or raises."""
    words = body.translate(_SEPARATORS).split()
    if "." in body and not _SYS_SCHEMAS.isdisjoint(words):
        q = _SYS_QUALIFIER.search(body)
        if q is not None:
            schema = q.group(1).lower()
            construct = f"{schema}.{q.group(2).lower()}"
            raise _schema_forbidden(construct, _system_schema_message(construct, schema))
    kind, verb = kind_of(body, words, _check)
    if verb in ("DROP TABLE", "DROP VIEW") and "," in body:
        # MariaDB drops the tables it finds and then fails on a missing one: a partial
        # effect on the leader that followers would never see. One per statement.
        raise _forbidden(f"{verb} of several tables", "it can apply partly; drop one per statement")
    if ("OUTFILE" in words or "DUMPFILE" in words) and (o := _OUTFILE.search(body)):
        raise _forbidden(f"INTO {o.group(1)}", "it writes files on the server")
    if "LOAD_FILE" in words and _LOAD_FILE.search(body):
        raise SqlRejected(
            400, "unsafe_function", "LOAD_FILE()", "LOAD_FILE() reads files on the server and is not allowed."
        )
    if kind is Kind.READ and not _ACCOUNT_WORDS.isdisjoint(words):  # writes: the unsafe rule below
        for a in _ACCOUNT.finditer(body):
            if a.group(1) and _names_an_object(body, a.start(), verb):
                continue  # a table called user
            fn = f"{a.group(1) or a.group(2)}()"
            raise SqlRejected(400, "forbidden_function", fn,
                              f"{fn} would reveal the coordinator's database account and is not allowed.")
    if "@" in body:
        u = _USER_VAR.search(body)
        if u is not None:
            var = "@" + (u.group(1).lower() or "'...'")
            raise SqlRejected(
                400,
                "user_variable",
                var,
                f"user variables such as {var} live in one connection and are not replicated; "
                "use literal values or query parameters instead.",
            )
        if kind is not Kind.READ:
            s = _SYS_VAR.search(body)
            if s is not None:
                var = "@@" + (f"{s.group(1)}." if s.group(1) else "") + s.group(2)
                var = var.lower()
                raise SqlRejected(
                    400,
                    "unsafe_function",
                    var,
                    f"{var} reads a server variable that can differ between replicas, so a "
                    f"{_KIND_NOUN[kind]} using it cannot be replayed deterministically; use a literal value instead.",
                )
    if kind is not Kind.READ:
        if not _UNSAFE_WORDS.isdisjoint(words):
            for f in _UNSAFE.finditer(body):
                if f.group(1) and _names_an_object(body, f.start(), verb):
                    continue  # INSERT INTO user (name) ...: a table called user, not USER()
                fn = f"{f.group(1)}()" if f.group(1) else re.sub(r"\s+", " ", f.group(2))
                raise SqlRejected(
                    400,
                    "unsafe_function",
                    fn,
                    f"{fn} can give a different result on each replica, so a {_KIND_NOUN[kind]} using it "
                    "cannot be replayed deterministically; compute the value in the client and pass it "
                    "as a parameter.",
                )
        if "LIMIT" in words:
            _check_limits(body)
    return kind, verb


def _classify(sql: str, internal_schema: str, placeholders: bool) -> Statement:
    if "\x00" in sql:
        raise SqlRejected(400, "parse_error", "NUL byte", "the query contains a NUL byte; remove it.")
    if internal_schema and internal_schema.lower() in sql.lower() and _schema_pattern(internal_schema).search(sql):
        raise _schema_forbidden(
            internal_schema,
            f"{internal_schema} is the coordinator's internal schema and cannot be read or written through "
            "the API (it is refused even inside comments and string literals); remove the reference.",
        )
    skeleton, end = scan(sql, placeholders)
    if end == 0:
        raise SqlRejected(
            400, "empty_query", "empty query",
            "the query is empty (only whitespace or comments); send one SQL statement."
        )
    kind, verb = _check(skeleton.upper())
    return Statement(kind, verb, sql[:end])


@lru_cache(maxsize=8192)
def _classify_cached(sql: str, internal_schema: str, placeholders: bool) -> Statement | tuple[int, str, str, str]:
    # Rejections are cached as plain data: re-raising one exception object would grow its traceback.
    try:
        return _classify(sql, internal_schema, placeholders)
    except SqlRejected as exc:
        return exc.status, exc.code, exc.construct, exc.message


def classify(sql: str, internal_schema: str = "_coordinator", *, placeholders: bool = False) -> Statement:
    """Classify one client statement or raise ``SqlRejected`` naming what is refused and why.

    ``placeholders=True`` when the driver will later substitute ``%s`` / ``%(name)s``
    into this text (the request carried params).
    """
    res = _classify_cached(sql, internal_schema, placeholders)
    if isinstance(res, Statement):
        return res
    raise SqlRejected(*res)
