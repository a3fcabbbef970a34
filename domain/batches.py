"""Settlement batches: what the processor settles at a practice's daily cut-off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from uuid import UUID

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
