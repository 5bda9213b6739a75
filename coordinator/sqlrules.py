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

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


class Kind(enum.Enum):
    READ = "read"
    WRITE = "write"
    DDL = "ddl"


@dataclass(frozen=True)
class Statement:
    kind: Kind
    verb: str  # "SELECT", "INSERT", "CREATE TABLE", ...
    sql: str  # original text up to its last token: no trailing ';', comment or whitespace


class SqlRejected(Exception):
    """A statement the coordinator refuses; ``message`` names the construct and the fix."""

    def __init__(self, status: int, code: str, construct: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.construct = construct
        self.message = message

    def __repr__(self) -> str:
        return f"SqlRejected({self.status}, {self.code!r}, {self.construct!r})"


# --- scanner ------------------------------------------------------------------------------

# Alternatives are tried at the leftmost position; the last three catch unterminated
# strings / comments (the full forms failed) and the end of input (zero width).
_SCAN = re.compile(
    r"(?=[-'\"`/#]|\Z)(?:"  # cheap first-character test before trying the alternatives
    r"'(?:[^'\\]++|\\.|'')*+'"
    r'|"(?:[^"\\]++|\\.|"")*+"'
    r"|`(?:[^`]++|``)*+`"
    r"|/\*(?:[^*]++|\*(?!/))*+\*/"
    r"|--[\x01-\x20][^\n]*+"  # MySQL needs whitespace/control after "--"; "1--1" is code
    r"|\#[^\n]*+"
    r"|['\"`]|/\*|\Z)",
    re.S,
)
_PLAIN_IDENT = re.compile(r"[\w$]+")
_PLACEHOLDER = re.compile(r"%(?:s|\([^)]*\)s)")

# --- rules on the upper-cased skeleton -------------------------------------------------------

_B = r"(?<![\w$.`])"  # word start: not inside another word, a qualified name or a backtick
_E = r"(?![\w$`])"  # word end
# Words = runs of identifier characters: every ASCII character but [A-Za-z0-9_$] separates
# (non-ASCII characters are identifier characters to MySQL). translate+split is C-fast.
_SEPARATORS = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) in "_$")})
_LEAD = re.compile(r"[\s(]*+([A-Z_][\w$]*)")
_PARENS = re.compile(r"[()]")
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
    r"(?<![\w$])`?(USER|CURRENT_USER|SESSION_USER|SYSTEM_USER|CURRENT_ROLE)`?\s*\(|" + _B + r"(CURRENT_USER|CURRENT_ROLE)" + _E
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

_KIND_NOUN = {Kind.READ: "read", Kind.WRITE: "write", Kind.DDL: "DDL statement"}
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


@lru_cache(maxsize=64)
def _schema_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", re.I)


def _scan(sql: str, placeholders: bool) -> tuple[str, int]:
    """Skeleton of the first statement, and where its last token ends in ``sql``."""
    parts: list[str] = []
    pos = 0
    end = 0  # end of the last code before the first ';' (gaps are rstripped lazily)
    gap_end = -1  # a non-blank gap ending here is the last code seen so far
    semi = -1
    for m in _SCAN.finditer(sql):
        start, stop = m.span()
        if start > pos:
            gap = sql[pos:start]
            if semi >= 0:
                if not gap.isspace():
                    raise _multiple()
            else:
                code_end = start
                if ";" in gap:
                    j = gap.index(";")
                    semi = code_end = pos + j
                    rest = gap[j + 1 :]
                    if rest and not rest.isspace():
                        raise _multiple()
                    gap = gap[:j]
                if gap and not gap.isspace():
                    gap_end = code_end
                parts.append(gap)
        if start == stop and stop == len(sql):  # the end-of-input match
            break
        pos = stop
        tok = m.group()
        first = tok[0]
        if (stop - start == 1 and first in "'\"`") or tok == "/*":
            what = "comment" if first == "/" else "quoted identifier" if first == "`" else "string literal"
            raise SqlRejected(
                400, "parse_error", tok, f"unterminated {what} (opened by {tok} at character {start + 1}); close it."
            )
        if placeholders and "%" in tok:
            _check_placeholder(tok)
        if first == "/":
            if tok[2] == "!" or tok[2:4] in ("M!", "m!"):
                construct = "/*!" if tok[2] == "!" else tok[:4]
                raise SqlRejected(
                    400,
                    "executable_comment",
                    construct + " ... */",
                    f"executable comments ({construct} ... */) are run by the server, so they cannot "
                    "hide SQL from the coordinator's checks; write the SQL without the comment wrapper.",
                )
            parts.append(" ")
        elif first == "-" or first == "#":
            parts.append(" ")
        else:
            if semi >= 0:
                raise _multiple()
            if first != "`":
                parts.append("''")
            elif _PLAIN_IDENT.fullmatch(tok, 1, stop - start - 1):
                parts.append(tok)
            else:
                parts.append("`_`")
            end = stop
            gap_end = -1
    if gap_end >= 0:
        end = len(sql[:gap_end].rstrip())
    return "".join(parts), end


def _check_placeholder(tok: str) -> None:
    ph = _PLACEHOLDER.search(tok)
    if ph is not None:
        raise SqlRejected(
            400,
            "placeholder_in_literal",
            ph.group(),
            "a %s / %(name)s placeholder inside a string literal, quoted identifier or comment would be "
            "substituted there; put the placeholder where the value goes, unquoted.",
        )


def _multiple() -> SqlRejected:
    return SqlRejected(
        400,
        "multiple_statements",
        "multiple statements",
        "multiple statements in one request: only one SQL statement is allowed, but text follows "
        "the ';'. Send statements one per request, or use POST /transaction for statements "
        "that must commit together.",
    )


def _flatten(body: str) -> str:
    """Drop parenthesised groups so only top-level words remain (CTE bodies, subqueries)."""
    out: list[str] = []
    depth = pos = 0
    for m in _PARENS.finditer(body):
        i = m.start()
        if body[i] == "(":
            if depth == 0:
                out.append(body[pos:i])
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                out.append(" ")
                pos = i + 1
    if depth == 0:
        out.append(body[pos:])
    return "".join(out)


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


def _verb(body: str, words: Sequence[str]) -> tuple[Kind, str]:
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
        main = _MAIN_VERB.search(_flatten(body[m.start(1) :]), 4)
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
            _check(rest)  # EXPLAIN of a refused statement is refused too
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
    raise _unsupported(v)


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
    kind, verb = _verb(body, words)
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
    skeleton, end = _scan(sql, placeholders)
    if end == 0:
        raise SqlRejected(
            400, "empty_query", "empty query", "the query is empty (only whitespace or comments); send one SQL statement."
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
