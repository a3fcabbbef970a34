"""The bulk rebuild (projections/rebuild.py) on SQLite and PostgreSQL: the views built in
memory with their own handlers and copied in (COPY on PostgreSQL) hold exactly the rows,
row for row and type for type, that the live handlers wrote event by event; a view
installed at a past position catches up the rest once; a view starting afresh on a long
log is built in memory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import PracticeAggregate
from projections import rebuild as bulk
from projections import replay
from projections import runner as runner_module
from projections.base import Projection
from projections.catalog import all_projections
from projections.runner import Projector
from services.context import Components
from tests.conftest import Api, PinnedClock
from tests.integration.test_replay import History, ctx_of, step


def dump(ctx: Components) -> dict[str, list[str]]:
    """Every view's rows as the database returns them (types included), in a fixed order."""
    return {
        table: sorted(
            repr(sorted(r.items())) for r in ctx.store.database().query(f"SELECT * FROM {table}")
        )
        for p in all_projections()
        for table in p.tables
    }


def grown(api: Api, steps: list[tuple[str, int, int]]) -> Components:
    history = History(api)
    for action, which, n in steps:
        history.run(action, which, n)
    ctx = ctx_of(api)
    ctx.projector.catch_up()
    return ctx


def test_the_bulk_rebuild_writes_the_rows_the_live_handlers_wrote(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    api = api_for(backend, clock).setup()

    @settings(
        max_examples=4,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=st.lists(step, min_size=3, max_size=15))
    def same(steps: list[tuple[str, int, int]]) -> None:
        ctx = grown(api, steps)  # each example adds to the same, longer history
        views = all_projections()
        before, checksums = dump(ctx), replay.live_checksums(ctx.store.database(), views)
        positions = replay.rebuild(ctx.store, ctx.store.database(), ctx.projector, views)
        assert dump(ctx) == before
        assert replay.live_checksums(ctx.store.database(), views) == checksums
        assert set(positions.values()) == {replay.last_position(ctx.store)}

    same()


def test_a_view_installed_at_a_past_position_catches_up_the_rest_once(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    api = api_for(backend, clock).setup()
    steps = [("patient", 0, 1), ("pay", 0, 5000), ("refund", 0, 7), ("advance", 0, 30)]
    steps += [("pay", 1, 900), ("patient", 1, 2), ("pay", 1, 1200), ("refund", 1, 3)]
    ctx = grown(api, steps)
    live = dump(ctx)
    last = replay.last_position(ctx.store)
    middle = last // 2
    views = all_projections()

    ctx.projector.install(middle, views)
    assert {ctx.projector.position(p.name) for p in views} == {middle}
    events = [e for page in bulk.pages(ctx.store, 0, middle) for _, e in page]
    feed = sum(isinstance(e, PracticeAggregate.Event) for e in events)
    assert len(ctx.store.database().query("SELECT position FROM event_feed")) == feed
    assert dump(ctx) != live

    ctx.projector.catch_up()  # the runners go on from the installed position
    assert dump(ctx) == live
    assert {ctx.projector.position(p.name) for p in views} == {last}


def test_views_starting_afresh_on_a_long_log_are_built_in_memory(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = api_for(backend, clock).setup()
    ctx = grown(api, [("patient", 0, 1), ("pay", 0, 4100), ("pay", 1, 800), ("refund", 0, 9)])
    live = dump(ctx)
    monkeypatch.setattr(runner_module, "BULK_FROM", 1)
    with ctx.store.database().transaction() as tx:  # as when their tables' definition changed
        tx.execute("UPDATE projection_tracking SET schema = 'before' WHERE name <> 'users'")
    with caplog.at_level(logging.INFO, logger="payledger.projections"):
        projector = Projector(ctx.store, ctx.store.database(), all_projections())
        projector.catch_up()
    built = [r.getMessage() for r in caplog.records if "in memory up to" in r.getMessage()]
    assert len(built) == 1 and "transactions" in built[0] and "users" not in built[0], built
    assert dump(ctx) == live
    last = replay.last_position(ctx.store)
    assert {projector.position(p.name) for p in all_projections()} == {last}


def test_views_built_by_several_processes_hold_the_rows_built_by_one(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    api = api_for(backend, clock).setup()
    ctx = grown(api, [("patient", 0, 2), ("pay", 0, 4100), ("refund", 0, 9), ("pay", 1, 700)])
    views, last = all_projections(), replay.last_position(ctx.store)
    assert len(bulk.split(views, 3)) == 3
    assert sorted(p.name for share in bulk.split(views, 3) for p in share) == sorted(
        p.name for p in views
    )

    def rows(workers: int) -> dict[str, list[tuple[Any, ...]]]:
        with bulk.build(ctx.store, views, last, workers=workers) as scratch:
            return {
                table: sorted(map(repr, scratch.rows(table)[1]))
                for p in views
                for table in p.tables
            }

    alone = rows(1)
    assert alone["transactions"] and alone["event_feed"]
    assert rows(3) == alone
    feed = next(p for p in views if p.name == "event_feed")  # built here; Broken by a worker
    with pytest.raises(RuntimeError, match="building \\['broken'\\] failed"):
        bulk.build(ctx.store, [feed, Broken()], last, workers=2)


class Broken(Projection):
    name = "broken"
    tables = ("broken",)
    ddl = ("CREATE TABLE IF NOT EXISTS broken (id TEXT PRIMARY KEY)",)

    def process(self, tx: Any, event: Any, position: int) -> None:
        tx.execute("INSERT INTO broken (id) VALUES ('the same id every time')")


ODD = ["tab\there", "new\nline", "back\\slash \\N", "", "quote ' and \" ", "snow ☃ é", None]


def test_copied_rows_keep_every_value(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    """Text that COPY must escape, NULLs, empty text and big integers arrive as they left."""
    ctx = ctx_of(api_for(backend, clock))
    rows: list[tuple[Any, ...]] = [
        (i, text, (2**62 + i) if i % 2 else -i) for i, text in enumerate(ODD)
    ]
    with ctx.store.database().transaction() as tx:
        tx.execute("CREATE TABLE copy_check (id BIGINT PRIMARY KEY, text TEXT, n BIGINT)")
        bulk.copy_rows(
            tx, ctx.store.database().postgres, "copy_check", ["id", "text", "n"], iter(rows)
        )
    back = ctx.store.database().query("SELECT id, text, n FROM copy_check ORDER BY id")
    assert [(r["id"], r["text"], r["n"]) for r in back] == rows
