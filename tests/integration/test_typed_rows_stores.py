"""The read side's row types on the real stores, SQLite and PostgreSQL: the tables made
at start-up (the projections' DDL, the migrations) match each row type, and each query,
run with a row in each table, returns its row type's keys with values of its types as
that store's driver gives them (tests/unit/test_typed_rows.py does the same in memory)."""

from __future__ import annotations

from services.context import Components
from tests.unit.test_typed_rows import PART, QUERIES, WHOLE, check_columns, fill, wrong_rows


def test_each_row_type_matches_its_table(ctx: Components) -> None:
    tables = {kind: (table,) for kind, table in WHOLE.items()} | PART
    wrong = {
        kind.__name__: check_columns(ctx.store.database(), kind, t) for kind, t in tables.items()
    }
    assert {name: problems for name, problems in wrong.items() if problems} == {}


def test_each_query_returns_its_row_type(ctx: Components) -> None:
    fill(ctx.store.database())
    wrong = {name: wrong_rows(ctx.store.database(), query, kind) for name, query, kind in QUERIES}
    assert {name: problems for name, problems in wrong.items() if problems} == {}
