"""The use-case suite's office: Elm Dental in New York (batch cut-off 23:59, deposits to
Checking ****6789), on a ledger in memory (tests/usecases/memory.py), with the clock
pinned at Wednesday 4 March 2026, 10:00 in New York (tests/conftest.py's `clock`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from uuid import UUID

import pytest

from adapters.processor.port import CardInput
from adapters.processor.sandbox import SandboxProcessor
from domain.patients import Patient
from domain.payments import AssociationSource, Method, Payment
from domain.practices import DepositAccount, PmsKind, Practice
from domain.requests import Channel, PaymentRequest
from projections.deposits import DepositItemRow, DepositRow, deposit_items, get_deposit
from projections.transactions import TransactionRow, list_transactions
from services.app.due import DueWork, run_due_work
from services.app.payments import Reversal, associate_payment, collect_payment, refund_payment
from services.app.practices import change_settings, create_practice, register_patient
from services.app.requests import send_request
from tests.conftest import PinnedClock
from tests.faulty_processor import FaultyProcessor
from tests.usecases.memory import MemoryLedger

ADMIN = "user:front-desk"
APPROVED = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"


def card(number: str = APPROVED) -> CardInput:
    return CardInput(number=number, exp_month=12, exp_year=2030, cvc="123")


@dataclass
class Office:
    """One practice on its ledger, and what its front desk does most."""

    ledger: MemoryLedger
    clock: PinnedClock
    practice: Practice

    @property
    def id(self) -> UUID:
        return self.practice.id

    def pay(self, amount: int, number: str = APPROVED, patient_id: UUID | None = None) -> Payment:
        """A payment at the virtual terminal (card keyed in by staff)."""
        return collect_payment(
            self.ledger,
            practice_id=self.id,
            amount=amount,
            method=Method.VIRTUAL_TERMINAL,
            card=card(number),
            actor=ADMIN,
            patient_id=patient_id,
        )

    def patient(
        self, pms_id: str = "501", first_name: str = "Rosa", guarantor_id: UUID | None = None
    ) -> Patient:
        return register_patient(
            self.ledger,
            practice_id=self.id,
            pms_patient_id=pms_id,
            first_name=first_name,
            last_name="Diaz",
            email="rosa@example.com",
            phone="+16175550123",
            guarantor_id=guarantor_id,
            actor=ADMIN,
        )

    def refund(
        self, payment_id: UUID, amount: int | None = None, key: str | None = None
    ) -> Reversal:
        """The Refund action (a void before the batch closes, a refund after)."""
        return refund_payment(
            self.ledger,
            practice_id=self.id,
            payment_id=payment_id,
            amount=amount,
            actor=ADMIN,
            key=key,
        )

    def associate(
        self,
        payment_id: UUID,
        reference: str | None = None,
        source: AssociationSource = AssociationSource.MANUAL,
        refund_id: UUID | None = None,
    ) -> Payment:
        """Mark the payment (or one refund) recorded in the PMS, by hand by default."""
        return associate_payment(
            self.ledger,
            practice_id=self.id,
            payment_id=payment_id,
            source=source,
            pms_reference=reference,
            actor=ADMIN,
            refund_id=refund_id,
        )

    def request(
        self,
        patient: Patient,
        amount: int,
        channel: Channel = Channel.SMS,
        override_snooze: bool = False,
    ) -> PaymentRequest:
        """Send the patient a pay link."""
        return send_request(
            self.ledger,
            practice_id=self.id,
            patient_id=patient.id,
            amount=amount,
            channel=channel,
            actor=ADMIN,
            override_snooze=override_snooze,
        )

    def advance(self, **delta: float) -> DueWork:
        """Time passes, and what fell due runs (as the sandbox clock's advance does)."""
        self.clock.move(**delta)
        return run_due_work(self.ledger, self.id)

    def payment(self, payment_id: UUID) -> Payment:
        return self.ledger.get(Payment, payment_id, self.id)

    def transactions(self) -> dict[UUID, TransactionRow]:
        """The Transactions view's rows (every date), by payment."""
        rows = self.ledger.reads(
            list_transactions,
            self.id,
            date_from="2000-01-01",
            date_to="2100-01-01",
            association=None,
            patient_id=None,
            after=None,
            limit=1000,
        )
        return {UUID(r["id"]): r for r in rows}

    def deposit_of(self, payment_id: UUID) -> tuple[DepositRow, list[DepositItemRow]]:
        """The deposit a payment is in (the Deposits view's row) and its items."""
        deposit_id = self.transactions()[payment_id]["deposit_id"]
        assert deposit_id is not None, f"payment {payment_id} is in no deposit"
        deposit = self.ledger.reads(get_deposit, self.id, UUID(deposit_id))
        assert deposit is not None
        return deposit, self.ledger.reads(deposit_items, UUID(deposit_id))

    def money_moved(self) -> dict[str, int]:
        """What the sandbox processor moved, by kind (charge, void, capture, refund)."""
        processor = self.ledger.processor
        assert isinstance(processor, SandboxProcessor)
        return dict(processor.movements)

    def settings(self, **changes: object) -> None:
        change_settings(self.ledger, self.id, changes, ADMIN)


def open_office(
    ledger: MemoryLedger,
    clock: PinnedClock,
    pms: PmsKind = PmsKind.OPENDENTAL,
    auto_writeback: bool = False,
    name: str = "Elm Dental",
) -> Office:
    practice = create_practice(
        ledger,
        name=name,
        timezone="America/New_York",
        pms=pms,
        auto_writeback=auto_writeback,
        deposit_account=DepositAccount("Checking", "6789"),
        batch_cutoff=time(23, 59),
        actor="operator",
    )
    return Office(ledger, clock, practice)


@pytest.fixture
def ledger(clock: PinnedClock) -> MemoryLedger:
    return MemoryLedger(clock)


@pytest.fixture
def office(ledger: MemoryLedger, clock: PinnedClock) -> Office:
    return open_office(ledger, clock)


@pytest.fixture
def faulty() -> FaultyProcessor:
    return FaultyProcessor()


@pytest.fixture
def faulty_office(faulty: FaultyProcessor, clock: PinnedClock) -> Office:
    """Elm Dental on a processor whose answers the test scripts."""
    return open_office(MemoryLedger(clock, faulty), clock)
