"""One projection failing on one event stops only itself: the other views, settlement and
the writeback intake go on, and /healthz and /metrics show the failing view with its error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.payments import Method, Payment
from projections.deposits import Deposits
from services.app.payments import collect_payment
from services.app.settlement import close_due_batches
from services.asgi import create_app
from services.context import Components
from tests.conftest import ComponentsFactory, PinnedClock
from tests.integration.test_store_contract import CARD, new_practice

POISON = 666  # the amount of the one payment the broken view cannot take


@pytest.fixture
def broken_deposits(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Deposits.process

    def process(self: Deposits, tx: Any, event: Any, position: int) -> None:
        if isinstance(event, Payment.Captured) and event.amount == POISON:
            raise RuntimeError("the deposits view cannot take this payment")
        original(self, tx, event, position)

    monkeypatch.setattr(Deposits, "process", process)


@pytest.fixture(params=["inline", "background thread"])
def components_running(
    request: pytest.FixtureRequest,
    make_components: ComponentsFactory,
    backend: str,
    clock: PinnedClock,
) -> Iterator[Components]:
    ctx = make_components(backend, clock, metrics_token="scrape-me")
    if request.param == "background thread":
        ctx.projector.start(interval=0.05)
    yield ctx
    ctx.projector.stop()


def test_a_failing_view_stops_only_itself(
    components_running: Components, clock: PinnedClock, broken_deposits: None
) -> None:
    ctx = components_running
    practice = new_practice(ctx)
    poisoned = collect_payment(
        ctx,
        practice_id=practice.id,
        amount=POISON,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        actor="user:test",
    )
    after = collect_payment(
        ctx,
        practice_id=practice.id,
        amount=700,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        actor="user:test",
    )
    later_practice = new_practice(ctx)

    # the other display views and work lists show both payments at once
    rows = ctx.store.database().query(
        "SELECT id, amount FROM transactions WHERE practice_id = ? ORDER BY amount",
        (str(practice.id),),
    )
    assert [(r["id"], int(r["amount"])) for r in rows] == [
        (str(poisoned.id), POISON),
        (str(after.id), 700),
    ]
    feed = ctx.store.database().query(
        "SELECT aggregate_id FROM event_feed WHERE aggregate_id = ?", (str(after.id),)
    )
    assert len(feed) >= 1

    # the writeback intake took in what came after the poisoned event
    assert ctx.store.database().query_one(
        "SELECT practice_id FROM writeback_practices WHERE practice_id = ?",
        (str(later_practice.id),),
    ) == {"practice_id": str(later_practice.id)}

    # settlement chooses its work from the transactions view, not the failing one
    clock.move(days=2)
    batches = close_due_batches(ctx, practice.id)
    assert sorted(i.amount for b in batches for i in b.items) == [POISON, 700]

    # the failing view stopped before the event, kept its error, and is shown
    state = {s.name: s for s in ctx.projector.states()}
    assert state["deposits"].error is not None
    assert "cannot take this payment" in state["deposits"].error
    assert state["deposits"].position < state["transactions"].position
    assert all(s.error is None for name, s in state.items() if name != "deposits")

    client = TestClient(create_app(ctx, scheduler=False))
    health = client.get("/healthz").json()
    views = {p["name"]: p for p in health["projections"]}
    assert "cannot take this payment" in views["deposits"]["error"]
    assert views["deposits"]["lag"] > 0
    assert views["transactions"]["error"] is None
    assert views["writeback_intake"]["lag"] == 0
    metrics = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).text
    failing = [
        line for line in metrics.splitlines() if line.startswith("payledger_projection_failing{")
    ]
    assert len(failing) == 1
    assert 'projection="deposits"' in failing[0]
    assert "cannot take this payment" in failing[0]


def test_a_failing_view_recovers_when_it_can(
    components_running: Components, clock: PinnedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = components_running
    original = Deposits.process
    broken = True

    def process(self: Deposits, tx: Any, event: Any, position: int) -> None:
        if broken and isinstance(event, Payment.Captured):
            raise RuntimeError("disk full")
        original(self, tx, event, position)

    monkeypatch.setattr(Deposits, "process", process)
    practice = new_practice(ctx)
    collect_payment(
        ctx,
        practice_id=practice.id,
        amount=900,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        actor="user:test",
    )
    assert ctx.projector.runner("deposits").error == "RuntimeError: disk full"
    broken = False
    ctx.projector.catch_up()  # tried again now, not after the pause
    last = ctx.store.recorder.max_notification_id()
    assert ctx.projector.runner("deposits").error is None
    assert ctx.projector.position("deposits") == last
