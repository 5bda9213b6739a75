"""The SQL scanner: the tokens that can hide text, and the statement's skeleton.

One compiled regex finds string literals, backtick identifiers and comments; ``scan``
builds a *skeleton* of the first statement in which strings become ``''``, comments a
space and odd backtick identifiers ```_```, so every later rule (``sqlverbs``,
``sqlrules``) is a regex or set test on text that hides nothing the server would run.
Also the result types every SQL module shares. Pure, no I/O.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


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
_PARENS = re.compile(r"[()]")

_B = r"(?<![\w$.`])"  # word start: not inside another word, a qualified name or a backtick
_E = r"(?![\w$`])"  # word end


def scan(sql: str, placeholders: bool) -> tuple[str, int]:
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


def flatten(body: str) -> str:
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



def split_statements(sql: str) -> list[str]:
    """The statements of a multi-statement text (MySQL's CLIENT_MULTI_STATEMENTS), split at
    every ``;`` outside string literals, quoted identifiers and comments; empty ones dropped.
    An unterminated literal or comment keeps the rest of the text in the last statement
    (the classifier then reports it)."""
    if ";" not in sql:  # one statement (most texts): nothing to split, skip the scan
        one = sql.strip()
        return [one] if one else []
    out: list[str] = []
    start = pos = 0
    for m in _SCAN.finditer(sql):
        a, b = m.span()
        gap = sql[pos:a]
        base = pos
        while ";" in gap:
            j = gap.index(";")
            out.append(sql[start:base + j])
            start = base + j + 1
            gap = gap[j + 1:]
            base = start
        if a == b and b == len(sql):
            break
        tok = m.group()
        if len(tok) == 1 and tok in "'\"`" or tok == "/*":
            break  # unterminated: the rest stays in the current statement
        pos = b
    out.append(sql[start:])
    return [s for s in (x.strip() for x in out) if s]


def qmark_positions(sql: str) -> list[int]:
    """Where the ``?`` parameter markers of a prepared statement are (outside literals,
    quoted identifiers and comments)."""
    out: list[int] = []
    pos = 0
    for m in _SCAN.finditer(sql):
        a, b = m.span()
        gap = sql[pos:a]
        i = gap.find("?")
        while i >= 0:
            out.append(pos + i)
            i = gap.find("?", i + 1)
        if a == b and b == len(sql):
            break
        pos = b
    return out


_EXEC_VERSION = re.compile(r"/\*M?!(\d{5,6})?")
SERVER_VERSION_ID = 101100  # MariaDB 10.11: versioned executable comments up to this run


def unwrap_executable_comments(sql: str, version_id: int = SERVER_VERSION_ID) -> str:
    """The text with MySQL executable comments (``/*! … */``, ``/*!50100 … */``, MariaDB's
    ``/*M! … */``) replaced by what the server would run: their content when the version
    is at most ``version_id``, nothing otherwise — the same statement, written plainly, so
    the SQL rules see every word the server executes."""
    out: list[str] = []
    pos = 0
    for m in _SCAN.finditer(sql):
        a, b = m.span()
        tok = m.group()
        if tok.startswith("/*") and len(tok) > 4 and (tok[2] == "!" or tok[2:4] in ("M!", "m!")):
            head = _EXEC_VERSION.match(tok.replace("m!", "M!", 1))
            assert head is not None
            version = int(head.group(1)) if head.group(1) else 0
            out.append(sql[pos:a])
            out.append(" " + (tok[head.end():-2] if version <= version_id else "") + " ")
            pos = b
        if a == b and b == len(sql):
            break
    out.append(sql[pos:])
    return "".join(out)
