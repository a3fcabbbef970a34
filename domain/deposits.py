"""Deposits: a closed batch is paid into the practice's account on its deposit date.

The deposit date is the next business day after the batch date: not a
Saturday or Sunday, and not a bank holiday (the calendar comes in as an
argument; the Federal Reserve's holidays in production). A batch whose
refunds and fees exceed its sales gives a negative net: a withdrawal.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import PracticeAggregate
from domain.errors import Conflict, InvalidValue

#: a deposit is never more than this many days away (guards a broken holiday calendar)
MAX_DAYS_AHEAD = 14


def next_business_day(after: date, holidays: Container[date]) -> date:
    day = after + timedelta(days=1)
    while day.weekday() >= 5 or day in holidays:
        day += timedelta(days=1)
        if day - after > timedelta(days=MAX_DAYS_AHEAD):
            raise InvalidValue(f"no business day within {MAX_DAYS_AHEAD} days of {after}")
    return day


def deposit_id_for(batch_id: UUID) -> UUID:
    return uuid5(NAMESPACE_URL, f"payledger:deposit:{batch_id}")


@dataclass(frozen=True)
class DepositLine:
    """One payment (positive) or refund (negative) in a deposit, with its fee."""

    kind: str  # "payment" or "refund"
    payment_id: UUID
    refund_id: UUID | None
    amount: int
    fee_amount: int

    @property
    def net_amount(self) -> int:
        return self.amount - self.fee_amount


class Deposit(PracticeAggregate):
    class Scheduled(PracticeAggregate.Created):
        batch_id: UUID
        batch_date: str
        deposit_date: str
        account: str
        gross_amount: int
        refunds_amount: int
        fees_amount: int
        net_amount: int
        lines: list[dict[str, object]]

        def apply(self, deposit: Deposit) -> None:
            deposit.practice_id = self.practice_id
            deposit.batch_id = self.batch_id
            deposit.deposit_date = date.fromisoformat(self.deposit_date)
            deposit.net_amount = self.net_amount
            deposit.paid_at = None
            deposit.lines = list(self.lines)
            deposit.payout_id = None
            deposit.payout_failure = None
            deposit.adjustments = []
            deposit.other_payouts = []

    class Paid(PracticeAggregate.Event):
        def apply(self, deposit: Deposit) -> None:
            deposit.paid_at = self.at

    class PayoutReconciled(PracticeAggregate.Event):
        """The processor's payout that carried this deposit's items (Stripe), matched line
        by line: its id, the day it arrived, the processor's fee of each item, and every
        difference (an item missing from the payout, a fee or an amount that differs)."""

        payout_id: str
        arrival_date: str
        items: list[dict[str, Any]]
        differences: list[dict[str, Any]]
        #: lines the payout adds to the deposit: a dispute's withdrawal (`dispute`, a
        #: negative amount), its fee (`dispute_fee`) or its reinstatement when won
        #: (`dispute_reversal`); each with payment_id, dispute_id, balance_transaction,
        #: amount and fee_amount
        adjustments: list[dict[str, Any]] | None = None

        def apply(self, deposit: Deposit) -> None:
            deposit.payout_id = self.payout_id
            deposit.payout_failure = None
            for line in self.adjustments or []:
                deposit.adjustments.append(line)
                deposit.net_amount += int(line["amount"]) - int(line["fee_amount"])

    class PayoutAdjusted(PracticeAggregate.Event):
        """A payout that carried none of the ledger's sales or refunds (only a dispute's
        adjustments, or balance transactions of other kinds), recorded on the practice's
        newest deposit so that nothing it moved is left out: its dispute lines join the
        deposit (as `PayoutReconciled.adjustments`), its other items are differences. The
        deposit's own payout stays as it was."""

        payout_id: str
        arrival_date: str
        adjustments: list[dict[str, Any]]
        differences: list[dict[str, Any]]

        def apply(self, deposit: Deposit) -> None:
            deposit.other_payouts = [*getattr(deposit, "other_payouts", []), self.payout_id]
            for line in self.adjustments:
                deposit.adjustments.append(line)
                deposit.net_amount += int(line["amount"]) - int(line["fee_amount"])

    class PayoutFailed(PracticeAggregate.Event):
        """The processor's payout of this deposit failed (the bank refused it)."""

        payout_id: str
        failure_code: str
        failure_message: str

        def apply(self, deposit: Deposit) -> None:
            deposit.payout_id = self.payout_id
            deposit.payout_failure = self.failure_code

    if TYPE_CHECKING:
        batch_id: UUID
        deposit_date: date
        net_amount: int
        paid_at: datetime | None
        lines: list[dict[str, object]]
        payout_id: str | None
        payout_failure: str | None
        adjustments: list[dict[str, Any]]
        other_payouts: list[str]

    @classmethod
    def schedule(
        cls,
        *,
        practice_id: UUID,
        batch_id: UUID,
        batch_date: date,
        deposit_date: date,
        account: str,
        lines: list[DepositLine],
        at: datetime,
        actor: str,
    ) -> Deposit:
        if not lines:
            raise InvalidValue("a deposit needs at least one payment or refund")
        if deposit_date <= batch_date:
            raise InvalidValue("a deposit lands after its batch closes", field="deposit_date")
        gross = sum(line.amount for line in lines if line.kind == "payment")
        refunds = -sum(line.amount for line in lines if line.kind == "refund")
        fees = sum(line.fee_amount for line in lines)
        net = sum(line.net_amount for line in lines)
        assert net == gross - refunds - fees
        return cls._create(
            cls.Scheduled,
            id=deposit_id_for(batch_id),
            practice_id=practice_id,
            batch_id=batch_id,
            batch_date=batch_date.isoformat(),
            deposit_date=deposit_date.isoformat(),
            account=account,
            gross_amount=gross,
            refunds_amount=refunds,
            fees_amount=fees,
            net_amount=net,
            lines=[line_to_dict(line) for line in lines],
            at=at,
            actor=actor,
        )

    def mark_paid(self, *, at: datetime, actor: str) -> None:
        if self.paid_at is not None:
            raise Conflict("this deposit has already been paid")
        self.record(self.Paid, at=at, actor=actor)

    def reconcile_payout(
        self,
        *,
        payout_id: str,
        arrival_date: date,
        items: list[dict[str, Any]],
        differences: list[dict[str, Any]],
        at: datetime,
        actor: str,
        adjustments: list[dict[str, Any]] | None = None,
    ) -> None:
        if self.payout_id == payout_id and self.payout_failure is not None:
            raise Conflict(
                f"payout {payout_id} failed: a failed payout is final, it is never paid again"
            )
        self.record(
            self.PayoutReconciled,
            adjustments=adjustments or [],
            at=at,
            actor=actor,
            payout_id=payout_id,
            arrival_date=arrival_date.isoformat(),
            items=items,
            differences=differences,
        )

    def adjust_by_payout(
        self,
        *,
        payout_id: str,
        arrival_date: date,
        adjustments: list[dict[str, Any]],
        differences: list[dict[str, Any]],
        at: datetime,
        actor: str,
    ) -> bool:
        """Record a payout that carried none of the ledger's sales or refunds; False when
        it is recorded already."""
        if payout_id in getattr(self, "other_payouts", []) or payout_id == self.payout_id:
            return False
        self.record(
            self.PayoutAdjusted,
            at=at,
            actor=actor,
            payout_id=payout_id,
            arrival_date=arrival_date.isoformat(),
            adjustments=adjustments,
            differences=differences,
        )
        return True

    def fail_payout(
        self, *, payout_id: str, failure_code: str, failure_message: str, at: datetime, actor: str
    ) -> None:
        self.record(
            self.PayoutFailed,
            at=at,
            actor=actor,
            payout_id=payout_id,
            failure_code=failure_code,
            failure_message=failure_message,
        )


def line_to_dict(line: DepositLine) -> dict[str, object]:
    return {
        "kind": line.kind,
        "payment_id": str(line.payment_id),
        "refund_id": str(line.refund_id) if line.refund_id else None,
        "amount": line.amount,
        "fee_amount": line.fee_amount,
    }


def fee_for(amount: int, rate_bps: int) -> int:
    """A processing fee in cents: the rate (basis points) of a sale, rounded half up."""
    if rate_bps < 0:
        raise InvalidValue("a fee rate cannot be negative", field="fee_rate_bps")
    return (amount * rate_bps + 5_000) // 10_000
