"""The placeholder translation: ``?`` placeholders become psycopg's ``%s``; a ``?`` in a
literal, a quoted name or a comment stays; a literal ``%`` is escaped for psycopg."""

from __future__ import annotations

import pytest

from adapters.sql import dialect_sql


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        ("SELECT '?' AS q, a FROM t WHERE a = ?", "SELECT '?' AS q, a FROM t WHERE a = %s"),
        ("SELECT 'it''s ?' FROM t WHERE a = ?", "SELECT 'it''s ?' FROM t WHERE a = %s"),
        ('SELECT "odd?name" FROM t WHERE a = ?', 'SELECT "odd?name" FROM t WHERE a = %s'),
        ("SELECT a -- why?\nFROM t WHERE a = ?", "SELECT a -- why?\nFROM t WHERE a = %s"),
        ("SELECT a /* ? */ FROM t WHERE a = ?", "SELECT a /* ? */ FROM t WHERE a = %s"),
        (
            "SELECT a FROM t WHERE b LIKE 'x%' AND c = ?",
            "SELECT a FROM t WHERE b LIKE 'x%%' AND c = %s",
        ),
        ("SELECT a % 2 FROM t", "SELECT a %% 2 FROM t"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_postgresql_placeholders(sql: str, expected: str) -> None:
    assert dialect_sql(sql, postgres=True) == expected


def test_sqlite_takes_the_statement_as_written() -> None:
    sql = "SELECT '?%' FROM t WHERE a = ? AND b LIKE '%x'"
    assert dialect_sql(sql, postgres=False) == sql
