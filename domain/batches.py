"""Settlement batches: what the processor settles at a practice's daily cut-off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import PracticeAggregate
from domain.errors import InvalidValue


@dataclass(frozen=True)
class BatchItem:
    """One payment (positive) or refund (negative) in a batch."""

    kind: str  # "payment" or "refund"
    payment_id: UUID
    refund_id: UUID | None
    amount: int


class Batch(PracticeAggregate):
    class Closed(PracticeAggregate.Created):
        batch_date: str
        items: list[dict[str, object]]
        sales_count: int
        sales_amount: int
        refunds_count: int
        refunds_amount: int
        fees_amount: int
        net_amount: int

        def apply(self, batch: Batch) -> None:
            batch.practice_id = self.practice_id
            batch.batch_date = date.fromisoformat(self.batch_date)
            batch.closed_at = self.at
            batch.items = [item_from_dict(i) for i in self.items]
            batch.sales_amount = self.sales_amount
            batch.refunds_amount = self.refunds_amount
            batch.fees_amount = self.fees_amount
            batch.net_amount = self.net_amount

    if TYPE_CHECKING:
        batch_date: date
        closed_at: datetime
        items: list[BatchItem]
        sales_amount: int
        refunds_amount: int
        fees_amount: int
        net_amount: int

    @classmethod
    def close(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        batch_date: date,
        items: list[BatchItem],
        fees_amount: int,
        at: datetime,
        actor: str,
    ) -> Batch:
        if not items:
            raise InvalidValue("a batch with no activity is not closed (nothing to settle)")
        if fees_amount < 0:
            raise InvalidValue("fees cannot be negative", field="fees_amount")
        sales = [i for i in items if i.kind == "payment"]
        refunds = [i for i in items if i.kind == "refund"]
        sales_amount = sum(i.amount for i in sales)
        refunds_amount = sum(i.amount for i in refunds)
        return cls._create(
            cls.Closed,
            id=id,
            practice_id=practice_id,
            batch_date=batch_date.isoformat(),
            items=[item_to_dict(i) for i in items],
            sales_count=len(sales),
            sales_amount=sales_amount,
            refunds_count=len(refunds),
            refunds_amount=refunds_amount,
            fees_amount=fees_amount,
            net_amount=sales_amount - refunds_amount - fees_amount,
            at=at,
            actor=actor,
        )


def item_to_dict(item: BatchItem) -> dict[str, object]:
    return {
        "kind": item.kind,
        "payment_id": str(item.payment_id),
        "refund_id": str(item.refund_id) if item.refund_id else None,
        "amount": item.amount,
    }


def item_from_dict(data: dict[str, object]) -> BatchItem:
    refund_id = data.get("refund_id")
    return BatchItem(
        kind=str(data["kind"]),
        payment_id=UUID(str(data["payment_id"])),
        refund_id=UUID(str(refund_id)) if refund_id else None,
        amount=int(str(data["amount"])),
    )


def processor_close_id(practice_id: UUID, processor_batch_id: str) -> UUID:
    """The id of the intent to close one of the processor's own batches."""
    return uuid5(
        NAMESPACE_URL, f"payledger:{practice_id}:processor-batch-close:{processor_batch_id}"
    )


class ProcessorBatchClose(PracticeAggregate):
    """The intent to close one of the processor's own batches (where the ledger closes it,
    as on Clearent): recorded before the call, its outcome always after it.

    - `Requested` (then `Asked` for a later attempt): the close is asked with the totals
      the processor checks it against;
    - `Closed`: the processor closed it (answered, or read back closed);
    - `Refused`: the processor refused it (its totals differ): nothing closed;
    - `OutcomeUnknown`: the answer was lost; read back before anything is sent again;
    - `NotClosed`: read back after the settling time, the batch still open: nothing
      closed, a later attempt may ask again.
    """

    if TYPE_CHECKING:
        processor_batch_id: str
        state: str
        total_count: int
        net_amount: int
        asked_at: datetime
        unknown_since: datetime | None
        attempts: int
        reason: str | None

    class Requested(PracticeAggregate.Created):
        processor_batch_id: str
        total_count: int
        net_amount: int

        def apply(self, close: ProcessorBatchClose) -> None:
            close.practice_id = self.practice_id
            close.processor_batch_id = self.processor_batch_id
            close.state = "asked"
            close.total_count = self.total_count
            close.net_amount = self.net_amount
            close.asked_at = self.at
            close.unknown_since = None
            close.attempts = 0
            close.reason = None

    class Asked(PracticeAggregate.Event):
        """Asked again, after an attempt that closed nothing."""

        total_count: int
        net_amount: int

        def apply(self, close: ProcessorBatchClose) -> None:
            close.state = "asked"
            close.total_count = self.total_count
            close.net_amount = self.net_amount
            close.asked_at = self.at
            close.unknown_since = None
            close.reason = None

    class Closed(PracticeAggregate.Event):
        def apply(self, close: ProcessorBatchClose) -> None:
            close.state = "closed"

    class Refused(PracticeAggregate.Event):
        reason: str

        def apply(self, close: ProcessorBatchClose) -> None:
            close.state = "refused"
            close.reason = self.reason

    class OutcomeUnknown(PracticeAggregate.Event):
        error: str

        def apply(self, close: ProcessorBatchClose) -> None:
            close.state = "unknown"
            close.unknown_since = close.unknown_since or self.at
            close.attempts += 1
            close.reason = self.error

    class NotClosed(PracticeAggregate.Event):
        """Read back after the settling time: the batch is still open."""

        def apply(self, close: ProcessorBatchClose) -> None:
            close.state = "not_closed"

    @classmethod
    def request(
        cls,
        *,
        practice_id: UUID,
        processor_batch_id: str,
        total_count: int,
        net_amount: int,
        at: datetime,
        actor: str,
    ) -> ProcessorBatchClose:
        return cls._create(
            cls.Requested,
            id=processor_close_id(practice_id, processor_batch_id),
            practice_id=practice_id,
            processor_batch_id=processor_batch_id,
            total_count=total_count,
            net_amount=net_amount,
            at=at,
            actor=actor,
        )

    @property
    def is_open(self) -> bool:
        return self.state in ("asked", "unknown")

    def ask_again(self, *, total_count: int, net_amount: int, at: datetime, actor: str) -> None:
        if self.is_open or self.state == "closed":
            raise InvalidValue("the batch's close is under way or done: it is not asked again")
        self.record(self.Asked, at=at, actor=actor, total_count=total_count, net_amount=net_amount)

    def closed(self, *, at: datetime, actor: str) -> None:
        self.record(self.Closed, at=at, actor=actor)

    def refuse(self, *, reason: str, at: datetime, actor: str) -> None:
        self.record(self.Refused, at=at, actor=actor, reason=reason)

    def unknown(self, *, error: str, at: datetime, actor: str) -> None:
        self.record(self.OutcomeUnknown, at=at, actor=actor, error=error)

    def not_closed(self, *, at: datetime, actor: str) -> None:
        self.record(self.NotClosed, at=at, actor=actor)
