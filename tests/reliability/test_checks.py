"""The fault run's checks can fail: each sees the fault it is there to see."""

from __future__ import annotations

from collections import Counter

from domain.payments import Method
from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from services.app.payments import collect_payment
from services.app.practices import create_practice
from services.context import Components
from tests.conftest import ComponentsFactory, PinnedClock
from tests.fakes.opendental import FakeOpenDental
from tests.reliability.harness import (
    Command,
    Outcome,
    Plan,
    check_commands,
    check_pms,
    check_views,
)


def some_payments(ctx: Components, *amounts: int) -> list[str]:
    practice = create_practice(
        ctx,
        name="Check Dental",
        timezone="America/New_York",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1234"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    return [
        str(
            collect_payment(
                ctx,
                practice_id=practice.id,
                amount=amount,
                method=Method.TERMINAL,
                terminal_id="t",
                actor="user:x",
            ).id
        )
        for amount in amounts
    ]


def outcome_of(*commands: Command) -> Outcome:
    return Outcome(Plan(), list(commands), Counter())


def test_a_lost_and_a_duplicated_payment_are_seen(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("sqlite", clock)
    one, two, _ = some_payments(ctx, 1001, 1002, 1002)
    outcome = outcome_of(
        Command("payment", "k1", 1001, acked=True, answer_id=one),
        Command("payment", "k2", 1002, acked=True, answer_id=two),  # stored twice
        Command("payment", "k3", 1003, acked=True, answer_id="never-stored"),  # lost
    )
    check_commands(ctx, outcome)
    assert (outcome.lost, outcome.duplicated) == (1, 1), outcome.failures
    fine = outcome_of(Command("payment", "k1", 1001, acked=True, answer_id=one))
    check_commands(ctx, fine)
    assert (fine.lost, fine.duplicated) == (0, 0)


def test_a_view_that_differs_from_its_rebuild_is_seen(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("sqlite", clock)
    some_payments(ctx, 1001)
    equal = outcome_of()
    check_views(ctx, equal)
    assert equal.views_equal and equal.failures == []
    with ctx.store.database().transaction() as tx:
        tx.execute("UPDATE transactions SET amount = amount + 1")
    differs = outcome_of()
    check_views(ctx, differs)
    assert not differs.views_equal
    assert any("transactions" in f for f in differs.failures), differs.failures


def test_a_payment_written_twice_to_the_pms_is_seen(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("sqlite", clock)
    fake = FakeOpenDental()
    fake.payments = [{"PayNote": "card payment [ref:abc]"}, {"PayNote": "card payment [ref:abc]"}]
    outcome = outcome_of()
    check_pms(ctx, fake, outcome)
    assert outcome.duplicated == 1 and outcome.failures, outcome.failures
