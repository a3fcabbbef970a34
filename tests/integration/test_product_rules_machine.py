"""Every product rule at once, after every step of any sequence of office work and time.

A Hypothesis state machine drives the use cases (services/*) of one practice: payments
(approved and declined), refund actions (voids before the batch closes, refunds
after), payment requests (new ones supersede), pay-page payments (in full or in part,
including on expired, superseded, cancelled and paid links), cancels, snoozes, balance
snapshots, and the clock moving over cut-offs, nights, weekends, Federal Reserve
holidays and the two-week expiry, with the due work run as the scheduler would.

After every step all the rules hold together:

- deposits add up to the cent: each deposit's items add up to it; the deposits hold
  exactly the settled payments and the refunds of closed batches, each once;
- nothing settles twice: a payment has at most one `Settled` event, and a payment or a
  refund is in at most one batch;
- a patient has at most one outstanding request;
- no refund goes beyond what was captured (in the ledger and at the processor);
- an expired, superseded, cancelled or paid request takes no payment;
- the card processor moved money once per payment, void and refund in the ledger;
- the views equal a rebuild from position 0 (checked at the end of each run, where
  the views have seen the whole history; and every few steps on the way).

SQLite in the bounded suite; PostgreSQL with fewer examples.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from adapters.processor.port import CardInput
from adapters.processor.sandbox import SandboxProcessor
from domain.batches import Batch
from domain.errors import PaymentsError
from domain.payments import Method, Payment, Status
from domain.practices import DepositAccount, PmsKind
from domain.receivables import Balance, SnoozeReason
from domain.requests import Channel, PaymentRequest, RequestStatus
from domain.schedule import parse_cutoff
from projections.deposits import deposit_items
from services.app import receivables, requests
from services.app.due import run_due_work
from services.app.payments import collect_payment, refund_payment
from services.app.practices import change_settings, create_practice, register_patient
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.conftest import PinnedClock
from tests.integration.test_store_contract import table_dump

APPROVE, DECLINE = "4242424242424242", "4000000000000002"
ACTOR = "user:front-desk"
#: moments to start at (UTC): a plain Wednesday morning; the Friday evening before
#: Memorial Day; the day before the observed Independence Day; New Year's Eve
STARTS = [
    datetime(2026, 3, 4, 15, 0, tzinfo=UTC),
    datetime(2026, 5, 22, 21, 30, tzinfo=UTC),
    datetime(2026, 7, 2, 18, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 20, 0, tzinfo=UTC),
]
#: examples of the bounded run (PAYLEDGER_RULES_EXAMPLES=500 for a long one)
EXAMPLES = int(os.environ.get("PAYLEDGER_RULES_EXAMPLES", "20"))
#: clock moves (hours): a little, over tonight's cut-off, a day, a weekend, past expiry
MOVES = st.sampled_from([1, 5, 9, 24, 26, 49, 72, 24 * 14, 24 * 15])


class ProductRules(RuleBasedStateMachine):
    backend = "sqlite"
    postgres_url: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="payledger-rules-"))
        self.ctx: Components | None = None
        self.payments: list[UUID] = []
        self.requests: list[UUID] = []
        self.patients: list[UUID] = []
        self.steps = 0

    # -- set-up --------------------------------------------------------------------

    @initialize(
        start=st.sampled_from(STARTS),
        cutoff=st.sampled_from(["23:59", "18:00", "00:30"]),
        fee_rate=st.sampled_from([0, 175]),
    )
    def open_the_office(self, start: datetime, cutoff: str, fee_rate: int) -> None:
        self.clock = PinnedClock(start)
        url = type(self).postgres_url
        if url is not None:
            url = fresh_postgres(url)
        self.ctx = build_components(
            Settings(data_dir=self.tmp, database_url=url, run_scheduler=False),
            real_clock=self.clock,
        )
        practice = create_practice(
            self.ctx,
            name="Rules Dental",
            timezone="America/New_York",
            pms=PmsKind.DENTRIX,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "1234"),
            batch_cutoff=parse_cutoff(cutoff),
            actor="operator",
        )
        self.practice_id = practice.id
        change_settings(self.ctx, practice.id, {"fee_rate_bps": fee_rate}, "operator")
        for n in range(3):
            patient = register_patient(
                self.ctx,
                practice_id=practice.id,
                pms_patient_id=str(100 + n),
                first_name=f"Pat{n}",
                last_name="Rules",
                email=f"pat{n}@example.com",
                phone=f"+1617555010{n}",
                guarantor_id=None,
                actor=ACTOR,
            )
            self.patients.append(patient.id)

    @property
    def led(self) -> Components:
        assert self.ctx is not None
        return self.ctx

    @property
    def processor(self) -> SandboxProcessor:
        processor = self.led.processor
        assert isinstance(processor, SandboxProcessor)
        return processor

    def now(self) -> datetime:
        return self.led.clock.now(self.practice_id)

    def payment(self, index: int) -> Payment:
        return self.led.get(Payment, self.payments[index % len(self.payments)], self.practice_id)

    def request(self, index: int) -> PaymentRequest:
        return self.led.get(
            PaymentRequest, self.requests[index % len(self.requests)], self.practice_id
        )

    # -- office work ---------------------------------------------------------------

    @rule(
        amount=st.integers(1, 300_000),
        card=st.sampled_from([APPROVE, APPROVE, DECLINE]),
        patient=st.integers(0, 3),
    )
    def take_a_payment(self, amount: int, card: str, patient: int) -> None:
        payment = collect_payment(
            self.led,
            practice_id=self.practice_id,
            amount=amount,
            method=Method.VIRTUAL_TERMINAL,
            card=CardInput(card, 12, 2030, "123"),
            actor=ACTOR,
            patient_id=self.patients[patient] if patient < 3 else None,
        )
        assert payment.status == (Status.APPROVED if card == APPROVE else Status.DECLINED)
        self.payments.append(payment.id)

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 50), percent=st.integers(1, 120))
    def refund_action(self, index: int, percent: int) -> None:
        before = self.payment(index)
        amount = max(1, before.amount.cents * percent // 100)
        left = before.amount.cents - before.refunded.cents
        try:
            refund_payment(
                self.led,
                practice_id=self.practice_id,
                payment_id=before.id,
                amount=amount if before.status == Status.SETTLED else None,
                actor=ACTOR,
            )
        except PaymentsError:
            after = self.payment(index)
            assert after.refunded == before.refunded and after.status == before.status
            return
        after = self.payment(index)
        if before.status == Status.APPROVED:
            assert after.status == Status.VOIDED, "before the batch closes: a void"
        else:
            assert before.status == Status.SETTLED and amount <= left
            assert after.refunded.cents == before.refunded.cents + amount

    @rule(patient=st.integers(0, 2), amount=st.integers(1, 200_000), sms=st.booleans())
    def send_a_request(self, patient: int, amount: int, sms: bool) -> None:
        with contextlib.suppress(PaymentsError):  # a snoozed patient is refused
            request = requests.send_request(
                self.led,
                practice_id=self.practice_id,
                patient_id=self.patients[patient],
                amount=amount,
                channel=Channel.SMS if sms else Channel.EMAIL,
                actor=ACTOR,
            )
            self.requests.append(request.id)

    @precondition(lambda self: self.requests)
    @rule(
        index=st.integers(0, 50),
        percent=st.sampled_from([100, 100, 40, 101]),
        card=st.sampled_from([APPROVE, APPROVE, DECLINE]),
    )
    def pay_on_the_page(self, index: int, percent: int, card: str) -> None:
        before = self.request(index)
        token = requests.make_token(self.led.secret, before.id, before.token_nonce)
        link = requests.open_link(self.led, token)
        amount = max(1, before.amount.cents * percent // 100)
        open_ = before.is_outstanding(self.now())
        count = len(self.led.store.database().query("SELECT id FROM transactions"))
        charges = self.processor.movements["charge"]
        try:
            payment = requests.pay_request(
                self.led,
                link,
                amount=amount,
                card=CardInput(card, 12, 2030, "123"),
                attempt_id=f"attempt-{self.steps}",
            )
        except PaymentsError:
            assert not open_ or amount > before.owed.cents or card == DECLINE
            assert self.processor.movements["charge"] == charges, "a refused page moved money"
            return
        assert open_, "an expired, superseded, cancelled or paid request took a payment"
        assert amount <= before.owed.cents
        after = self.request(index)
        if payment.status == Status.APPROVED:
            assert payment.id in after.paid_by
            if amount == before.owed.cents:  # what was owed completes it; less leaves the rest
                assert after.status == RequestStatus.COMPLETED and after.payment_id == payment.id
            else:
                assert after.status == RequestStatus.REQUESTED
            self.payments.append(payment.id)
        else:
            assert after.status == RequestStatus.REQUESTED
        assert len(self.led.store.database().query("SELECT id FROM transactions")) >= count

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, 50))
    def cancel_a_request(self, index: int) -> None:
        with contextlib.suppress(PaymentsError):
            requests.cancel_request(
                self.led,
                practice_id=self.practice_id,
                request_id=self.request(index).id,
                actor=ACTOR,
            )

    @rule(patient=st.integers(0, 2), days=st.integers(1, 30))
    def snooze(self, patient: int, days: int) -> None:
        until = (self.now() - timedelta(hours=5)).date() + timedelta(days=days)
        with contextlib.suppress(PaymentsError):
            receivables.snooze(
                self.led,
                practice_id=self.practice_id,
                patient_id=self.patients[patient],
                until=until,
                reason=SnoozeReason.OTHER,
                note=None,
                actor=ACTOR,
            )

    @rule(patient=st.integers(0, 2))
    def end_a_snooze(self, patient: int) -> None:
        with contextlib.suppress(PaymentsError):
            receivables.end_snooze(
                self.led,
                practice_id=self.practice_id,
                patient_id=self.patients[patient],
                actor=ACTOR,
            )

    @rule(patient=st.integers(0, 2), total=st.integers(-5_000, 500_000))
    def balance_snapshot(self, patient: int, total: int) -> None:
        receivables.record_balance(
            self.led,
            practice_id=self.practice_id,
            patient_id=self.patients[patient],
            balance=balance_of(total),
            source="pms",
            actor=ACTOR,
        )

    @rule(hours=MOVES)
    def time_passes(self, hours: int) -> None:
        self.clock.move(hours=hours)
        run_due_work(self.led, self.practice_id)

    # -- the rules -----------------------------------------------------------------

    @invariant()
    def every_rule_holds(self) -> None:
        if self.ctx is None:
            return
        self.steps += 1
        ctx, practice_id = self.led, self.practice_id
        ctx.catch_up()
        payments = [ctx.get(Payment, pid, practice_id) for pid in self.payments]
        now = self.now()

        # No refund beyond capture; nothing settles twice.
        for p in payments:
            assert p.refunded.cents <= p.amount.cents, p.id
            assert p.refunded.cents == 0 or p.status == Status.SETTLED, p.id
            settled = [
                e
                for e in ctx.store.repository.event_store.get(p.id)
                if type(e).__name__ == "Settled"
            ]
            assert len(settled) <= (1 if p.status == Status.SETTLED else 0), p.id

        # The processor moved money once per payment, void and refund in the ledger.
        movements = self.processor.movements
        assert movements["charge"] == sum(1 for p in payments if p.status != Status.DECLINED)
        assert movements["void"] == sum(1 for p in payments if p.status == Status.VOIDED)
        assert movements["refund"] == sum(len(p.refunds) for p in payments)

        # Batches and deposits: each item once; exactly the settled payments and the
        # refunds of closed batches; deposits add up to the cent.
        batch_rows = ctx.store.database().query(
            "SELECT id, batch_id, net_amount FROM deposits WHERE practice_id = ?",
            (str(practice_id),),
        )
        in_batches: Counter[tuple[str, str]] = Counter()
        in_deposits: Counter[tuple[str, str]] = Counter()
        for row in batch_rows:
            batch = ctx.get(Batch, UUID(row["batch_id"]), practice_id)
            in_batches.update((i.kind, str(i.refund_id or i.payment_id)) for i in batch.items)
            items = deposit_items(ctx.store.database(), UUID(row["id"]))
            assert sum(int(i["net_amount"]) for i in items) == int(row["net_amount"])
            in_deposits.update((i["kind"], i["refund_id"] or i["payment_id"]) for i in items)
        assert all(n == 1 for n in in_batches.values()), "an item is in two batches"
        assert in_deposits == in_batches, "the deposits are the batches"
        settled_ids = {str(p.id) for p in payments if p.status == Status.SETTLED}
        assert {i for kind, i in in_batches if kind == "payment"} == settled_ids
        batched_refunds = {str(r.id) for p in payments for r in p.refunds if r.batch_id is not None}
        assert {i for kind, i in in_batches if kind == "refund"} == batched_refunds
        gross = sum(p.amount.cents for p in payments if p.status == Status.SETTLED)
        refunded = sum(r.amount for p in payments for r in p.refunds if r.batch_id)
        fees_and_net = ctx.store.database().query_one(
            "SELECT COALESCE(SUM(net_amount), 0) AS net, COALESCE(SUM(fees_amount), 0) AS fees "
            "FROM deposits WHERE practice_id = ?",
            (str(practice_id),),
        )
        assert fees_and_net is not None
        assert int(fees_and_net["net"]) + int(fees_and_net["fees"]) == gross - refunded

        # Requests: at most one outstanding per patient; a closed one took no payment
        # after it closed; a paid one by a payment of its amount or less.
        outstanding: Counter[UUID] = Counter()
        for rid in self.requests:
            r = ctx.get(PaymentRequest, rid, practice_id)
            if r.is_outstanding(now):
                outstanding[r.patient_id] += 1
            for pid, cents in r.paid_by.items():  # paid in full, or in part while open
                paid = ctx.get(Payment, pid, practice_id)
                assert paid.amount.cents == cents and paid.occurred_at < r.expires_at
            if r.status == RequestStatus.COMPLETED:
                assert r.paid_amount == r.amount and r.payment_id in r.paid_by
            else:
                assert r.payment_id is None
        assert all(n <= 1 for n in outstanding.values()), outstanding
        views = ctx.store.database().query(
            "SELECT patient_id, COUNT(*) AS n FROM payment_requests "
            "WHERE practice_id = ? AND status = 'requested' AND expires_at > ? "
            "GROUP BY patient_id",
            (str(practice_id), now.isoformat().replace("+00:00", "Z")),
        )
        assert all(int(v["n"]) <= 1 for v in views), views

        if self.steps % 10 == 0:
            self.views_equal_a_rebuild()

    def views_equal_a_rebuild(self) -> None:
        for projection in self.led.projector.projections:
            before = table_dump(self.led, projection.tables)
            self.led.projector.rebuild(projection.name)
            assert table_dump(self.led, projection.tables) == before, projection.name

    def teardown(self) -> None:
        try:
            if self.ctx is not None:
                self.views_equal_a_rebuild()
                self.ctx.store.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def balance_of(total: int) -> Balance:
    return Balance(
        total=total,
        bal_0_30=total,
        bal_31_60=0,
        bal_61_90=0,
        bal_over_90=0,
        insurance_estimate=0,
        patient_portion=total,
        on_payment_plan=False,
        is_guarantor=True,
        last_payment_date=None,
    )


def fresh_postgres(server: str) -> str:
    import uuid

    import psycopg

    name = f"payledger_rules_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + "/" + name


def drop_postgres(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(machine: type[RuleBasedStateMachine], examples: int, steps: int) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_the_product_rules_hold_after_every_step_on_sqlite() -> None:
    run(ProductRules, examples=EXAMPLES, steps=25)


def test_the_product_rules_hold_after_every_step_on_postgres(postgres_server: str) -> None:
    class OnPostgres(ProductRules):
        postgres_url = postgres_server

        def teardown(self) -> None:
            url = str(self.led.settings.database_url) if self.ctx is not None else None
            super().teardown()
            if url is not None:
                drop_postgres(postgres_server, url.rsplit("/", 1)[1])

    run(OnPostgres, examples=max(3, EXAMPLES // 5), steps=20)
