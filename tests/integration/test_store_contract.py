"""The event store and the projections behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from adapters.processor.port import CardInput
from domain.money import Money
from domain.payments import AssociationSource, CardSummary, Method, Payment
from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from projections.transactions import Transactions
from services.app.payments import associate_payment, collect_payment, refund_payment
from services.app.practices import create_practice
from services.context import Components
from tests.conftest import ComponentsFactory, PinnedClock

CARD = CardInput("4242424242424242", 12, 2030, "123")


def new_practice(ctx: Components) -> Payment:
    return create_practice(
        ctx,
        name="Contract Dental",
        timezone="America/Chicago",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1234"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )  # type: ignore[return-value]


def some_history(ctx: Components, clock: PinnedClock) -> list[Payment]:
    practice = new_practice(ctx)
    payments = []
    for amount in (1000, 2550, 99_999_999):
        payments.append(
            collect_payment(
                ctx,
                practice_id=practice.id,
                amount=amount,
                method=Method.VIRTUAL_TERMINAL,
                card=CARD,
                actor="user:test",
            )
        )
    refund_payment(
        ctx, practice_id=practice.id, payment_id=payments[0].id, amount=None, actor="user:test"
    )
    clock.move(days=1)
    refund_payment(
        ctx, practice_id=practice.id, payment_id=payments[1].id, amount=550, actor="user:test"
    )
    associate_payment(
        ctx,
        practice_id=practice.id,
        payment_id=payments[2].id,
        source=AssociationSource.INBOX,
        pms_reference="PayNum 7",
        actor="user:test",
    )
    return payments


def table_dump(ctx: Components, tables: tuple[str, ...]) -> dict[str, list[dict[str, object]]]:
    return {t: ctx.store.database().query(f"SELECT * FROM {t} ORDER BY 1") for t in tables}


def test_aggregates_round_trip(ctx: Components, clock: PinnedClock) -> None:
    payments = some_history(ctx, clock)
    loaded = ctx.store.repository.get(payments[1].id)
    assert isinstance(loaded, Payment)
    assert loaded.amount.cents == 2550
    assert loaded.refunded.cents == 550
    assert loaded.status.value == "settled"
    assert loaded.occurred_at.tzinfo is not None


def test_a_stale_save_is_refused(ctx: Components, clock: PinnedClock) -> None:
    payment = some_history(ctx, clock)[2]
    first = ctx.store.repository.get(payment.id)
    second = ctx.store.repository.get(payment.id)
    first.record_receipt_sent(email="a@example.com", refund_id=None, at=clock.current, actor="x")
    second.record_receipt_sent(email="b@example.com", refund_id=None, at=clock.current, actor="x")
    ctx.store.save(first)
    with pytest.raises(IntegrityError):
        ctx.store.save(second)


def test_notification_log_is_ordered_and_complete(ctx: Components, clock: PinnedClock) -> None:
    some_history(ctx, clock)
    notifications = ctx.store.recorder.select_notifications(start=0, limit=1000)
    ids = [n.id for n in notifications]
    assert ids == sorted(ids)
    assert ctx.projector.position("transactions") == ids[-1]
    assert ctx.projector.position("event_feed") == ids[-1]


def test_rebuild_gives_the_same_rows(ctx: Components, clock: PinnedClock) -> None:
    some_history(ctx, clock)
    for projection in ctx.projector.projections:
        before = table_dump(ctx, projection.tables)
        position = ctx.projector.position(projection.name)
        ctx.projector.rebuild(projection.name)
        assert table_dump(ctx, projection.tables) == before
        assert ctx.projector.position(projection.name) == position


def test_rows_and_position_commit_together(ctx: Components, clock: PinnedClock) -> None:
    """A handler that fails leaves neither rows nor a moved position behind."""
    some_history(ctx, clock)
    position = ctx.projector.position("transactions")
    original = Transactions._handlers[Payment.Associated]

    def broken(self: Transactions, tx: object, event: object, pos: int) -> None:
        raise RuntimeError("disk full")

    practice_id = ctx.store.database().query("SELECT id FROM practices")[0]["id"]
    payment_id = ctx.store.database().query(
        "SELECT id FROM transactions WHERE association = 'unassociated' "
        "AND status = 'settled' AND practice_id = ?",
        (practice_id,),
    )[0]["id"]
    payment = ctx.store.repository.get(UUID(payment_id))
    payment.associate(
        source=AssociationSource.MANUAL, pms_reference=None, at=clock.current, actor="user:test"
    )
    Transactions._handlers[Payment.Associated] = broken
    try:
        # applied inline, the view fails alone: the event is saved, the view left behind
        ctx.store.save(payment)
        assert ctx.projector.position("transactions") == position
        assert ctx.projector.position("event_feed") > position
        with pytest.raises(RuntimeError):
            ctx.projector.catch_up()
    finally:
        Transactions._handlers[Payment.Associated] = original
    assert ctx.projector.position("transactions") == position
    sql = "SELECT association_source FROM transactions WHERE id = ?"
    assert ctx.store.database().query_one(sql, (payment_id,)) == {"association_source": None}
    ctx.projector.catch_up()
    assert ctx.store.database().query_one(sql, (payment_id,)) == {"association_source": "manual"}


def test_two_processes_catching_up_apply_each_event_once(
    make_components: ComponentsFactory, postgres_url: str, clock: PinnedClock
) -> None:
    """Two projectors on one PostgreSQL database race; every event is applied exactly once."""
    writer = make_components("postgres", clock)
    other = make_components("postgres", clock)
    practice = new_practice(writer)
    for _ in range(3):
        for amount in range(100, 140):
            payment = Payment.capture(
                id=uuid4(),
                practice_id=practice.id,
                amount=Money(amount),
                method=Method.TERMINAL,
                card=CardSummary("visa", "4242"),
                transaction_id=f"t{amount}",
                batch_date=datetime(2026, 3, 4).date(),
                settles_at=datetime(2026, 3, 5, 5, 59, tzinfo=UTC),
                terminal_id="t1",
                at=clock.current,
                actor="user:test",
            )
            writer.store.save(payment)
        threads = [threading.Thread(target=p.catch_up) for p in (writer.projector, other.projector)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    count = writer.store.database().query_one(
        "SELECT COUNT(*) AS n, SUM(amount) AS total FROM transactions"
    )
    assert count is not None
    assert int(count["n"]) == 120
    assert int(count["total"]) == 3 * sum(range(100, 140))


def test_a_failing_view_neither_fails_nor_repeats_the_command(
    ctx: Components, clock: PinnedClock
) -> None:
    practice = new_practice(ctx)
    original = Transactions._handlers[Payment.Captured]

    def broken(self: Transactions, tx: object, event: object, pos: int) -> None:
        raise IntegrityError("a view cannot take this row")

    Transactions._handlers[Payment.Captured] = broken
    try:
        payment = collect_payment(
            ctx,
            practice_id=practice.id,
            amount=700,
            method=Method.VIRTUAL_TERMINAL,
            card=CARD,
            actor="user:test",
        )
    finally:
        Transactions._handlers[Payment.Captured] = original
    captured = [
        n
        for n in ctx.store.recorder.select_notifications(start=0, limit=100)
        if n.originator_id == payment.id
    ]
    assert len(captured) == 1  # saved once, not once per retry
    ctx.projector.catch_up()  # the view recovers when it can
    assert ctx.store.database().query_one(
        "SELECT amount FROM transactions WHERE id = ?", (str(payment.id),)
    ) == {"amount": 700}


def test_a_refund_retried_with_its_key_is_recorded_once(
    ctx: Components, clock: PinnedClock
) -> None:
    practice = new_practice(ctx)
    payment = collect_payment(
        ctx,
        practice_id=practice.id,
        amount=5000,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        actor="user:test",
    )
    clock.move(days=1)
    first = refund_payment(
        ctx,
        practice_id=practice.id,
        payment_id=payment.id,
        amount=300,
        actor="user:test",
        key="r-1",
    )
    again = refund_payment(
        ctx,
        practice_id=practice.id,
        payment_id=payment.id,
        amount=300,
        actor="user:test",
        key="r-1",
    )
    assert again.refund_id == first.refund_id
    assert ctx.get(Payment, payment.id, practice.id).refunded.cents == 300


def test_a_view_kept_by_another_process_is_not_moved_inline(
    ctx: Components, clock: PinnedClock
) -> None:
    """Inline application moves only the views this process keeps: a view of the same
    database that its projector does not have (e.g. the writeback intake, taken in by the
    Kafka consumers instead) stays where it is, for whoever keeps it."""
    some_history(ctx, clock)
    head = ctx.store.last_position()
    with ctx.store.database().transaction() as tx:
        tx.execute(
            "INSERT INTO projection_tracking (name, position, schema) VALUES (?, ?, ?)",
            ("kept_elsewhere", head, "x"),
        )
    practice_id = ctx.store.database().query("SELECT id FROM practices")[0]["id"]
    payment_id = ctx.store.database().query(
        "SELECT id FROM transactions WHERE association = 'unassociated' AND practice_id = ?",
        (practice_id,),
    )[0]["id"]
    payment = ctx.store.repository.get(UUID(payment_id))
    payment.associate(
        source=AssociationSource.MANUAL, pms_reference=None, at=clock.current, actor="user:test"
    )
    ctx.store.save(payment)
    assert ctx.store.last_position() > head
    assert ctx.projector.position("transactions") == ctx.store.last_position()
    assert ctx.projector.position("kept_elsewhere") == head
