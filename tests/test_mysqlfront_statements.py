"""The front end's statement classification (pure): session statements answered locally,
their column aliases, refusals with MySQL error numbers, and SQL passed on."""

from __future__ import annotations

import pytest

from coordinator.core.sqlscan import SqlRejected
from coordinator.mysqlfront.statements import Local, Refused, Sql, parse


def local(text: str) -> Local:
    parsed, _ = parse(text, "_coordinator")
    assert isinstance(parsed, Local), parsed
    return parsed


@pytest.mark.parametrize("text, what, alias", [
    ("SELECT DATABASE()", "database", None),
    ("select database() as db", "database", "db"),
    ("SELECT DATABASE() `my db`", "database", "my db"),
    ("SELECT LAST_INSERT_ID()", "last_insert_id", None),
    ("SELECT LAST_INSERT_ID() AS last", "last_insert_id", "last"),
    ("SELECT LAST_INSERT_ID() AS 'id'", "last_insert_id", "id"),
    ("select @@version_comment limit 1", "version_comment", None),
    ("SELECT @@version_comment AS c LIMIT 1", "version_comment", "c"),
    ("SELECT @@warning_count", "warning_count", None),
    ("SELECT USER() AS who", "user", "who"),
])
def test_local_reads_and_their_column_names(text: str, what: str, alias: str | None) -> None:
    st = local(text)
    assert (st.what, st.value) == (what, alias)


def test_a_local_read_with_more_than_the_function_goes_to_a_server() -> None:
    parsed, _ = parse("SELECT DATABASE(), 1", "_coordinator")
    assert isinstance(parsed, Sql)


@pytest.mark.parametrize("text", ["SELEC id FROM products", "FROBNICATE t", "INSRT INTO t VALUES (1)"])
def test_a_first_word_no_statement_starts_with_is_a_syntax_error(text: str) -> None:
    with pytest.raises(SqlRejected) as exc:
        parse(text, "_coordinator")
    assert exc.value.code == "parse_error"
    assert exc.value.message.startswith("You have an error in your SQL syntax")


def test_refused_session_variable_names_the_reason() -> None:
    with pytest.raises(Refused) as exc:
        parse("SET sql_mode = 'ANSI'", "_coordinator")
    assert exc.value.errno == 1235 and "diverge" in exc.value.message


# --- ParseCache: classification by exact text, shared by the sessions ---------------------------


def test_the_parse_cache_answers_as_parse_does_and_keeps_successes_only() -> None:
    from coordinator.mysqlfront.statements import ParseCache

    cache = ParseCache("_coordinator", size=3)
    for text in ("INSERT INTO t VALUES (1)", "SELECT DATABASE()", "/*!40101 SET NAMES utf8mb4 */", "BEGIN"):
        assert cache.parse(text) == parse(text, "_coordinator")
        assert cache.parse(text) is cache.parse(text)  # the second time from the cache
    assert len(cache._parsed) <= 3  # bounded: full means start over
    for bad in ("SELECT * FROM _coordinator.state", "SET sql_mode = ''"):
        for _ in range(2):  # refused every time, with its own error, and never kept
            with pytest.raises((SqlRejected, Refused)):
                cache.parse(bad)
        assert bad not in cache._parsed
    assert cache.split("INSERT INTO t VALUES (1); SELECT 1") == ["INSERT INTO t VALUES (1)", "SELECT 1"]
    assert cache.split("SELECT ';'") == ["SELECT ';'"]
