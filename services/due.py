"""Everything that falls due with time: batch closes, deposits, request expiries,
reminders, message retries, the end of snoozes and scheduled PMS syncs. Run by the
server's scheduler and by the sandbox clock's advance; safe in several processes at once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from uuid import UUID

from projections.directory import practice_ids
from services.context import Ledger
from services.receivables import end_due_snoozes, sync_due
from services.requests import deliver_due, expire_due, remind_due
from services.settlement import close_due_batches, pay_due_deposits


@dataclass(frozen=True)
class DueWork:
    batches_closed: int = 0
    deposits_paid: int = 0
    requests_expired: int = 0
    reminders_sent: int = 0
    messages_retried: int = 0
    snoozes_ended: int = 0
    pms_syncs: int = 0

    def __add__(self, other: DueWork) -> DueWork:
        mine, theirs = asdict(self), asdict(other)
        return DueWork(**{k: mine[k] + theirs[k] for k in mine})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def run_due_work(ledger: Ledger, practice_id: UUID | None = None) -> DueWork:
    """Run everything that fell due, for one practice or all."""
    ids = [practice_id] if practice_id else practice_ids(ledger.db)
    total = DueWork()
    for pid in ids:
        total += DueWork(
            batches_closed=len(close_due_batches(ledger, pid)),
            deposits_paid=pay_due_deposits(ledger, pid),
            requests_expired=expire_due(ledger, pid),
            reminders_sent=remind_due(ledger, pid),
            messages_retried=deliver_due(ledger, pid),
            snoozes_ended=end_due_snoozes(ledger, pid),
            pms_syncs=sync_due(ledger, pid),
        )
    return total
