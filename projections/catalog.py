"""Every read model the ledger keeps, in the order they are built: what the projector runs,
what replay verifies and what an audit export's checksums cover. The writeback intake is
not one of them: it has effects, and is added by the composition root."""

from __future__ import annotations

from projections.base import Projection
from projections.deposits import Deposits
from projections.directory import Directory
from projections.feed import EventFeed
from projections.intents import OpenIntents
from projections.ledger_queue import LedgerQueue
from projections.plans import Plans
from projections.receivables import Receivables
from projections.requests import PaymentRequests
from projections.transactions import Transactions
from projections.users import Users


def all_projections() -> list[Projection]:
    return [
        Directory(),
        Transactions(),
        Deposits(),
        PaymentRequests(),
        Receivables(),
        LedgerQueue(),
        EventFeed(),
        Users(),
        OpenIntents(),
        Plans(),
    ]
