"""The reconciler: every open intent ends in an outcome, read back from the processor.

Part of each practice's due work. An intent (a void or refund) whose call may still be
under way is left alone for `SETTLE_AFTER`; after that, the reconciler reads back what the
processor holds under the intent's id with a consistent read (services/app/intents.py)
and records the outcome: succeeded, refused, or, for an intent the processor has no
record of, refused as "nothing moved" (a refund: never sent again from here) or sent
again (a void: cancelling twice moves no money). A read back that fails is recorded as
another unknown attempt and tried again after a pause that doubles with each attempt (up
to an hour). Captures are settled by the batch close itself, which reads an earlier
capture back before capturing again (services/app/settlement.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from domain.errors import PaymentsError
from projections.base import iso, parse_iso
from projections.intents import OpenIntentRow, open_intents
from services.app import intents
from services.app.intents import RECONCILER, REFUND, VOID, carry_out

log = logging.getLogger("payledger.reconcile")

#: how long an intent is left to the call that made it before it is read back
SETTLE_AFTER = timedelta(minutes=15)
#: the longest pause between two read backs of one intent
LONGEST_PAUSE = timedelta(hours=1)


class Needs(intents.Needs, Protocol):
    """The parts these use cases are given (services/context.py)."""


def reconcile_due(ctx: Needs, practice_id: UUID) -> int:
    """Read back the practice's open intents that are due; returns how many ended."""
    now = ctx.clock.now(practice_id)
    ended = 0
    for row in ctx.reads(open_intents, practice_id, iso(now - SETTLE_AFTER)):
        if row["effect"] == "capture" or not is_due(row, now):
            continue
        kind = REFUND if row["effect"] == "refund" else VOID
        try:
            payment = carry_out(
                ctx,
                kind,
                practice_id,
                UUID(row["payment_id"]),
                UUID(row["id"]),
                actor=RECONCILER,
                read_first=True,
                resend=kind.resend_when_absent,
            )
        except PaymentsError as error:  # recorded (refused, or unknown once more)
            log.info("intent %s of %s: %s", row["id"], row["payment_id"], error.detail)
            continue
        if not kind.is_open(payment, UUID(row["id"])):  # ended, not unknown once more
            ended += 1
    return ended


def is_due(row: OpenIntentRow, now: datetime) -> bool:
    """Due once settled in (`SETTLE_AFTER`), then after a pause doubling per attempt."""
    if row["unknown_since"] is None or row["attempts"] <= 1:
        return True
    pause = min(SETTLE_AFTER * 2 ** (row["attempts"] - 1), LONGEST_PAUSE)
    tried: datetime = parse_iso(row["last_tried_at"] or row["unknown_since"])
    return bool(now - tried >= pause)
