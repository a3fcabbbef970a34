"""What a payment puts in the PMS ledger, and what of it is not there yet ("needs posting").

One definition for every answer that speaks of it (the transaction's association, the
`association` filter, the unassociated badge, the Post to Ledger queue):

- an approved or settled payment is one entry, and each of its refunds a negative one;
- a voided payment needs nothing if it was voided before it was posted; if it had been
  posted, its void is a negative entry too;
- a declined payment moved no money and never needs posting;
- a dispute the practice lost (the card network took the money back) is a negative
  entry; an open or won dispute needs none.

An entry is posted once it is associated (written automatically, or marked by staff).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Association(StrEnum):
    ASSOCIATED = "associated"  # every entry it needs is in the PMS
    UNASSOCIATED = "unassociated"  # at least one entry still needs posting
    NOT_APPLICABLE = "not_applicable"  # declined, or voided before it was posted


@dataclass(frozen=True)
class PostedRefund:
    id: str
    amount: int
    posted: bool


@dataclass(frozen=True)
class PostedDispute:
    """A dispute the practice lost: the processor's dispute id and the amount taken back."""

    id: str
    amount: int
    posted: bool


@dataclass(frozen=True)
class Entry:
    """One entry in the PMS ledger: its kind, our marker (the queue's and the writeback's
    id), its signed amount in cents and whether it is posted."""

    kind: str  # payment, refund, void, dispute
    id: str
    amount: int
    posted: bool

    def as_dict(self) -> dict[str, str | int]:
        return {"kind": self.kind, "id": self.id, "amount": self.amount}


def ledger_entries(
    *,
    payment_id: str,
    status: str,
    amount: int,
    payment_posted: bool,
    refunds: Iterable[PostedRefund] = (),
    void_posted: bool = False,
    lost_dispute: PostedDispute | None = None,
) -> list[Entry]:
    """Every entry the PMS ledger needs for this payment (posted or not)."""
    if status == "declined" or (status == "voided" and not payment_posted):
        return []
    entries = [Entry("payment", payment_id, amount, payment_posted)]
    entries += [Entry("refund", r.id, -r.amount, r.posted) for r in refunds]
    if status == "voided":
        entries.append(Entry("void", f"void:{payment_id}", -amount, void_posted))
    if lost_dispute is not None:
        entries.append(
            Entry(
                "dispute",
                dispute_marker(lost_dispute.id),
                -lost_dispute.amount,
                lost_dispute.posted,
            )
        )
    return entries


def dispute_marker(dispute_id: str) -> str:
    """The marker of a lost dispute's negative entry (the queue's and the writeback's id)."""
    return f"dispute:{dispute_id}"


def needs_posting(entries: Sequence[Entry]) -> list[Entry]:
    return [e for e in entries if not e.posted]


def association_of(entries: Sequence[Entry]) -> Association:
    if not entries:
        return Association.NOT_APPLICABLE
    if needs_posting(entries):
        return Association.UNASSOCIATED
    return Association.ASSOCIATED
