"""Money moves once per intent: a charge, a void or a refund asks the processor under one
reference fixed before any retry, whatever version conflict happens in between.

The sandbox processor behaves as a real gateway does: the same reference answers the
first result again and moves no more money, and it counts what it moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.processor.port import CardInput, OutcomeUnknown, ReferenceReused
from adapters.processor.sandbox import SandboxProcessor
from domain.payments import AssociationSource, Method, Payment, ReversalKind
from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from services.app.intents import NOT_MADE
from services.app.payments import associate_payment, collect_payment, refund_payment
from services.app.practices import create_practice
from services.app.reconcile import SETTLE_AFTER, reconcile_due
from services.app.settlement import close_due_batches
from services.context import Components
from tests.conftest import PinnedClock

CARD = CardInput("4242424242424242", 12, 2030, "123")
DAY = 86400


def processor(ctx: Components) -> SandboxProcessor:
    assert isinstance(ctx.processor, SandboxProcessor)
    return ctx.processor


def paid(ctx: Components, amount: int = 10_000) -> Payment:
    practice = create_practice(
        ctx,
        name="Once Dental",
        timezone="America/New_York",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1111"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    return collect_payment(
        ctx,
        practice_id=practice.id,
        amount=amount,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        actor="user:admin",
    )


@contextmanager
def a_concurrent_associate(ctx: Components, payment: Payment, *, at_save: int) -> Iterator[None]:
    """Just before the refund's `at_save`-th save of the payment, another writer (the
    writeback worker) associates it, so that save meets a version conflict."""
    real_save = ctx.save
    saves = {"n": 0, "injected": False}

    def save(*aggregates: Any, **kw: Any) -> int:
        if not saves["injected"] and any(a.id == payment.id for a in aggregates):
            saves["n"] += 1
            if saves["n"] == at_save:
                saves["injected"] = True
                associate_payment(
                    ctx,
                    practice_id=payment.practice_id,
                    payment_id=payment.id,
                    source=AssociationSource.AUTOMATIC,
                    pms_reference="PMS-1",
                    actor="system:writeback",
                )
        return real_save(*aggregates, **kw)

    ctx.save = save  # type: ignore[method-assign]
    try:
        yield
    finally:
        ctx.save = real_save  # type: ignore[method-assign]
    assert saves["injected"], "the conflict was not forced"


@pytest.mark.parametrize("key", [None, "refund-key-1"])
@pytest.mark.parametrize("at_save", [1, 2])
def test_a_refund_racing_an_associate_refunds_once(
    ctx: Components, clock: PinnedClock, key: str | None, at_save: int
) -> None:
    payment = paid(ctx)
    clock.move(seconds=DAY)  # past the cut-off: the payment settles, so this is a refund
    close_due_batches(ctx, payment.practice_id)
    refund = partial_refund(ctx, payment, key)
    with a_concurrent_associate(ctx, payment, at_save=at_save):
        reversal = refund()
    assert reversal.kind == ReversalKind.REFUND
    stored = ctx.get(Payment, payment.id, payment.practice_id)
    assert [r.amount for r in stored.refunds] == [2500]
    assert stored.is_associated
    assert processor(ctx).movements["refund"] == 1
    assert stored.refunds[0].processor_refund_id == reversal.payment.refunds[0].processor_refund_id


@pytest.mark.parametrize("key", [None, "void-key-1"])
def test_a_void_racing_an_associate_voids_once(ctx: Components, key: str | None) -> None:
    payment = paid(ctx)
    with a_concurrent_associate(ctx, payment, at_save=1):
        reversal = refund_payment(
            ctx,
            practice_id=payment.practice_id,
            payment_id=payment.id,
            amount=None,
            actor="user:admin",
            key=key,
        )
    assert reversal.kind == ReversalKind.VOID
    assert processor(ctx).movements["void"] == 1


def test_a_refund_retried_with_its_key_after_a_lost_answer_reads_it_back(
    ctx: Components, clock: PinnedClock
) -> None:
    """The money moved, then the answer was lost: the same request again reads the
    refund back under its id and records it, without asking for it a second time."""
    payment = paid(ctx)
    clock.move(seconds=DAY)
    sandbox = processor(ctx)
    real_refund = sandbox.refund

    def crash(**kwargs: Any) -> str:
        real_refund(**kwargs)  # the money moved, then the connection died
        raise RuntimeError("connection reset")

    sandbox.refund = crash  # type: ignore[method-assign]
    with pytest.raises(OutcomeUnknown):
        partial_refund(ctx, payment, "crash-key")()
    sandbox.refund = real_refund  # type: ignore[method-assign]
    unknown = ctx.get(Payment, payment.id, payment.practice_id)
    assert [p.unknown_since is not None for p in unknown.pending_refunds.values()] == [True]
    reversal = partial_refund(ctx, payment, "crash-key")()
    stored = ctx.get(Payment, payment.id, payment.practice_id)
    assert [r.amount for r in stored.refunds] == [2500]
    assert reversal.refund_id == stored.refunds[0].id
    assert sandbox.movements["refund"] == 1
    assert sandbox.calls["refund"] == 1  # read back, not sent again


def test_an_intent_left_without_a_key_is_never_sent_by_the_next_refund(
    ctx: Components, clock: PinnedClock
) -> None:
    """A refund whose answer never came, then the same refund asked again with no key (a
    new intent): the patient is refunded once. The old intent is the reconciler's: read
    back absent, it ends refused and frees its amount; it is never sent."""
    payment = paid(ctx)
    clock.move(seconds=DAY)
    sandbox = processor(ctx)
    real_refund = sandbox.refund

    def crash(**kwargs: Any) -> str:
        raise RuntimeError("the processor did not answer")

    sandbox.refund = crash  # type: ignore[method-assign]
    with pytest.raises(OutcomeUnknown):
        partial_refund(ctx, payment, None)()
    sandbox.refund = real_refund  # type: ignore[method-assign]
    left = ctx.get(Payment, payment.id, payment.practice_id)
    assert left.remaining.cents == 7500  # the intent holds its amount
    partial_refund(ctx, payment, None)()
    stored = ctx.get(Payment, payment.id, payment.practice_id)
    assert [r.amount for r in stored.refunds] == [2500]
    assert len(stored.pending_refunds) == 1
    clock.move(seconds=SETTLE_AFTER.total_seconds())
    assert reconcile_due(ctx, payment.practice_id) == 1
    stored = ctx.get(Payment, payment.id, payment.practice_id)
    assert [r.amount for r in stored.refunds] == [2500]
    assert stored.pending_refunds == {}
    assert list(stored.refused_refunds.values()) == [NOT_MADE]
    assert stored.remaining.cents == 7500
    assert sandbox.movements["refund"] == 1


def partial_refund(ctx: Components, payment: Payment, key: str | None) -> Callable[[], Any]:
    return lambda: refund_payment(
        ctx,
        practice_id=payment.practice_id,
        payment_id=payment.id,
        amount=2500,
        actor="user:admin",
        key=key,
    )


# -- the sandbox processor behaves like a real one ---------------------------------------


def test_the_same_reference_answers_the_same_result_and_moves_money_once() -> None:
    sandbox = SandboxProcessor()
    reference = uuid4()
    first = sandbox.charge(reference=reference, amount=500, card=CARD)
    again = sandbox.charge(reference=reference, amount=500, card=CARD)
    assert first == again and first.approved
    refund = uuid4()
    ids = {
        sandbox.refund(transaction_id=first.transaction_id or "", amount=100, reference=refund)
        for _ in range(3)
    }
    assert len(ids) == 1
    assert sandbox.calls == {"charge": 2, "refund": 3}
    assert sandbox.movements == {"charge": 1, "refund": 1}


def test_a_reference_reused_for_another_amount_is_refused() -> None:
    sandbox = SandboxProcessor()
    reference: UUID = uuid4()
    sandbox.refund(transaction_id="txn_1", amount=100, reference=reference)
    with pytest.raises(ReferenceReused):
        sandbox.refund(transaction_id="txn_1", amount=200, reference=reference)
    assert sandbox.movements == {"refund": 1}
