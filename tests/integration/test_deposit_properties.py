"""Property: whatever happens, deposits add up to the cent and no payment settles twice.

For any sequence of payments (approved or declined), refund actions (voids
and partial refunds) and clock advances: the sum of all deposits equals the
approved, unvoided payments less refunds less fees; each deposit's items
add up to it; no payment or refund is in two batches.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.processor.port import CardInput
from domain.batches import Batch
from domain.errors import PaymentsError
from domain.payments import Method, Payment, Status
from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from projections.deposits import deposit_items
from services.app.due import run_due_work
from services.app.payments import collect_payment, refund_payment
from services.app.practices import change_settings, create_practice
from services.bootstrap import build_components
from services.settings import Settings
from tests.conftest import PinnedClock

CARDS = ["4242424242424242", "4242424242424242", "4242424242424242", "4000000000000002"]

actions = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(1, 500_000), st.sampled_from(CARDS)),
        st.tuples(st.just("refund"), st.integers(0, 50), st.integers(1, 100)),
        st.tuples(st.just("advance"), st.integers(1, 60), st.just("")),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=actions,
    fee_rate=st.sampled_from([0, 0, 175, 290]),
    cutoff=st.sampled_from(["23:59", "18:00", "00:30"]),
)
def test_deposits_reconcile_with_payments(
    actions: list[tuple[str, int, object]], fee_rate: int, cutoff: str
) -> None:
    clock = PinnedClock(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        ctx = build_components(Settings(data_dir=Path(tmp), run_scheduler=False), real_clock=clock)
        practice = create_practice(
            ctx,
            name="Prop Dental",
            timezone="America/Los_Angeles",
            pms=PmsKind.EAGLESOFT,
            auto_writeback=False,
            deposit_account=DepositAccount("Savings", "4321"),
            batch_cutoff=parse_cutoff(cutoff),
            actor="operator",
        )
        change_settings(ctx, practice.id, {"fee_rate_bps": fee_rate}, "operator")
        payments: list[UUID] = []
        for kind, a, b in actions:
            if kind == "pay":
                payment = collect_payment(
                    ctx,
                    practice_id=practice.id,
                    amount=a,
                    method=Method.VIRTUAL_TERMINAL,
                    card=CardInput(str(b), 12, 2030, "123"),
                    actor="user:prop",
                )
                payments.append(payment.id)
            elif kind == "refund" and payments:
                target = ctx.get(Payment, payments[a % len(payments)], practice.id)
                amount = max(1, target.amount.cents * int(str(b)) // 100)
                # a refusal (declined, voided, exceeding) must change nothing
                with contextlib.suppress(PaymentsError):
                    refund_payment(
                        ctx,
                        practice_id=practice.id,
                        payment_id=target.id,
                        amount=amount if target.status == Status.SETTLED else None,
                        actor="user:prop",
                    )
            elif kind == "advance":
                clock.move(hours=a)
                run_due_work(ctx, practice.id)
        clock.move(days=5)
        run_due_work(ctx, practice.id)

        settled = [ctx.get(Payment, pid, practice.id) for pid in payments]
        sales = sum(p.amount.cents for p in settled if p.status == Status.SETTLED)
        refunds = sum(p.refunded.cents for p in settled)
        assert all(p.status in (Status.SETTLED, Status.VOIDED, Status.DECLINED) for p in settled)
        assert all(not p.refunds for p in settled if p.status != Status.SETTLED)

        deposits = ctx.store.database().query("SELECT * FROM deposits")
        fees = sum(int(d["fees_amount"]) for d in deposits)
        assert sum(int(d["net_amount"]) for d in deposits) == sales - refunds - fees
        if fee_rate == 0:
            assert fees == 0
        lines = Counter()
        for d in deposits:
            items = deposit_items(ctx.store.database(), UUID(d["id"]))
            assert sum(int(i["net_amount"]) for i in items) == int(d["net_amount"])
            lines.update((i["kind"], i["refund_id"] or i["payment_id"]) for i in items)
        assert all(count == 1 for count in lines.values()), "an item is in two deposits"
        batch_items = Counter()
        for d in deposits:
            batch = ctx.get(Batch, UUID(d["batch_id"]), practice.id)
            batch_items.update((i.kind, i.refund_id or i.payment_id) for i in batch.items)
        assert all(count == 1 for count in batch_items.values()), "an item is in two batches"
        assert sum(1 for kind, _ in batch_items if kind == "payment") == sum(
            1 for p in settled if p.status == Status.SETTLED
        )
        ctx.store.close()
